//! `verify` against a database edited behind auditlog's back: each case changes the file
//! the way an attacker with disk access could, and checks that verification fails (exit 1)
//! naming the first event, or the checkpoint, that no longer matches, while an untouched
//! organization beside it still verifies.

use crate::{event_id_at, pos, valid_lines, Env, Run};

/// Events imported into the organization that gets tampered with.
const N_EVENTS: u64 = 50;

/// An environment with `acme` (50 events, checkpoint signed at seq 50) and `bystander`
/// (10 events), both imported through the command line, and no auditlog process running.
fn imported() -> Env {
    let env = Env::new();
    env.create_org("acme");
    env.create_org("bystander");
    env.import("acme", &valid_lines(0, N_EVENTS as usize), &[])
        .expect_code(0);
    env.import("bystander", &valid_lines(1000, 10), &[])
        .expect_code(0);
    env
}

/// Runs `verify` and checks that exactly `acme` is reported as tampered; returns its line.
fn verify_reports_acme(env: &Env) -> String {
    let run = env.run(&["verify"]);
    run.expect_code(1);
    assert!(
        run.stdout
            .contains("ok        bystander: 10 events, chain intact"),
        "the untouched organization must still verify:\n{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("verification FAILED for 1 of 2 organization(s)"),
        "{}",
        run.stdout
    );
    let line = tampered_line(&run);
    // `verify --org acme` reaches the same verdict on its own.
    let alone = env.run(&["verify", "--org", "acme"]);
    alone.expect_code(1);
    assert_eq!(tampered_line(&alone), line);
    line
}

fn tampered_line(run: &Run) -> String {
    let lines: Vec<&str> = run
        .stdout
        .lines()
        .filter(|line| line.starts_with("TAMPERED"))
        .collect();
    assert_eq!(
        lines.len(),
        1,
        "one TAMPERED line expected:\n{}",
        run.stdout
    );
    assert!(lines[0].starts_with("TAMPERED  acme: "), "{}", lines[0]);
    lines[0].to_string()
}

#[test]
fn untouched_store_verifies() {
    let env = imported();
    let run = env.run(&["verify"]);
    run.expect_code(0);
    assert!(
        run.stdout.contains(
            "ok        acme: 50 events, chain intact, signed checkpoint at seq 50 matches"
        ),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("verified 60 events in 2 organization(s): intact"),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains("TAMPERED"));
}

#[test]
fn edited_meta_is_named_by_seq_and_id() {
    let env = imported();
    let db = env.open_db();
    let at = pos(&db, "acme", 17);
    let changed = db
        .execute(
            r#"UPDATE log SET meta = '{"x":1}' WHERE (org_key << 40 | seq) = ?1"#,
            [at],
        )
        .expect("edit meta");
    assert_eq!(changed, 1);
    let id = event_id_at(&db, at);
    drop(db);
    let line = verify_reports_acme(&env);
    assert!(
        line.contains(&format!("event {id} (seq 17) does not match its hash")),
        "{line}"
    );
}

#[test]
fn edited_occurred_at_is_named_by_seq_and_id() {
    let env = imported();
    let db = env.open_db();
    let at = pos(&db, "acme", 17);
    // One millisecond is enough: the hash covers the exact instant.
    let changed = db
        .execute(
            "UPDATE log SET occurred_at = occurred_at - 1 WHERE (org_key << 40 | seq) = ?1",
            [at],
        )
        .expect("edit occurred_at");
    assert_eq!(changed, 1);
    let id = event_id_at(&db, at);
    drop(db);
    let line = verify_reports_acme(&env);
    assert!(
        line.contains(&format!("event {id} (seq 17) does not match its hash")),
        "{line}"
    );
}

#[test]
fn edited_actor_is_named_by_seq_and_id() {
    // Who did it is the field an attacker most wants to change.
    let env = imported();
    let db = env.open_db();
    let first = pos(&db, "acme", 1);
    let changed = db
        .execute(
            "UPDATE log SET actor_email = 'mallory@example.com'
             WHERE (org_key << 40 | seq) = ?1",
            [first],
        )
        .expect("edit the actor");
    assert_eq!(changed, 1);
    let id = event_id_at(&db, first);
    drop(db);
    let line = verify_reports_acme(&env);
    assert!(
        line.contains(&format!("event {id} (seq 1) does not match its hash")),
        "{line}"
    );
}

