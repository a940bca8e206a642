//! Counts of the events that ingest requests had refused by validation, per organization and
//! action, each with its last problem and when it happened: how a platform notices events it
//! is losing to schema drift (a renamed field, a changed type, a new action) rather than
//! losing them silently. The counts live in this process's memory since it started, and stay
//! bounded whatever clients send: at most [`MAX_ACTIONS_PER_ORG`] actions per organization
//! and [`MAX_ENTRIES`] in all, beyond which an organization's rejections go to one "other"
//! count, with action keys cut to [`MAX_ACTION_KEY_KEPT`] bytes and problems to 672 bytes:
//! under 1 KiB a count, so at most about 50 MB, and typically far less.
//!
//! An event is counted under the organization it was for: the one it names, or the one the
//! request names in `X-Org-Name`, or the ingest key's own. An event whose organization cannot
//! be resolved (none named, or a name no organization has) is counted under no organization,
//! which only `/metrics` shows. A request the ingest key may not make at all (it names an
//! organization other than the key's own) is refused before validation and counts nowhere.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::sync::Mutex;

use auditlog_core::validate::FieldError;
use auditlog_core::Timestamp;
use auditlog_store::{Org, StoreError};
use uuid::Uuid;

use crate::access::Principal;
use crate::grant::ReadableOrg;
use crate::{IngestError, OrgCache, Service};

/// Most distinct actions counted per organization; rejections of further actions are counted
/// together as [`RejectedAction::Other`].
pub const MAX_ACTIONS_PER_ORG: usize = 1_000;
/// Most distinct (organization, action) counts in all, whichever organizations they belong
/// to; beyond them, each organization counts new actions as [`RejectedAction::Other`].
pub const MAX_ENTRIES: usize = 50_000;
/// Longest action key kept, in bytes of UTF-8; a longer one is kept cut, ending with `…`. A
/// valid key has at most 64.
pub const MAX_ACTION_KEY_KEPT: usize = 128;
/// Longest problem code kept, in bytes (the codes are short words).
const MAX_CODE_KEPT: usize = 32;
/// Longest field path kept, in bytes.
const MAX_FIELD_KEPT: usize = 128;
/// Longest message kept, in bytes (the longest the service writes is about 250).
const MAX_MESSAGE_KEPT: usize = 512;

/// What was wrong with a refused event, as the 422 answer said it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The answer's machine-readable `type`: `unknown_action`, `too_long`, `duplicate_key`, …
    pub code: String,
    /// Where in the event: a field (`actor_email`), a path into one (`meta.amounts[2]`), or
    /// empty for the event as a whole.
    pub field: String,
    /// The sentence for a person.
    pub message: String,
}

impl Problem {
    /// A problem, each part cut to the length kept.
    pub fn new(code: &str, field: &str, message: &str) -> Problem {
        Problem {
            code: cut(code, MAX_CODE_KEPT),
            field: cut(field, MAX_FIELD_KEPT),
            message: cut(message, MAX_MESSAGE_KEPT),
        }
    }
}

impl From<&FieldError> for Problem {
    fn from(error: &FieldError) -> Problem {
        Problem::new(error.kind.as_str(), &error.field, &error.message)
    }
}

/// An event of an ingest request that the server refused before handing the request to the
/// service (it is not an event the service can read: an unknown field, a value of the wrong
/// type, an ambiguous number), with what it names, for [`Service::count_refused_events`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusedEvent {
    /// The organization the event names itself (its `org`, when that is text).
    pub org: Option<String>,
    /// Its `action_key`, when that is text.
    pub action_key: Option<String>,
    /// Its first problem.
    pub problem: Problem,
}

/// Which action a count is about.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RejectedAction {
    /// The action key the events sent, cut to [`MAX_ACTION_KEY_KEPT`] bytes (then ending with
    /// `…`); empty when they sent none.
    Key(String),
    /// Every action of the organization beyond the ones counted by key.
    Other,
}

/// How many events of one action were refused, and the last time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectionCount {
    /// The action.
    pub action: RejectedAction,
    /// Events refused since the process started.
    pub count: u64,
    /// The first problem of the last one.
    pub last_problem: Problem,
    /// When the last one was refused.
    pub last_rejected_at: Timestamp,
}

