//! The filter form of the page: what its query string (and the export form, which repeats
//! it in hidden fields) holds, as typed, turned into the one typed [`FilterForm`] the CLI
//! uses too, and back into links. The table and its export get the same `Filter` from it.

use auditlog_core::query::{Filter, FilterForm};
use auditlog_core::timestamp::MS_PER_DAY;
use auditlog_core::Timestamp;

use super::{first, Fields};

/// The filter the page's query string describes, as the viewer typed it (to show it again).
pub struct PageFilter {
    /// Chosen action keys.
    pub actions: Vec<String>,
    /// Chosen users (id or email).
    pub users: Vec<String>,
    /// The start of the date range as typed.
    pub from: String,
    /// The end of the date range as typed.
    pub to: String,
    /// The search words.
    pub text: String,
    /// Rows per page.
    pub per_page: u32,
}

impl PageFilter {
    /// Reads the filter fields of a query string or form.
    pub fn parse(query: &Fields) -> PageFilter {
        let clean = |values: Option<&Vec<String>>| -> Vec<String> {
            let mut out: Vec<String> = values
                .into_iter()
                .flatten()
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty() && v.len() <= 320)
                .collect();
            out.dedup();
            out.truncate(100);
            out
        };
        let per_page = first(query, "per_page")
            .and_then(|v| v.parse().ok())
            .filter(|n| [10, 25, 50, 100].contains(n))
            .unwrap_or(50);
        PageFilter {
            actions: clean(query.get("action")),
            users: clean(query.get("user")),
            from: first(query, "from")
                .unwrap_or("")
                .trim()
                .chars()
                .take(40)
                .collect(),
            to: first(query, "to")
                .unwrap_or("")
                .trim()
                .chars()
                .take(40)
                .collect(),
            text: first(query, "q")
                .unwrap_or("")
                .trim()
                .chars()
                .take(200)
                .collect(),
            per_page,
        }
    }

    /// A date from the form: `YYYY-MM-DD` or RFC 3339; the end of a `to` date is its last
    /// millisecond, so the range includes that day.
    fn bound(text: &str, end: bool) -> Option<Timestamp> {
        let at = Timestamp::parse_lenient(text).ok()?;
        Some(if end && text.len() == 10 {
            at.plus_millis(MS_PER_DAY - 1)
        } else {
            at
        })
    }

    /// The typed form: the dates as instants (an unreadable date is left out).
    pub fn form(&self) -> FilterForm {
        FilterForm {
            actions: self.actions.clone(),
            users: self.users.clone(),
            text: Some(self.text.clone()).filter(|t| !t.is_empty()),
            from: Self::bound(&self.from, false),
            to: Self::bound(&self.to, true),
        }
    }

    /// The filter of the table, and of its export.
    pub fn filter(&self) -> Filter {
        self.form().filter()
    }

    /// The filter as query-string pairs, for links and hidden form fields.
    pub fn pairs(&self) -> Vec<(&'static str, String)> {
        let mut pairs = Vec::new();
        pairs.extend(self.actions.iter().map(|a| ("action", a.clone())));
        pairs.extend(self.users.iter().map(|u| ("user", u.clone())));
        for (key, value) in [("from", &self.from), ("to", &self.to), ("q", &self.text)] {
            if !value.is_empty() {
                pairs.push((key, value.clone()));
            }
        }
        pairs
    }

    pub fn link(&self, base: &str, extra: &[(&str, String)]) -> String {
        let mut serializer = form_urlencoded::Serializer::new(String::new());
        for (key, value) in self.pairs() {
            serializer.append_pair(key, &value);
        }
        serializer.append_pair("per_page", &self.per_page.to_string());
        for (key, value) in extra {
            serializer.append_pair(key, value);
        }
        format!("{base}?{}", serializer.finish())
    }
}

#[cfg(test)]
mod tests {
    use auditlog_core::query::{Column, Condition};

    use super::*;

    #[test]
    fn a_value_with_a_comma_is_one_value_in_the_table_and_its_export() {
        let fields = super::super::form(b"user=Doe%2C+Jane&action=channel_created&to=2026-01-02");
        let filter = PageFilter::parse(&fields).filter();
        assert_eq!(
            filter.conditions,
            vec![
                Condition::AnyOf {
                    column: Column::ActionKey,
                    values: vec!["channel_created".into()],
                },
                Condition::AnyOf {
                    column: Column::Actor,
                    values: vec!["Doe, Jane".into()],
                },
            ]
        );
        // A bare `to` date includes that whole day.
        assert_eq!(
            filter.to.map(|t| t.to_string()).as_deref(),
            Some("2026-01-02T23:59:59.999Z")
        );
    }
}
