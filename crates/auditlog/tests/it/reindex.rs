//! `reindex`: derived state is rebuilt from the log, with every answer unchanged — after a
//! reset in place, and after `index.db` is deleted outright.

use crate::{valid_event, Env};

fn lines(n: usize) -> Vec<String> {
    (0..n).map(|i| valid_event(i).to_string()).collect()
}

/// What the questions a user asks answer: every event, a filter, and a search.
fn answers(env: &Env) -> Vec<Vec<serde_json::Value>> {
    vec![
        env.events_jsonl("acme", &["--limit", "1000"]),
        env.events_jsonl(
            "acme",
            &["--action", "token_revoked", "--user", "bob@example.com"],
        ),
        env.events_jsonl("acme", &["--search", "channel 17"]),
    ]
}

#[test]
fn reindex_rebuilds_derived_state_with_every_answer_unchanged() {
    let env = Env::new();
    env.create_org("acme");
    env.import("acme", &lines(240), &[]).expect_code(0);
    let before = answers(&env);
    assert_eq!(before[0].len(), 240);
    assert!(!before[1].is_empty() && !before[2].is_empty());

    let run = env.run(&["reindex"]);
    run.expect_code(0);
    assert!(
        run.stdout.contains("rebuilt from the log"),
        "{}",
        run.stdout
    );
    assert_eq!(answers(&env), before, "after reindex");

    // With the derived file gone, the next open rebuilds it from the log.
    for suffix in ["", "-wal", "-shm"] {
        let path = env.data_dir().join(format!("index.db{suffix}"));
        if path.exists() {
            std::fs::remove_file(path).expect("remove the index");
        }
    }
    assert_eq!(answers(&env), before, "after index.db was deleted");
    env.run(&["verify"]).expect_code(0);
}