/// One organization's counts, for `/metrics`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgRejections {
    /// The organization's name; `None` for events whose organization could not be resolved.
    pub org_name: Option<String>,
    /// Its counts, most first.
    pub counts: Vec<RejectionCount>,
}

/// The counts, shared by every clone of the service.
#[derive(Default)]
pub(crate) struct Rejections {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// By organization id; `None` for events whose organization could not be resolved.
    orgs: HashMap<Option<Uuid>, OrgCounts>,
    /// Counts kept by key, over all organizations (bounded by [`MAX_ENTRIES`]).
    n_entries: usize,
}

struct OrgCounts {
    org_name: Option<String>,
    by_action: HashMap<String, Tally>,
    other: Option<Tally>,
}

struct Tally {
    count: u64,
    last_problem: Problem,
    last_rejected_at: Timestamp,
}

impl Tally {
    fn to_count(&self, action: RejectedAction) -> RejectionCount {
        RejectionCount {
            action,
            count: self.count,
            last_problem: self.last_problem.clone(),
            last_rejected_at: self.last_rejected_at,
        }
    }
}

impl Rejections {
    /// Counts one refused event of `org` (`None`: unresolved) whose action key is
    /// `action_key`.
    pub(crate) fn count(
        &self,
        org: Option<&Org>,
        action_key: &str,
        problem: Problem,
        at: Timestamp,
    ) {
        let key = kept_action_key(action_key);
        let mut state = self.state.lock().expect("rejection counts lock");
        let State { orgs, n_entries } = &mut *state;
        let counts = orgs
            .entry(org.map(|org| org.id))
            .or_insert_with(|| OrgCounts {
                org_name: org.map(|org| org.name.clone()),
                by_action: HashMap::new(),
                other: None,
            });
        let room = counts.by_action.len() < MAX_ACTIONS_PER_ORG && *n_entries < MAX_ENTRIES;
        let fresh = || Tally {
            count: 0,
            last_problem: problem.clone(),
            last_rejected_at: at,
        };
        let tally = match counts.by_action.entry(key) {
            Entry::Occupied(entry) => entry.into_mut(),
            Entry::Vacant(entry) if room => {
                *n_entries += 1;
                entry.insert(fresh())
            }
            Entry::Vacant(_) => counts.other.get_or_insert_with(fresh),
        };
        tally.count += 1;
        // Requests of one batch may finish out of order; the newest problem wins.
        if at >= tally.last_rejected_at {
            tally.last_rejected_at = at;
            tally.last_problem = problem;
        }
    }

    /// One organization's counts, most first (`None`: the unresolved events').
    fn of(&self, org_id: Option<Uuid>) -> Vec<RejectionCount> {
        let state = self.state.lock().expect("rejection counts lock");
        state.orgs.get(&org_id).map(sorted).unwrap_or_default()
    }

    /// Every organization's counts.
    fn all(&self) -> Vec<OrgRejections> {
        let state = self.state.lock().expect("rejection counts lock");
        let mut all: Vec<OrgRejections> = state
            .orgs
            .values()
            .map(|counts| OrgRejections {
                org_name: counts.org_name.clone(),
                counts: sorted(counts),
            })
            .collect();
        all.sort_by(|a, b| a.org_name.cmp(&b.org_name));
        all
    }
}

fn sorted(counts: &OrgCounts) -> Vec<RejectionCount> {
    let mut out: Vec<RejectionCount> = counts
        .by_action
        .iter()
        .map(|(key, tally)| tally.to_count(RejectedAction::Key(key.clone())))
        .chain(
            counts
                .other
                .iter()
                .map(|tally| tally.to_count(RejectedAction::Other)),
        )
        .collect();
    out.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.action.cmp(&b.action)));
    out
}

/// The key as kept: at most [`MAX_ACTION_KEY_KEPT`] bytes, a cut one ending with `…`.
fn kept_action_key(key: &str) -> String {
    if key.len() <= MAX_ACTION_KEY_KEPT {
        key.to_string()
    } else {
        format!("{}…", cut(key, MAX_ACTION_KEY_KEPT))
    }
}

