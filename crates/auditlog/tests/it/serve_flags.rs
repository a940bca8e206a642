//! `auditlog serve` refuses a bad `--trusted-proxy` (or `AUDITLOG_TRUSTED_PROXIES`) before it
//! opens anything, naming the value; every command refuses retention settings that contradict
//! each other. (Trusted proxies at work are tested in the server's
//! `client_address` tests.)

use std::process::Command;

use auditlog_testkit::process::Run;

use crate::Env;

#[test]
fn a_bad_trusted_proxy_is_refused_naming_it() {
    let env = Env::new();
    for bad in ["10.0.0.0/33", "proxy.internal", "2001:db8::/129"] {
        let run = env.run(&["serve", "--listen", "127.0.0.1:0", "--trusted-proxy", bad]);
        run.expect_code(2);
        assert!(
            run.stderr
                .contains(&format!("{bad:?} is not a trusted proxy address")),
            "{}",
            run.stderr
        );
    }
    // The environment's list, comma-separated, is checked value by value.
    let mut command = Command::new(env!("CARGO_BIN_EXE_auditlog"));
    command
        .arg("--data-dir")
        .arg(env.data_dir())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("AUDITLOG_TRUSTED_PROXIES", "10.0.0.0/8, 127.0.0.1,nonsense");
    let run = Run::of("auditlog serve with AUDITLOG_TRUSTED_PROXIES", &mut command);
    run.expect_code(2);
    assert!(
        run.stderr
            .contains("\"nonsense\" is not a trusted proxy address"),
        "{}",
        run.stderr
    );
    // Nothing was created.
    assert!(!env.data_dir().exists());
}

#[test]
fn retention_settings_that_contradict_each_other_are_refused() {
    let env = Env::new();
    for (args, says) in [
        (
            &[
                "--retention-days",
                "500",
                "--max-retention-days",
                "100",
                "purge",
            ][..],
            "the default retention (500 days) is longer than the maximum (100)",
        ),
        (&["--retention-days", "0", "purge"][..], "--retention-days"),
        (
            &["--max-retention-days", "40000", "purge"][..],
            "--max-retention-days",
        ),
    ] {
        let run = env.run(args);
        run.expect_code(2);
        assert!(run.stderr.contains(says), "{args:?}: {}", run.stderr);
    }
    assert!(!env.data_dir().exists(), "nothing was created");
    // Within bounds, a purge of an empty store has nothing to do.
    let run = env.run(&["--retention-days", "30", "purge"]);
    run.expect_code(0);
    assert!(run.stdout.contains("nothing to purge"), "{}", run.stdout);
}
