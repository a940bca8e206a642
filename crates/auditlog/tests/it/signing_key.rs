//! The signing key at startup: a store that holds signed history never gets a silent new
//! key. A missing, unreadable, corrupt or foreign key file is a clear error that changes
//! nothing on disk; only `--new-signing-key` makes a new key for such a store.

use crate::{valid_lines, Env};

/// The key file inside the environment's data directory.
fn key_file(env: &Env) -> std::path::PathBuf {
    env.data_dir().join("signing-key.ed25519")
}

/// An environment whose store holds 20 imported events (with a signed checkpoint).
fn with_history() -> Env {
    let env = Env::new();
    env.create_org("acme");
    env.import("acme", &valid_lines(0, 20), &[]).expect_code(0);
    assert!(key_file(&env).is_file(), "import creates the key");
    env
}

#[test]
fn a_new_store_gets_a_key_once_and_keeps_it() {
    let env = Env::new();
    let first = env.run(&["public-key"]);
    first.expect_code(0);
    let again = env.run(&["public-key"]);
    again.expect_code(0);
    assert_eq!(first.stdout, again.stdout);
    assert_eq!(first.stdout.trim().len(), 64, "{:?}", first.stdout);
}

#[test]
fn a_missing_key_for_a_store_with_history_is_refused_and_not_recreated() {
    let env = with_history();
    std::fs::remove_file(key_file(&env)).unwrap();
    for args in [
        &["public-key"][..],
        &["events", "--org", "acme"],
        &["serve", "--listen", "127.0.0.1:0"],
    ] {
        let run = env.run(args);
        assert_ne!(run.code, 0, "{args:?} must fail: {}", run.stdout);
        assert!(
            run.stderr.contains("no signing key at")
                && run
                    .stderr
                    .contains("already holds 20 events of 1 organization(s)")
                && run.stderr.contains("--new-signing-key"),
            "{args:?}: {}",
            run.stderr
        );
        assert!(!key_file(&env).exists(), "{args:?} made a new key");
    }
}

#[test]
fn a_new_key_for_a_store_with_history_is_made_only_when_asked() {
    let env = with_history();
    let old = std::fs::read_to_string(key_file(&env)).unwrap();
    std::fs::remove_file(key_file(&env)).unwrap();
    env.run(&["--new-signing-key", "public-key"]).expect_code(0);
    let new = std::fs::read_to_string(key_file(&env)).unwrap();
    assert_ne!(old, new);
    // The old checkpoint was signed by the old key, and verify says so.
    let run = env.run(&["verify"]);
    run.expect_code(1);
    assert!(run.stdout.contains("TAMPERED  acme"), "{}", run.stdout);
}

#[test]
fn a_corrupt_key_file_is_refused_and_left_as_it_is() {
    let env = with_history();
    for corrupt in ["garbage\n", "", "00ff"] {
        std::fs::write(key_file(&env), corrupt).unwrap();
        let run = env.run(&["public-key"]);
        assert_ne!(run.code, 0);
        assert!(
            run.stderr.contains("is not an auditlog signing key"),
            "{corrupt:?}: {}",
            run.stderr
        );
        assert_eq!(std::fs::read_to_string(key_file(&env)).unwrap(), corrupt);
    }
}

#[test]
fn an_unreadable_key_file_is_refused() {
    let env = with_history();
    std::fs::remove_file(key_file(&env)).unwrap();
    // A directory in the key's place cannot be read as a file, whoever runs the test.
    std::fs::create_dir(key_file(&env)).unwrap();
    let run = env.run(&["events", "--org", "acme"]);
    assert_ne!(run.code, 0);
    assert!(
        run.stderr.contains("cannot use") && run.stderr.contains("signing-key.ed25519"),
        "{}",
        run.stderr
    );
    assert!(key_file(&env).is_dir());
}

#[test]
fn another_stores_key_is_refused_naming_both_key_ids() {
    let env = with_history();
    let other = Env::new();
    other.run(&["public-key"]).expect_code(0);
    std::fs::copy(key_file(&other), key_file(&env)).unwrap();
    let run = env.run(&["events", "--org", "acme"]);
    assert_ne!(run.code, 0);
    assert!(
        run.stderr.contains("did not sign this store's checkpoints")
            && run.stderr.contains("organization acme"),
        "{}",
        run.stderr
    );
}