/// `text` cut to at most `max_bytes`, at a character boundary.
fn cut(text: &str, max_bytes: usize) -> String {
    let mut end = text.len().min(max_bytes);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}

/// One refused event the service itself found, for [`Service::ingest_request`] to count.
pub(crate) struct InvalidEvent {
    /// Its organization, when resolved.
    pub(crate) org: Option<Org>,
    /// Its action key as sent.
    pub(crate) action_key: String,
    /// Its first problem.
    pub(crate) problem: Problem,
}

impl Service {
    /// Counts the events of an ingest request that the service refused by validation.
    pub(crate) fn count_invalid_events(&self, events: Vec<InvalidEvent>) {
        let now = Timestamp::now();
        for event in events {
            self.rejections
                .count(event.org.as_ref(), &event.action_key, event.problem, now);
        }
    }

    /// Counts the events of an ingest request from `principal` (with `org_header`, its
    /// `X-Org-Name`) that the server refused before the service could read them. Each is
    /// counted under its organization as [`Service::ingest_request`] would have resolved it;
    /// nothing is counted when the request names an organization the ingest key may not
    /// write, or when `principal` is not an ingest key.
    pub async fn count_refused_events(
        &self,
        principal: &Principal,
        org_header: Option<&str>,
        events: Vec<RefusedEvent>,
    ) -> Result<(), StoreError> {
        let Principal::Ingest { credential, .. } = principal else {
            return Ok(());
        };
        let bound = credential.org_id;
        let mut orgs = OrgCache::new();
        let default_org = match self.default_ingest_org(bound, org_header, &mut orgs).await {
            Ok(org) => org,
            Err(IngestError::Store(e)) => return Err(e),
            Err(_) => return Ok(()),
        };
        let mut resolved = Vec::with_capacity(events.len());
        for event in events {
            let org = match event.org.as_deref() {
                None => default_org.clone(),
                Some(name) => match orgs.find(self, name).await? {
                    Some(org) if bound.is_none_or(|bound| bound == org.id) => Some(org),
                    None if bound.is_none() => None,
                    // The service would refuse the whole request.
                    _ => return Ok(()),
                },
            };
            resolved.push((org, event));
        }
        let now = Timestamp::now();
        for (org, event) in resolved {
            self.rejections.count(
                org.as_ref(),
                event.action_key.as_deref().unwrap_or(""),
                event.problem,
                now,
            );
        }
        Ok(())
    }

    /// How many events of each action ingest requests had refused by validation for `org`
    /// since this process started, most first.
    pub fn rejections(&self, org: &ReadableOrg) -> Vec<RejectionCount> {
        self.rejections.of(Some(org.id))
    }

