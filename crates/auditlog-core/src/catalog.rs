//! The action catalog: which actions a deployment accepts, with their display names,
//! descriptions, groups, verbs and target types.
//!
//! Two presets ship with the crate:
//! - [`Preset::Cloud`]: the 27 actions of the Anaconda Platform (Cloud) audit log, with display
//!   names and descriptions exactly as the reference product writes them;
//! - [`Preset::SelfHosted`]: the 19 actions of the Anaconda Platform self-hosted audit log
//!   (channel groups, mirrors, policies, user tokens, …).
//!
//! A deployment adds its own actions from a TOML file with [`Catalog::extend_from_toml`]:
//!
//! ```toml
//! # Optional; when present, sets whether events with an action that is not in the catalog
//! # are accepted (true) or rejected (false, the default).
//! accept_unknown = false
//!
//! [[action]]
//! key = "mirror_synced"                   # ^[a-z][a-z0-9_]{0,63}$, new to the catalog
//! display_name = "Mirror Synced"          # 1 to 128 characters
//! description = "A mirror finished synchronizing."  # at most 512 characters
//! group = "Mirrors"                       # 1 to 64 characters; the filter pane's heading
//! verb = "synced"                         # 1 to 64 characters of a-z and _
//! target_type = "mirror"                  # 1 to 64 characters of a-z and _
//! ```
//!
//! Every field of an `[[action]]` is required and unknown fields are errors, so that a typo
//! is reported instead of silently ignored. A file is applied all or nothing.

use std::collections::HashMap;

use serde::Deserialize;

/// One kind of action, such as `channel_created`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Action {
    /// Machine key: the snake_case of the display name, e.g. `group_assigned_to_channel`.
    pub key: String,
    /// The name shown to people, e.g. `Group Assigned To Channel`.
    pub display_name: String,
    /// One sentence saying what happened.
    pub description: String,
    /// The heading the action is listed under in the filter pane, e.g. `Channels`.
    pub group: String,
    /// What was done, as a past-tense verb: `created`, `assigned`, `revoked`, …
    pub verb: String,
    /// What kind of thing it was done to: `channel`, `service_account`, `token`, …
    pub target_type: String,
}

/// A catalog that ships with the crate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Preset {
    /// The 27 actions of the Anaconda Platform (Cloud) audit log, the reference product.
    Cloud,
    /// The 19 actions of the Anaconda Platform self-hosted audit log.
    SelfHosted,
}

impl Preset {
    /// The name used on the command line and in configuration: `cloud` or `self-hosted`.
    pub fn as_str(self) -> &'static str {
        match self {
            Preset::Cloud => "cloud",
            Preset::SelfHosted => "self-hosted",
        }
    }

    /// Parses a name produced by [`Preset::as_str`].
    pub fn parse(text: &str) -> Option<Preset> {
        match text {
            "cloud" => Some(Preset::Cloud),
            "self-hosted" => Some(Preset::SelfHosted),
            _ => None,
        }
    }
}

/// Why a catalog file was rejected. Nothing from the file is applied when this is returned.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// The file is not TOML, or does not have the documented shape (a missing or unknown
    /// field, a wrong type); the message names the line and the field.
    #[error("catalog file: {message}")]
    Parse {
        /// What is wrong and where.
        message: String,
    },
    /// An action breaks a documented limit.
    #[error("catalog action `{key}`: {message}")]
    Invalid {
        /// The key of the offending action, as written in the file.
        key: String,
        /// Which field is wrong and why.
        message: String,
    },
    /// An action's key is already in the catalog, or appears twice in the file.
    #[error("catalog action `{key}` is already defined")]
    Duplicate {
        /// The repeated key.
        key: String,
    },
}

/// The set of actions a deployment accepts.
///
/// Actions are kept contiguous by group, groups in the order they were first introduced, so
/// that the filter pane can list them without sorting.
#[derive(Clone, Debug)]
pub struct Catalog {
    /// In display order: by group, then in the order they were added within the group.
    actions: Vec<Action>,
    /// Position of each action in `actions`, by key.
    index: HashMap<String, usize>,
    /// Whether events whose action is not in the catalog are accepted rather than rejected.
    pub accept_unknown: bool,
}

