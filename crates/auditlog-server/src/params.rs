//! Query-string parsing for the list, facets and export endpoints, with the reference API's
//! defaults and limits, and every problem reported at once in the 422 shape.

use auditlog_core::query::{self, Combine, Condition, Cursor, Filter, Order, Start};
use auditlog_core::Timestamp;

use crate::error::{ApiError, Detail};

/// Parsed `GET /api/audit-logs` parameters.
#[derive(Debug, Clone)]
pub struct ListParams {
    /// The filter from `q`, `search_operator`, `from_date`, `to_date`.
    pub filter: Filter,
    /// From `sort`.
    pub order: Order,
    /// From `limit` (default 100).
    pub limit: u32,
    /// From `offset` or `cursor`.
    pub start: Start,
}

/// Default page size of the reference API.
const DEFAULT_LIMIT: u32 = 100;
/// Deepest offset accepted; deeper pages should use `cursor`.
const MAX_OFFSET: u64 = 100_000_000;

/// Parses a timestamp as the reference API takes it: ISO 8601 with a timezone (a bare date
/// means its first instant, UTC).
/// An empty value is refused like any other non-date, as the reference does: it is not the
/// same as leaving the parameter out.
pub fn parse_date(text: &str) -> Result<Timestamp, String> {
    if text.trim().is_empty() {
        return Err("must be a date-time (ISO 8601 with a timezone), not empty".to_string());
    }
    Timestamp::parse_lenient(text.trim()).map_err(|e| e.to_string())
}

/// The filter parts shared by the list and export requests.
pub fn build_filter(
    q: &[String],
    search_operator: Option<&str>,
    from: Option<Timestamp>,
    to: Option<Timestamp>,
    loc: &str,
    details: &mut Vec<Detail>,
) -> Filter {
    let combine = match search_operator.map(str::trim) {
        None | Some("") | Some("or") | Some("OR") => Combine::Or,
        Some("and") | Some("AND") => Combine::And,
        Some(other) => {
            details.push(Detail::new(
                vec![loc.into(), "search_operator".into()],
                format!(
                    "{:?} is not one of or, and",
                    other.chars().take(32).collect::<String>()
                ),
                "enum",
            ));
            Combine::Or
        }
    };
    if q.len() > query::MAX_VALUES {
        details.push(Detail::new(
            vec![loc.into(), "q".into()],
            format!("at most {} q filters", query::MAX_VALUES),
            "too_many",
        ));
    }
    let mut conditions: Vec<Condition> = Vec::new();
    for (idx, entry) in q.iter().enumerate().take(query::MAX_VALUES) {
        match query::parse_q(entry) {
            Ok(condition) => conditions.push(condition),
            Err(e) => details.push(Detail::new(
                vec![loc.into(), "q".into(), idx.into()],
                e.to_string(),
                "value_error",
            )),
        }
    }
    Filter {
        conditions,
        combine,
        from,
        to,
    }
}

