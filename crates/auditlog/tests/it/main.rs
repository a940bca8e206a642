//! End-to-end tests of the `auditlog` command: each test runs the real binary against its own
//! data directory and checks exit codes, what is printed and what is stored.
//!
//! - `import`: bad input is refused with an error naming the line and the field, and stores
//!   nothing.
//! - `tamper`: `verify` names the first event that no longer matches after the database file
//!   is edited behind auditlog's back.
//! - `events`: filters, limits, paging and the JSON Lines format.
//! - `reindex`: derived state rebuilt from the log answers as before.
//! - `serve_flags`: `serve` refuses a bad `--trusted-proxy` naming it.
//! - `redact`: a bad `--redact` rule is refused naming it; `import` redacts before storing.
//!
//! The helpers below are the only code that spawns the binary or touches the database file.

use std::path::PathBuf;
use std::process::Command;

use auditlog_testkit::process::Run;
use serde_json::{json, Value};
use uuid::Uuid;

mod events;
mod import;
mod readme;
mod redact;
mod reindex;
mod serve_flags;
mod signing_key;
mod tamper;

/// A data directory of its own and the means to run the binary against it. The directory is
/// removed when the value is dropped.
struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    /// A fresh, empty environment.
    fn new() -> Env {
        Env {
            dir: tempfile::tempdir().expect("temporary directory"),
        }
    }

    /// The `--data-dir` every run uses.
    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The SQLite file inside the data directory.
    fn db_path(&self) -> PathBuf {
        self.data_dir().join("auditlog.db")
    }

    /// Runs `auditlog --data-dir DIR ARGS…` to completion. Settings that the environment
    /// could inject are removed so that only the arguments count.
    fn run(&self, args: &[&str]) -> Run {
        let mut command = Command::new(env!("CARGO_BIN_EXE_auditlog"));
        command
            .arg("--data-dir")
            .arg(self.data_dir())
            .args(args)
            .env_remove("AUDITLOG_DATA_DIR")
            .env_remove("AUDITLOG_CATALOG")
            .env_remove("AUDITLOG_PRESET")
            .env_remove("AUDITLOG_ACCEPT_UNKNOWN_ACTIONS")
            .env("AUDITLOG_LOG", "warn");
        Run::of(&format!("auditlog {args:?}"), &mut command)
    }

    /// Creates an organization and returns its id, parsed from the confirmation line.
    fn create_org(&self, name: &str) -> Uuid {
        let run = self.run(&["org", "create", name, "--enroll"]);
        run.expect_code(0);
        let id = run
            .stdout
            .split(['(', ')'])
            .nth(1)
            .unwrap_or_else(|| panic!("no id in {:?}", run.stdout));
        Uuid::parse_str(id).expect("org create prints the id")
    }

    /// Writes `lines` (one JSON Lines record each, written as given) to a file in the
    /// environment's directory and returns its path.
    fn write_file(&self, name: &str, lines: &[String]) -> PathBuf {
        let path = self.dir.path().join(name);
        let mut text = lines.join("\n");
        text.push('\n');
        std::fs::write(&path, text).expect("write the import file");
        path
    }

    /// Runs `import FILE --org ORG EXTRA…` on a file made of `lines`.
    fn import(&self, org: &str, lines: &[String], extra: &[&str]) -> Run {
        let path = self.write_file("import.jsonl", lines);
        let path = path.to_str().expect("UTF-8 temporary path");
        let mut args = vec!["import", path, "--org", org];
        args.extend_from_slice(extra);
        self.run(&args)
    }

    /// Runs `events --org ORG --format jsonl ARGS…` and parses every line.
    fn events_jsonl(&self, org: &str, args: &[&str]) -> Vec<Value> {
        let mut all = vec!["events", "--org", org, "--format", "jsonl"];
        all.extend_from_slice(args);
        let run = self.run(&all);
        run.expect_code(0);
        run.stdout
            .lines()
            .map(|line| {
                serde_json::from_str(line)
                    .unwrap_or_else(|e| panic!("line {line:?} is not JSON: {e}"))
            })
            .collect()
    }

    /// Opens the database file directly, as someone with access to the disk could.
    fn open_db(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(self.db_path()).expect("open auditlog.db")
    }
}

/// A valid event in the ingest format, `n` minutes after 2025-03-01T00:00:00Z, rotating
/// through a few actions and actors, with `n` in its `meta` and `request_id`.
fn valid_event(n: usize) -> Value {
    const ACTIONS: [&str; 4] = [
        "channel_created",
        "channel_deleted",
        "token_revoked",
        "policy_created",
    ];
    const ACTORS: [&str; 3] = ["alice", "bob", "carol"];
    let actor = ACTORS[n % ACTORS.len()];
    let at = 1_740_787_200_000_i64 + n as i64 * 60_000;
    json!({
        "action_key": ACTIONS[n % ACTIONS.len()],
        "actor_id": format!("user-{actor}"),
        "actor_email": format!("{actor}@example.com"),
        "target_name": format!("channel-{n}"),
        "service_name": "console",
        "ip_address": "192.0.2.10",
        "request_id": format!("req-{n}"),
        "meta": {"n": n},
        "occurred_at": auditlog_core::Timestamp::from_millis(at).expect("in range").to_string(),
    })
}

/// `valid_event(start..start + count)`, one JSON text each.
fn valid_lines(start: usize, count: usize) -> Vec<String> {
    (start..start + count)
        .map(|n| valid_event(n).to_string())
        .collect()
}

/// An event's position as these tests address it: the organization's key in the top bits,
/// `seq` below (`org_key << 40 | seq` in SQL over the `log` table).
fn pos(db: &rusqlite::Connection, org: &str, seq: u64) -> i64 {
    let org_key: i64 = db
        .query_row("SELECT org_key FROM orgs WHERE name = ?1", [org], |row| {
            row.get(0)
        })
        .expect("org_key");
    (org_key << 40) | seq as i64
}

/// The id of the event stored at `pos`.
fn event_id_at(db: &rusqlite::Connection, pos: i64) -> Uuid {
    let bytes: Vec<u8> = db
        .query_row(
            "SELECT id FROM log WHERE (org_key << 40 | seq) = ?1",
            [pos],
            |row| row.get(0),
        )
        .expect("event at pos");
    Uuid::from_slice(&bytes).expect("16-byte id")
}