impl Catalog {
    /// One of the shipped catalogs, rejecting unknown actions.
    pub fn preset(preset: Preset) -> Catalog {
        let rows = match preset {
            Preset::Cloud => CLOUD,
            Preset::SelfHosted => SELF_HOSTED,
        };
        let mut catalog = Catalog {
            actions: Vec::with_capacity(rows.len()),
            index: HashMap::with_capacity(rows.len()),
            accept_unknown: false,
        };
        for row in rows {
            catalog.insert_row(row);
        }
        catalog
    }

    /// Adds one action of a built-in table.
    fn insert_row(&mut self, &(key, display_name, description, group, verb, target_type): &Row) {
        self.insert(Action {
            key: key.to_string(),
            display_name: display_name.to_string(),
            description: description.to_string(),
            group: group.to_string(),
            verb: verb.to_string(),
            target_type: target_type.to_string(),
        });
    }

    /// The catalog of the reference product: [`Preset::Cloud`].
    pub fn builtin() -> Catalog {
        Catalog::preset(Preset::Cloud)
    }

    /// The action with this key, if the catalog has it.
    pub fn get(&self, key: &str) -> Option<&Action> {
        self.index.get(key).map(|&idx| &self.actions[idx])
    }

    /// This catalog with every action auditlog records about itself added where missing
    /// (the reference product's [`SERVICE_ACTIONS`], and [`OWN_ACTIONS`], which no preset
    /// lists): what the service validates its own records against, so that they are made
    /// whatever the deployment's catalog.
    pub fn with_own_actions(&self) -> Catalog {
        let mut catalog = self.clone();
        let service_rows = CLOUD.iter().filter(|row| SERVICE_ACTIONS.contains(&row.0));
        for row in service_rows.chain(OWN_ACTIONS) {
            if catalog.get(row.0).is_none() {
                catalog.insert_row(row);
            }
        }
        catalog
    }

    /// All actions, by group and then in catalog order within each group.
    pub fn actions(&self) -> &[Action] {
        &self.actions
    }

    /// The actions grouped under their headings, in display order: what the filter pane lists.
    pub fn groups(&self) -> Vec<(&str, Vec<&Action>)> {
        let mut groups: Vec<(&str, Vec<&Action>)> = Vec::new();
        // Actions of a group are contiguous (see `insert`), so a group ends where the
        // next one starts.
        for action in &self.actions {
            match groups.last_mut() {
                Some((group, members)) if *group == action.group => members.push(action),
                _ => groups.push((action.group.as_str(), vec![action])),
            }
        }
        groups
    }

    /// Adds the actions of a TOML catalog file (format in the module documentation) and
    /// applies its `accept_unknown` setting when present. Returns the number of actions added.
    ///
    /// Every action is checked before any is added, so on error the catalog is unchanged.
    pub fn extend_from_toml(&mut self, text: &str) -> Result<usize, CatalogError> {
        let file: CatalogFile = toml::from_str(text).map_err(|err| CatalogError::Parse {
            message: describe_toml_error(text, &err),
        })?;
        let mut new_keys: Vec<&str> = Vec::with_capacity(file.action.len());
        for entry in &file.action {
            validate_entry(entry)?;
            if self.index.contains_key(&entry.key) || new_keys.contains(&entry.key.as_str()) {
                return Err(CatalogError::Duplicate {
                    key: entry.key.clone(),
                });
            }
            new_keys.push(&entry.key);
        }
        let n_added = file.action.len();
        for entry in file.action {
            self.insert(Action {
                key: entry.key,
                display_name: entry.display_name,
                description: entry.description,
                group: entry.group,
                verb: entry.verb,
                target_type: entry.target_type,
            });
        }
        if let Some(accept_unknown) = file.accept_unknown {
            self.accept_unknown = accept_unknown;
        }
        Ok(n_added)
    }

    /// Adds an action after the last one of its group (or at the end for a new group) and
    /// reindexes. The caller has checked that the key is new.
    fn insert(&mut self, action: Action) {
        let position = self
            .actions
            .iter()
            .rposition(|existing| existing.group == action.group)
            .map_or(self.actions.len(), |last| last + 1);
        self.actions.insert(position, action);
        // Positions after the insertion point moved; catalogs are small and rarely extended,
        // so rebuilding is simpler than patching.
        self.index = self
            .actions
            .iter()
            .enumerate()
            .map(|(idx, action)| (action.key.clone(), idx))
            .collect();
    }
}