#[test]
fn deleted_event_is_a_gap_naming_the_next_event() {
    let env = imported();
    let db = env.open_db();
    let deleted = db
        .execute(
            "DELETE FROM log WHERE (org_key << 40 | seq) = ?1",
            [pos(&db, "acme", 25)],
        )
        .expect("delete seq 25");
    assert_eq!(deleted, 1);
    let next = event_id_at(&db, pos(&db, "acme", 26));
    drop(db);
    let line = verify_reports_acme(&env);
    assert!(
        line.contains(&format!(
            "event {next} has seq 26 where seq 25 was expected"
        )),
        "{line}"
    );
}

#[test]
fn swapped_pair_is_detected_at_the_first_of_the_two() {
    let env = imported();
    let db = env.open_db();
    let (p10, p11) = (pos(&db, "acme", 10), pos(&db, "acme", 11));
    let moved = event_id_at(&db, p11);
    // Swap the two rows' places in the chain through a free seq; each keeps its content
    // and hash.
    let org_key = p10 >> 40;
    db.execute_batch(&format!(
        "BEGIN;
         UPDATE log SET seq = -1 WHERE org_key = {org_key} AND seq = 10;
         UPDATE log SET seq = 10 WHERE org_key = {org_key} AND seq = 11;
         UPDATE log SET seq = 11 WHERE org_key = {org_key} AND seq = -1;
         COMMIT;"
    ))
    .expect("swap seq 10 and 11");
    assert_eq!(event_id_at(&db, p10), moved);
    drop(db);
    let line = verify_reports_acme(&env);
    assert!(
        line.contains(&format!("event {moved} (seq 10) does not match its hash")),
        "{line}"
    );
}

#[test]
fn removed_newest_events_with_rewritten_head_are_caught_by_the_checkpoint() {
    let env = imported();
    let db = env.open_db();
    let last_kept = pos(&db, "acme", N_EVENTS - 5);
    let deleted = db
        .execute(
            "DELETE FROM log WHERE (org_key << 40 | seq) > ?1 AND (org_key << 40 | seq) <= ?2",
            [last_kept, pos(&db, "acme", N_EVENTS)],
        )
        .expect("delete the newest 5");
    assert_eq!(deleted, 5);
    // Make the chain consistent again: the head now points at the last remaining event.
    let rewritten = db
        .execute(
            "UPDATE orgs SET head_seq = ?1, head_hash = (SELECT hash FROM log WHERE (org_key << 40 | seq) = ?2)
             WHERE name = 'acme'",
            rusqlite::params![N_EVENTS - 5, last_kept],
        )
        .expect("rewrite the head");
    assert_eq!(rewritten, 1);
    drop(db);
    let line = verify_reports_acme(&env);
    assert!(
        line.contains("signed checkpoint at seq 50 does not match the history"),
        "{line}"
    );
    assert!(
        line.contains("events 46..=50 were removed"),
        "the removed range must be named: {line}"
    );
}

#[test]
fn removed_newest_events_without_head_rewrite_are_a_head_mismatch() {
    let env = imported();
    let db = env.open_db();
    let deleted = db
        .execute(
            "DELETE FROM log WHERE (org_key << 40 | seq) > ?1 AND (org_key << 40 | seq) <= ?2",
            [pos(&db, "acme", N_EVENTS - 5), pos(&db, "acme", N_EVENTS)],
        )
        .expect("delete the newest 5");
    assert_eq!(deleted, 5);
    drop(db);
    let line = verify_reports_acme(&env);
    assert!(
        line.contains("the recorded chain head (seq 50) differs from the last event (seq 45)"),
        "{line}"
    );
}

#[test]
fn forged_checkpoint_hash_is_not_validly_signed() {
    let env = imported();
    let db = env.open_db();
    let org_key = pos(&db, "acme", 0) >> 40;
    // Point the checkpoint at a different hash (the previous event's) without re-signing.
    let changed = db
        .execute(
            "UPDATE checkpoints SET hash = (SELECT hash FROM log WHERE (org_key << 40 | seq) = ?1)
             WHERE org_key = ?2",
            [pos(&db, "acme", N_EVENTS - 1), org_key],
        )
        .expect("forge the checkpoint");
    assert_eq!(changed, 1);
    drop(db);
    let line = verify_reports_acme(&env);
    assert!(
        line.contains(
            "the checkpoint at seq 50 is not validly signed: checkpoint signature does not verify"
        ),
        "{line}"
    );
}

