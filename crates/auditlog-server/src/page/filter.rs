//! The filter form of the page: what its query string (and the export form, which repeats
//! it in hidden fields) holds, turned into the store's `Filter`, and back into links.

use std::collections::HashMap;

use auditlog_core::query::{Column, Combine, Condition, Filter};
use auditlog_core::timestamp::MS_PER_DAY;
use auditlog_core::Timestamp;

use super::first;

/// The filter the page's query string describes.
pub struct PageFilter {
    pub actions: Vec<String>,
    pub users: Vec<String>,
    pub from: String,
    pub to: String,
    pub text: String,
    pub per_page: u32,
}

impl PageFilter {
    pub fn parse(query: &HashMap<String, Vec<String>>) -> PageFilter {
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

    pub fn filter(&self) -> Filter {
        let mut conditions = Vec::new();
        if !self.actions.is_empty() {
            conditions.push(Condition::AnyOf {
                column: Column::ActionKey,
                values: self.actions.clone(),
            });
        }
        if !self.users.is_empty() {
            conditions.push(Condition::AnyOf {
                column: Column::Actor,
                values: self.users.clone(),
            });
        }
        if !self.text.is_empty() {
            conditions.push(Condition::Text(self.text.clone()));
        }
        Filter {
            conditions,
            combine: Combine::And,
            from: Self::bound(&self.from, false),
            to: Self::bound(&self.to, true),
        }
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