/// The verb and target type of an action of either preset, whatever the deployment's
/// catalog: the message renderer falls back on them so that a preset action's sentence
/// reads the same under the other preset.
pub(crate) fn preset_verb_and_target_type(key: &str) -> Option<(&'static str, &'static str)> {
    CLOUD
        .iter()
        .chain(SELF_HOSTED)
        .find(|row| row.0 == key)
        .map(|&(_, _, _, _, verb, target_type)| (verb, target_type))
}

/// The shape of a catalog file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogFile {
    accept_unknown: Option<bool>,
    #[serde(default)]
    action: Vec<ActionEntry>,
}

/// One `[[action]]` table of a catalog file; unlike [`Action`] it may break the limits,
/// which [`validate_entry`] then reports.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ActionEntry {
    key: String,
    display_name: String,
    description: String,
    group: String,
    verb: String,
    target_type: String,
}

/// The longest key, in bytes (keys are ASCII).
const MAX_KEY_LEN: usize = 64;
/// The longest display name, in characters.
const MAX_DISPLAY_NAME_CHARS: usize = 128;
/// The longest description, in characters.
const MAX_DESCRIPTION_CHARS: usize = 512;
/// The longest group, verb or target type, in characters.
const MAX_SHORT_CHARS: usize = 64;

/// Checks one entry against the limits of the module documentation.
fn validate_entry(entry: &ActionEntry) -> Result<(), CatalogError> {
    let invalid = |message: String| CatalogError::Invalid {
        key: entry.key.clone(),
        message,
    };
    if !is_valid_key(&entry.key) {
        return Err(invalid(format!(
            "field `key` must match ^[a-z][a-z0-9_]{{0,{}}}$",
            MAX_KEY_LEN - 1
        )));
    }
    check_length(
        "display_name",
        &entry.display_name,
        1,
        MAX_DISPLAY_NAME_CHARS,
    )
    .map_err(invalid)?;
    check_length("description", &entry.description, 0, MAX_DESCRIPTION_CHARS).map_err(invalid)?;
    check_length("group", &entry.group, 1, MAX_SHORT_CHARS).map_err(invalid)?;
    for (field, value) in [("verb", &entry.verb), ("target_type", &entry.target_type)] {
        check_length(field, value, 1, MAX_SHORT_CHARS).map_err(invalid)?;
        // Verbs and target types are matched and filtered on, so they keep to one spelling.
        if !value.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
            return Err(invalid(format!(
                "field `{field}` may contain only a-z and _, got {value:?}"
            )));
        }
    }
    Ok(())
}

/// Whether `key` matches `^[a-z][a-z0-9_]{0,63}$`.
fn is_valid_key(key: &str) -> bool {
    let bytes = key.as_bytes();
    match bytes.split_first() {
        Some((first, rest)) => {
            first.is_ascii_lowercase()
                && bytes.len() <= MAX_KEY_LEN
                && rest
                    .iter()
                    .all(|&b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        }
        None => false,
    }
}

/// Checks that `value` has between `min` and `max` characters (not bytes: names may be
/// written in any language).
fn check_length(field: &str, value: &str, min: usize, max: usize) -> Result<(), String> {
    let n_chars = value.chars().count();
    if (min..=max).contains(&n_chars) {
        Ok(())
    } else {
        Err(format!(
            "field `{field}` must have {min} to {max} characters, has {n_chars}"
        ))
    }
}

/// A one-line description of a TOML error: `line N: message`. The error's own `Display`
/// draws a multi-line source excerpt, which does not fit an API error or a log line, and
/// even its message may span lines, which are joined with `; `.
fn describe_toml_error(text: &str, err: &toml::de::Error) -> String {
    let message = err
        .message()
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    match err.span() {
        Some(span) => {
            let line = text.as_bytes()[..span.start.min(text.len())]
                .iter()
                .filter(|&&b| b == b'\n')
                .count()
                + 1;
            format!("line {line}: {message}")
        }
        None => message,
    }
}

/// A catalog row: key, display name, description, group, verb, target type.
type Row = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
);