#[test]
fn forged_checkpoint_signature_is_not_validly_signed() {
    let env = imported();
    let db = env.open_db();
    let org_key = pos(&db, "acme", 0) >> 40;
    let changed = db
        .execute(
            "UPDATE checkpoints SET signature = zeroblob(64) WHERE org_key = ?1",
            [org_key],
        )
        .expect("forge the signature");
    assert_eq!(changed, 1);
    drop(db);
    let line = verify_reports_acme(&env);
    assert!(
        line.contains("the checkpoint at seq 50 is not validly signed"),
        "{line}"
    );
}

/// Saves acme's tree checkpoint with `auditlog checkpoint`, as a customer would keep it, and
/// checks that `verify --since` accepts it on the untouched store.
fn saved_checkpoint(env: &Env) -> std::path::PathBuf {
    let run = env.run(&["checkpoint", "--org", "acme"]);
    run.expect_code(0);
    assert!(
        run.stdout.lines().nth(1) == Some("50"),
        "a checkpoint of the 50 events: {}",
        run.stdout
    );
    let path = env.dir.path().join("acme.checkpoint");
    std::fs::write(&path, &run.stdout).expect("save the checkpoint");
    let check = env.run(&["verify", "--since", path.to_str().unwrap()]);
    check.expect_code(0);
    assert!(
        check
            .stdout
            .contains("extends the saved checkpoint of 50 events"),
        "{}",
        check.stdout
    );
    path
}

#[test]
fn a_rollback_with_every_signed_checkpoint_removed_is_caught_by_a_saved_checkpoint() {
    let env = imported();
    let saved = saved_checkpoint(&env);
    // The newest ten events go, the head is moved back, and every checkpoint the store kept
    // is deleted: the chain that is left verifies on its own.
    let db = env.open_db();
    let org_key = pos(&db, "acme", 1) >> 40;
    db.execute_batch(&format!(
        "DELETE FROM log WHERE org_key = {org_key} AND seq > 40;
         UPDATE orgs SET head_seq = 40,
             head_hash = (SELECT hash FROM log WHERE org_key = {org_key} AND seq = 40)
             WHERE org_key = {org_key};
         DELETE FROM checkpoints WHERE org_key = {org_key};
         DELETE FROM tree_checkpoints WHERE org_key = {org_key};"
    ))
    .expect("roll acme back");
    drop(db);
    env.run(&["verify", "--org", "acme"]).expect_code(0);
    let run = env.run(&["verify", "--since", saved.to_str().unwrap()]);
    run.expect_code(1);
    assert!(
        run.stdout.contains(
            "the saved checkpoint covers 50 events, but the log of acme now holds 40: events were removed"
        ),
        "{}",
        run.stdout
    );
}

#[test]
fn a_rewritten_leaf_with_every_signed_checkpoint_removed_is_caught_by_a_saved_checkpoint() {
    let env = imported();
    let saved = saved_checkpoint(&env);
    // The last event's leaf in the tree is replaced (as an edit of that event, re-hashed,
    // would), and the store's own tree checkpoints are deleted so that it cannot notice.
    let db = env.open_db();
    let org_key = pos(&db, "acme", 1) >> 40;
    // 50 leaves: the partial tile is its events' `leaf` column.
    db.execute(
        "UPDATE log SET leaf = zeroblob(32) WHERE org_key = ?1 AND seq = 50",
        [org_key],
    )
    .expect("rewrite a leaf");
    db.execute("DELETE FROM tree_checkpoints WHERE org_key = ?1", [org_key])
        .expect("delete the tree checkpoints");
    drop(db);
    let run = env.run(&["verify", "--since", saved.to_str().unwrap()]);
    run.expect_code(1);
    assert!(
        run.stdout
            .contains("does not extend the saved checkpoint of 50 events"),
        "{}",
        run.stdout
    );
    // A file that is not a checkpoint of this deployment is a usage error, not a verdict.
    let junk = env.dir.path().join("junk");
    std::fs::write(&junk, "not a checkpoint\n").unwrap();
    env.run(&["verify", "--since", junk.to_str().unwrap()])
        .expect_code(2);
}