    /// Every organization's rejection counts, and those of events whose organization could
    /// not be resolved (for `/metrics`).
    pub fn every_org_rejections(&self) -> Vec<OrgRejections> {
        self.rejections.all()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn org(name: &str) -> Org {
        Org {
            id: Uuid::new_v4(),
            name: name.to_string(),
            display_name: name.to_string(),
            audit_logs_enabled: true,
            created_at: millis(0),
        }
    }

    fn millis(ms: i64) -> Timestamp {
        Timestamp::from_millis(ms).expect("a time in range")
    }

    fn problem(message: &str) -> Problem {
        Problem::new("invalid", "actor_email", message)
    }

    #[test]
    fn counts_are_per_organization_and_action_with_the_last_problem() {
        let rejections = Rejections::default();
        let (acme, beta) = (org("acme"), org("beta"));
        let (t1, t2) = (millis(1_000), millis(2_000));
        rejections.count(Some(&acme), "channel_created", problem("first"), t1);
        rejections.count(Some(&acme), "channel_created", problem("second"), t2);
        // A late finisher does not replace a newer problem.
        rejections.count(Some(&acme), "channel_created", problem("older"), t1);
        rejections.count(Some(&acme), "", problem("no action"), t1);
        rejections.count(Some(&beta), "token_created", problem("beta's"), t1);
        rejections.count(None, "channel_created", problem("nobody's"), t1);

        let counts = rejections.of(Some(acme.id));
        assert_eq!(counts.len(), 2);
        assert_eq!(
            counts[0].action,
            RejectedAction::Key("channel_created".into())
        );
        assert_eq!(counts[0].count, 3);
        assert_eq!(counts[0].last_problem.message, "second");
        assert_eq!(counts[0].last_rejected_at, t2);
        assert_eq!(counts[1].action, RejectedAction::Key(String::new()));
        let beta_counts = rejections.of(Some(beta.id));
        assert_eq!(beta_counts.len(), 1);
        assert_eq!(beta_counts[0].last_problem.message, "beta's");
        assert_eq!(rejections.of(None)[0].last_problem.message, "nobody's");
        assert!(rejections.of(Some(Uuid::new_v4())).is_empty());

        let all = rejections.all();
        let names: Vec<Option<&str>> = all.iter().map(|o| o.org_name.as_deref()).collect();
        assert_eq!(names, vec![None, Some("acme"), Some("beta")]);
    }

    #[test]
    fn an_organization_keeps_at_most_its_share_of_actions_then_counts_the_rest_as_other() {
        let rejections = Rejections::default();
        let acme = org("acme");
        let at = millis(1_000);
        for n in 0..MAX_ACTIONS_PER_ORG + 50 {
            rejections.count(Some(&acme), &format!("action_{n}"), problem("x"), at);
        }
        // A key counted before still has its own count.
        rejections.count(Some(&acme), "action_0", problem("again"), at);
        let counts = rejections.of(Some(acme.id));
        assert_eq!(counts.len(), MAX_ACTIONS_PER_ORG + 1);
        assert_eq!(counts[0].action, RejectedAction::Other);
        assert_eq!(counts[0].count, 50);
        assert_eq!(counts[1].action, RejectedAction::Key("action_0".into()));
        assert_eq!(counts[1].count, 2);
        // Another organization has a share of its own.
        let beta = org("beta");
        rejections.count(Some(&beta), "action_1", problem("x"), at);
        assert_eq!(
            rejections.of(Some(beta.id))[0].action,
            RejectedAction::Key("action_1".into())
        );
    }

    #[test]
    fn every_organization_together_keeps_at_most_max_entries() {
        let rejections = Rejections::default();
        let at = millis(1_000);
        let orgs: Vec<Org> = (0..MAX_ENTRIES / MAX_ACTIONS_PER_ORG)
            .map(|n| org(&format!("org-{n}")))
            .collect();
        for org in &orgs {
            for n in 0..MAX_ACTIONS_PER_ORG {
                rejections.count(Some(org), &format!("action_{n}"), problem("x"), at);
            }
        }
        let late = self::org("late");
        rejections.count(Some(&late), "channel_created", problem("x"), at);
        let counts = rejections.of(Some(late.id));
        assert_eq!(counts.len(), 1);
        assert_eq!(counts[0].action, RejectedAction::Other);
    }

    #[test]
    fn long_keys_and_texts_are_kept_cut() {
        let rejections = Rejections::default();
        let acme = org("acme");
        let long_key = "k".repeat(10_000);
        let long_message = "é".repeat(10_000);
        rejections.count(
            Some(&acme),
            &long_key,
            Problem::new("invalid", &"f".repeat(1_000), &long_message),
            millis(1),
        );
        let counts = rejections.of(Some(acme.id));
        let RejectedAction::Key(key) = &counts[0].action else {
            panic!("not a key: {:?}", counts[0].action);
        };
        assert_eq!(*key, format!("{}…", "k".repeat(MAX_ACTION_KEY_KEPT)));
        // Cut at a character boundary: `é` is two bytes.
        assert_eq!(
            counts[0].last_problem.message,
            "é".repeat(MAX_MESSAGE_KEPT / 2)
        );
        assert_eq!(counts[0].last_problem.field.len(), MAX_FIELD_KEPT);
        assert_eq!(cut("aé", 2), "a");
        // Two long keys that differ only after the cut are one count.
        rejections.count(
            Some(&acme),
            &format!("{long_key}x"),
            problem("x"),
            millis(2),
        );
        assert_eq!(rejections.of(Some(acme.id))[0].count, 2);
    }
}