/// The reference product's actions that auditlog records about itself: its own users, roles,
/// service accounts, tokens, sign-ins and exports.
pub const SERVICE_ACTIONS: [&str; 10] = [
    "audit_log_export_requested",
    "authentication_success",
    "organization_user_added",
    "organization_user_removed",
    "organization_user_updated",
    "service_account_created",
    "service_account_deleted",
    "service_account_updated",
    "token_created",
    "token_revoked",
];

/// The actions auditlog records about itself beyond the reference product's: a refused
/// request to read an organization's audit log (recorded with outcome `denied`).
pub const OWN_ACTIONS: &[Row] = &[
    (
        "audit_log_access_denied",
        "Audit Log Access Denied",
        "A request to read the organization\u{2019}s audit log was refused.",
        "Audit Logs",
        "denied",
        "audit_log",
    ),
    (
        "legal_hold_placed",
        "Legal Hold Placed",
        "A legal hold was placed on the organization\u{2019}s audit log, or on one person\u{2019}s records in it.",
        "Audit Logs",
        "placed",
        "legal_hold",
    ),
    (
        "legal_hold_lifted",
        "Legal Hold Lifted",
        "A legal hold on the organization\u{2019}s audit log was lifted.",
        "Audit Logs",
        "lifted",
        "legal_hold",
    ),
    (
        "audit_log_retention_changed",
        "Audit Log Retention Changed",
        "How long the organization\u{2019}s audit log keeps events was changed.",
        "Audit Logs",
        "changed",
        "audit_log",
    ),
    (
        "audit_log_purged",
        "Audit Log Purged",
        "Events older than the organization\u{2019}s retention period were purged from its audit log.",
        "Audit Logs",
        "purged",
        "audit_log",
    ),
    (
        "data_subject_erased",
        "Data Subject Erased",
        "One person\u{2019}s personal data was erased from the organization\u{2019}s audit log.",
        "Audit Logs",
        "erased",
        "data_subject",
    ),
];