impl ListParams {
    /// Parses a raw query string.
    pub fn parse(raw: Option<&str>) -> Result<ListParams, ApiError> {
        let mut details = Vec::new();
        let mut q = Vec::new();
        let (mut search_operator, mut sort, mut limit, mut offset, mut from, mut to, mut cursor) =
            (None, None, None, None, None, None, None);
        for (key, value) in form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
            let value = value.into_owned();
            match key.as_ref() {
                "q" => q.push(value),
                "search_operator" => search_operator = Some(value),
                "sort" => sort = Some(value),
                "limit" => limit = Some(value),
                "offset" => offset = Some(value),
                "from_date" => from = Some(value),
                "to_date" => to = Some(value),
                "cursor" => cursor = Some(value),
                // Like the reference, unknown parameters are ignored.
                _ => {}
            }
        }
        // An empty `limit=` or `offset=` is not an integer: the reference answers 422, so
        // only an absent parameter takes the default.
        let limit = match limit.as_deref().map(str::trim) {
            None => DEFAULT_LIMIT,
            Some(text) => match text.parse::<i64>() {
                Ok(n) if (1..=query::MAX_LIMIT as i64).contains(&n) => n as u32,
                Ok(_) => {
                    details.push(Detail::query(
                        "limit",
                        format!("must be between 1 and {}", query::MAX_LIMIT),
                        "range",
                    ));
                    DEFAULT_LIMIT
                }
                Err(_) => {
                    details.push(Detail::query("limit", "must be an integer", "int_parsing"));
                    DEFAULT_LIMIT
                }
            },
        };
        let offset = match offset.as_deref().map(str::trim) {
            None => 0,
            Some(text) => match text.parse::<i64>() {
                Ok(n) if (0..=MAX_OFFSET as i64).contains(&n) => n as u64,
                Ok(_) => {
                    details.push(Detail::query(
                        "offset",
                        format!("must be between 0 and {MAX_OFFSET}; use cursor for deeper pages"),
                        "range",
                    ));
                    0
                }
                Err(_) => {
                    details.push(Detail::query("offset", "must be an integer", "int_parsing"));
                    0
                }
            },
        };
        let mut date = |name: &str, text: Option<String>| match text.as_deref().map(str::trim) {
            None => None,
            Some(text) => match parse_date(text) {
                Ok(t) => Some(t),
                Err(e) => {
                    details.push(Detail::query(name, e, "datetime_parsing"));
                    None
                }
            },
        };
        let from = date("from_date", from);
        let to = date("to_date", to);
        let order = match query::parse_sort(sort.as_deref().unwrap_or("")) {
            Ok(order) => order,
            Err(e) => {
                details.push(Detail::query("sort", e.to_string(), "value_error"));
                Order::NewestFirst
            }
        };
        let start = match cursor.as_deref().map(str::trim) {
            None | Some("") => Start::Offset(offset),
            Some(text) => match Cursor::decode(text) {
                Ok(c) if c.order != order => {
                    details.push(Detail::query(
                        "cursor",
                        "was made for the other sort order",
                        "value_error",
                    ));
                    Start::Offset(0)
                }
                Ok(_) if offset > 0 => {
                    details.push(Detail::query(
                        "offset",
                        "give either cursor or offset, not both",
                        "value_error",
                    ));
                    Start::Offset(0)
                }
                Ok(c) => Start::After(c.position),
                Err(e) => {
                    details.push(Detail::query("cursor", e.to_string(), "value_error"));
                    Start::Offset(0)
                }
            },
        };
        let filter = build_filter(
            &q,
            search_operator.as_deref(),
            from,
            to,
            "query",
            &mut details,
        );
        if !details.is_empty() {
            return Err(ApiError::Validation(details));
        }
        Ok(ListParams {
            filter,
            order,
            limit,
            start,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(raw: &str) -> Vec<(String, String)> {
        match ListParams::parse(Some(raw)) {
            Err(ApiError::Validation(details)) => details
                .into_iter()
                .map(|d| {
                    (
                        d.loc
                            .iter()
                            .map(|v| v.to_string().trim_matches('"').to_string())
                            .collect::<Vec<_>>()
                            .join("."),
                        d.kind,
                    )
                })
                .collect(),
            other => panic!("expected a validation error for {raw:?}, got {other:?}"),
        }
    }

    #[test]
    fn defaults_match_the_reference() {
        let params = ListParams::parse(None).unwrap();
        assert_eq!(params.limit, 100);
        assert_eq!(params.order, Order::NewestFirst);
        assert_eq!(params.start, Start::Offset(0));
        assert_eq!(params.filter.combine, Combine::Or);
    }

    #[test]
    fn parses_repeated_q_and_dates() {
        let params = ListParams::parse(Some(
            "q=action_key:channel_created,channel_deleted&q=actor_email:a%40b.c&search_operator=and&from_date=2026-01-01T00:00:00Z&to_date=2026-01-02&limit=5&sort=occurred_at",
        ))
        .unwrap();
        assert_eq!(params.filter.conditions.len(), 2);
        assert_eq!(params.filter.combine, Combine::And);
        assert_eq!(params.limit, 5);
        assert_eq!(params.order, Order::OldestFirst);
        assert_eq!(
            params.filter.to.unwrap().to_string(),
            "2026-01-02T00:00:00.000Z"
        );
    }

    #[test]
    fn every_bad_parameter_is_named() {
        assert_eq!(
            problems("limit=0"),
            [("query.limit".to_string(), "range".to_string())]
        );
        assert_eq!(
            problems("limit=1001"),
            [("query.limit".to_string(), "range".to_string())]
        );
        assert_eq!(
            problems("limit=ten"),
            [("query.limit".to_string(), "int_parsing".to_string())]
        );
        assert_eq!(
            problems("offset=-1"),
            [("query.offset".to_string(), "range".to_string())]
        );
        assert_eq!(
            problems("from_date=yesterday"),
            [(
                "query.from_date".to_string(),
                "datetime_parsing".to_string()
            )]
        );
        assert_eq!(
            problems("q=colour:red"),
            [("query.q.0".to_string(), "value_error".to_string())]
        );
        assert_eq!(
            problems("search_operator=xor"),
            [("query.search_operator".to_string(), "enum".to_string())]
        );
        assert_eq!(
            problems("cursor=%21%21"),
            [("query.cursor".to_string(), "value_error".to_string())]
        );
        assert_eq!(
            problems("sort=actor_email"),
            [("query.sort".to_string(), "value_error".to_string())]
        );
        assert_eq!(problems("limit=0&offset=x").len(), 2);
    }

    #[test]
    fn an_empty_value_is_not_an_absent_one() {
        for (raw, loc, kind) in [
            ("to_date=", "query.to_date", "datetime_parsing"),
            ("from_date=", "query.from_date", "datetime_parsing"),
            ("limit=", "query.limit", "int_parsing"),
            ("offset=", "query.offset", "int_parsing"),
            ("q=", "query.q.0", "value_error"),
        ] {
            assert_eq!(
                problems(raw),
                [(loc.to_string(), kind.to_string())],
                "{raw}"
            );
        }
        // Strings whose default is a value of their own take an empty one as that default,
        // as the reference's schema allows.
        for raw in ["search_operator=", "sort=", "cursor="] {
            assert!(ListParams::parse(Some(raw)).is_ok(), "{raw}");
        }
    }
}