/// The reference product's catalog, in its order: groups as the seed lists them, actions in
/// seed order within each group. Names and descriptions are the seed's text, character for
/// character (including the typographic apostrophes).
const CLOUD: &[Row] = &[
    (
        "audit_log_export_requested",
        "Audit Log Export Requested",
        "An administrator requested an export of the audit log.",
        "Audit Logs",
        "requested",
        "audit_log",
    ),
    (
        "channel_created",
        "Channel Created",
        "A new channel was created in the organization.",
        "Channels",
        "created",
        "channel",
    ),
    (
        "channel_deleted",
        "Channel Deleted",
        "A channel was deleted from the organization.",
        "Channels",
        "deleted",
        "channel",
    ),
    // The channel is the target: its access list is what changed.
    (
        "group_assigned_to_channel",
        "Group Assigned To Channel",
        "A group was granted access to a channel.",
        "Channels",
        "assigned",
        "channel",
    ),
    (
        "group_unassigned_from_channel",
        "Group Unassigned From Channel",
        "A group\u{2019}s access to a channel was removed.",
        "Channels",
        "unassigned",
        "channel",
    ),
    (
        "invitation_created",
        "Invitation Created",
        "An administrator invited a user to the organization.",
        "Organizations",
        "created",
        "invitation",
    ),
    (
        "organization_updated",
        "Organization Updated",
        "Organization details were updated.",
        "Organizations",
        "updated",
        "organization",
    ),
    (
        "organization_user_added",
        "Organization User Added",
        "A user joined the organization.",
        "Organizations",
        "added",
        "user",
    ),
    (
        "organization_user_removed",
        "Organization User Removed",
        "A user was removed from the organization.",
        "Organizations",
        "removed",
        "user",
    ),
    (
        "organization_user_updated",
        "Organization User Updated",
        "A user\u{2019}s role was updated.",
        "Organizations",
        "updated",
        "user",
    ),
    (
        "authentication_success",
        "Authentication Success",
        "A user successfully authenticated to the organization.",
        "Organizations",
        "succeeded",
        "organization",
    ),
    (
        "policy_assigned",
        "Policy Assigned",
        "A policy was assigned to a user or group.",
        "Organizations",
        "assigned",
        "policy",
    ),
    (
        "policy_created",
        "Policy Created",
        "A new policy was created.",
        "Organizations",
        "created",
        "policy",
    ),
    (
        "policy_deleted",
        "Policy Deleted",
        "A policy was deleted.",
        "Organizations",
        "deleted",
        "policy",
    ),
    (
        "policy_unassigned",
        "Policy Unassigned",
        "A policy was removed from a user or group.",
        "Organizations",
        "unassigned",
        "policy",
    ),
    (
        "policy_updated",
        "Policy Updated",
        "An existing policy was modified.",
        "Organizations",
        "updated",
        "policy",
    ),
    // The seat holder is the target; the product usually travels in `meta.product`.
    (
        "product_assigned",
        "Product Assigned",
        "A user was assigned a seat.",
        "Organizations",
        "assigned",
        "user",
    ),
    (
        "product_revoked",
        "Product Revoked",
        "A user\u{2019}s seat was revoked.",
        "Organizations",
        "revoked",
        "user",
    ),
    (
        "service_account_created",
        "Service Account Created",
        "A new service account was created.",
        "Organizations",
        "created",
        "service_account",
    ),
    (
        "service_account_deleted",
        "Service Account Deleted",
        "A service account was deleted.",
        "Organizations",
        "deleted",
        "service_account",
    ),
    (
        "service_account_updated",
        "Service Account Updated",
        "A service account was modified.",
        "Organizations",
        "updated",
        "service_account",
    ),
    (
        "user_added_to_group",
        "User Added To Group",
        "A user was added to a group.",
        "Organizations",
        "added",
        "user",
    ),
    (
        "user_group_created",
        "User Group Created",
        "A new group was created.",
        "Organizations",
        "created",
        "group",
    ),
    (
        "user_group_deleted",
        "User Group Deleted",
        "A group was deleted.",
        "Organizations",
        "deleted",
        "group",
    ),
    (
        "user_removed_from_group",
        "User Removed From Group",
        "A user was removed from a group.",
        "Organizations",
        "removed",
        "user",
    ),
    (
        "token_created",
        "Token Created",
        "A user generated a new token.",
        "Users",
        "created",
        "token",
    ),
    (
        "token_revoked",
        "Token Revoked",
        "A user\u{2019}s token was revoked.",
        "Users",
        "revoked",
        "token",
    ),
];

/// The Anaconda Platform self-hosted catalog: the 19 actions its audit-log documentation
/// lists. That documentation gives only the names, so the descriptions, groups, verbs and
/// target types are ours, written in the style of the Cloud catalog.
const SELF_HOSTED: &[Row] = &[
    (
        "channel_created",
        "Channel Created",
        "A new channel was created.",
        "Channels",
        "created",
        "channel",
    ),
    (
        "channel_deleted",
        "Channel Deleted",
        "A channel was deleted.",
        "Channels",
        "deleted",
        "channel",
    ),
    (
        "channel_group_added",
        "Channel Group Added",
        "A group was granted access to a channel.",
        "Channels",
        "added",
        "channel",
    ),
    (
        "channel_group_deleted",
        "Channel Group Deleted",
        "A group\u{2019}s access to a channel was removed.",
        "Channels",
        "deleted",
        "channel",
    ),
    (
        "channel_policy_assigned",
        "Channel Policy Assigned",
        "A policy was assigned to a channel.",
        "Channels",
        "assigned",
        "channel",
    ),
    (
        "channel_policy_unassigned",
        "Channel Policy Unassigned",
        "A policy was removed from a channel.",
        "Channels",
        "unassigned",
        "channel",
    ),
    (
        "group_user_added",
        "Group User Added",
        "A user was added to a group.",
        "Groups",
        "added",
        "user",
    ),
    (
        "group_user_deleted",
        "Group User Deleted",
        "A user was removed from a group.",
        "Groups",
        "deleted",
        "user",
    ),
    (
        "mirror_registered",
        "Mirror Registered",
        "A new mirror was registered for a channel.",
        "Mirrors",
        "registered",
        "mirror",
    ),
    (
        "mirror_deleted",
        "Mirror Deleted",
        "A mirror was deleted.",
        "Mirrors",
        "deleted",
        "mirror",
    ),
    (
        "mirror_policy_unassigned",
        "Mirror Policy Unassigned",
        "A policy was removed from a mirror.",
        "Mirrors",
        "unassigned",
        "mirror",
    ),
    (
        "policy_created",
        "Policy Created",
        "A new policy was created.",
        "Policies",
        "created",
        "policy",
    ),
    (
        "policy_updated",
        "Policy Updated",
        "An existing policy was modified.",
        "Policies",
        "updated",
        "policy",
    ),
    (
        "policy_deleted",
        "Policy Deleted",
        "A policy was deleted.",
        "Policies",
        "deleted",
        "policy",
    ),
    (
        "user_token_created",
        "User Token Created",
        "A user generated a new token.",
        "Tokens",
        "created",
        "token",
    ),
    (
        "user_token_metadata_updated",
        "User Token Metadata Updated",
        "The name or description of a user\u{2019}s token was changed.",
        "Tokens",
        "updated",
        "token",
    ),
    (
        "user_token_revoked",
        "User Token Revoked",
        "A user\u{2019}s token was revoked.",
        "Tokens",
        "revoked",
        "token",
    ),
    (
        "user_token_updated",
        "User Token Updated",
        "The scopes or expiry of a user\u{2019}s token were changed.",
        "Tokens",
        "updated",
        "token",
    ),
    (
        "user_default_channel_updated",
        "User Default Channel Updated",
        "A user\u{2019}s default channel was changed.",
        "Users",
        "updated",
        "user",
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    /// The reference product's catalog as the Anaconda Platform audit log's documentation
    /// gives it (`docs/catalog.md`): group, display name, description.
    #[rustfmt::skip]
    const SEED: &[(&str, &str, &str)] = &[
        ("Audit Logs", "Audit Log Export Requested", "An administrator requested an export of the audit log."),
        ("Channels", "Channel Created", "A new channel was created in the organization."),
        ("Channels", "Channel Deleted", "A channel was deleted from the organization."),
        ("Channels", "Group Assigned To Channel", "A group was granted access to a channel."),
        ("Channels", "Group Unassigned From Channel", "A group’s access to a channel was removed."),
        ("Organizations", "Invitation Created", "An administrator invited a user to the organization."),
        ("Organizations", "Organization Updated", "Organization details were updated."),
        ("Organizations", "Organization User Added", "A user joined the organization."),
        ("Organizations", "Organization User Removed", "A user was removed from the organization."),
        ("Organizations", "Organization User Updated", "A user’s role was updated."),
        ("Organizations", "Authentication Success", "A user successfully authenticated to the organization."),
        ("Organizations", "Policy Assigned", "A policy was assigned to a user or group."),
        ("Organizations", "Policy Created", "A new policy was created."),
        ("Organizations", "Policy Deleted", "A policy was deleted."),
        ("Organizations", "Policy Unassigned", "A policy was removed from a user or group."),
        ("Organizations", "Policy Updated", "An existing policy was modified."),
        ("Organizations", "Product Assigned", "A user was assigned a seat."),
        ("Organizations", "Product Revoked", "A user’s seat was revoked."),
        ("Organizations", "Service Account Created", "A new service account was created."),
        ("Organizations", "Service Account Deleted", "A service account was deleted."),
        ("Organizations", "Service Account Updated", "A service account was modified."),
        ("Organizations", "User Added To Group", "A user was added to a group."),
        ("Organizations", "User Group Created", "A new group was created."),
        ("Organizations", "User Group Deleted", "A group was deleted."),
        ("Organizations", "User Removed From Group", "A user was removed from a group."),
        ("Users", "Token Created", "A user generated a new token."),
        ("Users", "Token Revoked", "A user’s token was revoked."),
    ];

    /// The rule every preset key follows: the display name, lowercased, words joined by `_`.
    fn snake_case(display_name: &str) -> String {
        display_name.to_lowercase().replace(' ', "_")
    }

    fn assert_well_formed(catalog: &Catalog) {
        for (idx, action) in catalog.actions().iter().enumerate() {
            assert_eq!(action.key, snake_case(&action.display_name));
            assert!(is_valid_key(&action.key), "{}", action.key);
            assert_eq!(catalog.get(&action.key), Some(action));
            assert_eq!(catalog.index[&action.key], idx);
            for value in [&action.verb, &action.target_type] {
                assert!(value.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'));
            }
        }
        assert_eq!(
            catalog.index.len(),
            catalog.actions().len(),
            "keys are unique"
        );
    }

    #[test]
    fn cloud_preset_is_the_seed_catalog() {
        let catalog = Catalog::builtin();
        assert!(!catalog.accept_unknown);
        let actual: Vec<(&str, &str, &str)> = catalog
            .actions()
            .iter()
            .map(|a| {
                (
                    a.group.as_str(),
                    a.display_name.as_str(),
                    a.description.as_str(),
                )
            })
            .collect();
        assert_eq!(actual, SEED);
        assert_eq!(catalog.actions().len(), 27);
        assert_well_formed(&catalog);

        let groups: Vec<(&str, usize)> = catalog
            .groups()
            .iter()
            .map(|(group, actions)| (*group, actions.len()))
            .collect();
        assert_eq!(
            groups,
            [
                ("Audit Logs", 1),
                ("Channels", 4),
                ("Organizations", 20),
                ("Users", 2)
            ]
        );
        let authentication = catalog.get("authentication_success").unwrap();
        assert_eq!(authentication.verb, "succeeded");
        assert_eq!(
            catalog
                .get("audit_log_export_requested")
                .unwrap()
                .target_type,
            "audit_log"
        );
    }

    #[test]
    fn self_hosted_preset_has_19_unique_actions() {
        let catalog = Catalog::preset(Preset::SelfHosted);
        assert!(!catalog.accept_unknown);
        assert_eq!(catalog.actions().len(), 19);
        assert_well_formed(&catalog);
        let groups: Vec<&str> = catalog.groups().iter().map(|(group, _)| *group).collect();
        assert_eq!(
            groups,
            ["Channels", "Groups", "Mirrors", "Policies", "Tokens", "Users"]
        );
        assert!(catalog.get("user_token_metadata_updated").is_some());
        assert!(catalog.get("audit_log_export_requested").is_none());
    }

    #[test]
    fn preset_names_round_trip() {
        for preset in [Preset::Cloud, Preset::SelfHosted] {
            assert_eq!(Preset::parse(preset.as_str()), Some(preset));
        }
        assert_eq!(Preset::parse("Cloud"), None);
    }

    const VALID: &str = r#"
accept_unknown = true

[[action]]
key = "mirror_synced"
display_name = "Mirror Synced"
description = "A mirror finished synchronizing."
group = "Mirrors"
verb = "synced"
target_type = "mirror"

[[action]]
key = "channel_frozen"
display_name = "Channel Frozen"
description = ""
group = "Channels"
verb = "frozen"
target_type = "channel"
"#;

    #[test]
    fn toml_adds_actions_within_their_groups() {
        let mut catalog = Catalog::builtin();
        assert_eq!(catalog.extend_from_toml(VALID).unwrap(), 2);
        assert!(catalog.accept_unknown);
        assert_eq!(catalog.actions().len(), 29);
        assert_well_formed(&catalog);

        let mirror = catalog.get("mirror_synced").unwrap();
        assert_eq!(mirror.display_name, "Mirror Synced");
        assert_eq!(mirror.verb, "synced");
        let groups: Vec<(&str, Vec<&str>)> = catalog
            .groups()
            .into_iter()
            .map(|(group, actions)| (group, actions.iter().map(|a| a.key.as_str()).collect()))
            .collect();
        // A known group keeps its place and gains the action at its end; a new group goes last.
        assert_eq!(
            groups[1],
            (
                "Channels",
                vec![
                    "channel_created",
                    "channel_deleted",
                    "group_assigned_to_channel",
                    "group_unassigned_from_channel",
                    "channel_frozen",
                ]
            )
        );
        assert_eq!(groups[4], ("Mirrors", vec!["mirror_synced"]));
    }

    #[test]
    fn toml_without_actions_only_sets_accept_unknown() {
        let mut catalog = Catalog::preset(Preset::SelfHosted);
        assert_eq!(
            catalog.extend_from_toml("accept_unknown = true\n").unwrap(),
            0
        );
        assert!(catalog.accept_unknown);
        assert_eq!(catalog.extend_from_toml("").unwrap(), 0);
        assert!(catalog.accept_unknown, "absent setting leaves it alone");
        assert_eq!(catalog.actions().len(), 19);
    }

    /// A valid action table whose `field` is replaced by `line` (or removed when empty).
    fn action_with(field: &str, line: &str) -> String {
        let mut text = String::from("[[action]]\n");
        for (name, value) in [
            ("key", "\"mirror_synced\""),
            ("display_name", "\"Mirror Synced\""),
            ("description", "\"A mirror finished synchronizing.\""),
            ("group", "\"Mirrors\""),
            ("verb", "\"synced\""),
            ("target_type", "\"mirror\""),
        ] {
            if name == field {
                text.push_str(line);
            } else {
                text.push_str(&format!("{name} = {value}"));
            }
            text.push('\n');
        }
        text
    }

    #[test]
    fn invalid_toml_is_an_error_that_names_the_problem_and_adds_nothing() {
        let good = action_with("", "");
        let long_name = format!("display_name = \"{}\"", "x".repeat(129));
        let cases: Vec<(&str, String, &str)> = vec![
            (
                "bad key",
                action_with("key", "key = \"Mirror-Synced\""),
                "catalog action `Mirror-Synced`: field `key` must match ^[a-z][a-z0-9_]{0,63}$",
            ),
            (
                "key too long",
                action_with("key", &format!("key = \"{}\"", "k".repeat(65))),
                "field `key` must match",
            ),
            (
                "duplicate of a preset key",
                action_with("key", "key = \"channel_created\""),
                "catalog action `channel_created` is already defined",
            ),
            (
                "duplicate within the file",
                format!("{good}{good}"),
                "catalog action `mirror_synced` is already defined",
            ),
            (
                "unknown field",
                action_with("group", "group = \"Mirrors\"\ncolour = \"blue\""),
                "unknown field `colour`",
            ),
            (
                "unknown top-level field",
                format!("accept_unknown = true\naccept_unknow = true\n{good}"),
                "unknown field `accept_unknow`",
            ),
            (
                "missing field",
                action_with("verb", ""),
                "missing field `verb`",
            ),
            (
                "empty display name",
                action_with("display_name", "display_name = \"\""),
                "catalog action `mirror_synced`: field `display_name` must have 1 to 128 characters, has 0",
            ),
            (
                "display name too long",
                action_with("display_name", &long_name),
                "field `display_name` must have 1 to 128 characters, has 129",
            ),
            (
                "verb with a capital",
                action_with("verb", "verb = \"Synced\""),
                "field `verb` may contain only a-z and _",
            ),
            (
                "target type with a space",
                action_with("target_type", "target_type = \"mirror site\""),
                "field `target_type` may contain only a-z and _",
            ),
            (
                "wrong type",
                action_with("group", "group = 3"),
                "line 13: invalid type",
            ),
            ("not toml", format!("{good}[[action"), "catalog file: line"),
        ];
        for (name, text, expected) in cases {
            // The good action first proves that nothing is added when a later one fails.
            let first = good.replace("mirror_synced", "first_ok");
            // Top-level keys must precede the first table, so a case that starts with one
            // goes first.
            let text = if text.starts_with("[[action]]") {
                format!("accept_unknown = true\n{first}{text}")
            } else {
                format!("{text}{first}")
            };
            let mut catalog = Catalog::builtin();
            let err = catalog.extend_from_toml(&text).unwrap_err().to_string();
            assert!(err.contains(expected), "{name}: {err:?} lacks {expected:?}");
            assert!(!err.contains('\n'), "{name}: one line: {err:?}");
            assert_eq!(catalog.actions().len(), 27, "{name}");
            assert!(catalog.get("first_ok").is_none(), "{name}");
            assert!(!catalog.accept_unknown, "{name}");
        }
    }
}
