//! `--redact` on the command line: a bad rule stops the command before anything is opened,
//! naming the rule; `import` under a rule stores the event without its secret, lists what it
//! replaced, and the chain and an export of it verify.

use std::process::Command;

use auditlog_testkit::process::Run;
use serde_json::json;

use crate::{valid_event, valid_lines, Env};

#[test]
fn a_bad_redaction_rule_stops_the_command_naming_it() {
    let env = Env::new();
    for (bad, says) in [
        ("auth.secret", "not a path"),
        ("token_created:", "the key pattern is empty"),
        ("a:b:c", "at most one `:`"),
    ] {
        let run = env.run(&["serve", "--listen", "127.0.0.1:0", "--redact", bad]);
        run.expect_code(2);
        assert!(
            run.stderr
                .contains(&format!("--redact: redaction rule {bad:?}: ")),
            "{}",
            run.stderr
        );
        assert!(run.stderr.contains(says), "{}", run.stderr);
    }
    // The environment's list, comma-separated, is checked rule by rule.
    let mut command = Command::new(env!("CARGO_BIN_EXE_auditlog"));
    command
        .arg("--data-dir")
        .arg(env.data_dir())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("AUDITLOG_REDACT", "*token*, password,api key");
    let run = Run::of("auditlog serve with AUDITLOG_REDACT", &mut command);
    run.expect_code(2);
    assert!(
        run.stderr
            .contains("redaction rule \"api key\": ' ' cannot be"),
        "{}",
        run.stderr
    );
    // Nothing was created.
    assert!(!env.data_dir().exists());
}

#[test]
fn import_redacts_before_storing_and_the_chain_and_its_export_verify() {
    let secret = "tok-e61d0b9a-imported";
    let env = Env::new();
    env.create_org("acme");
    let mut leaked = valid_event(7);
    leaked["meta"] = json!({"n": 7, "auth": {"api_token": secret}});
    leaked["changes"] = json!([{"field": "password", "before": secret, "after": secret}]);
    let mut lines = valid_lines(0, 3);
    lines.push(leaked.to_string());
    env.import(
        "acme",
        &lines,
        &["--redact", "*token*", "--redact", "password"],
    )
    .expect_code(0);

    let events = env.events_jsonl("acme", &[]);
    assert_eq!(events.len(), 4);
    let redacted: Vec<_> = events
        .iter()
        .filter(|event| event.get("redacted").is_some())
        .collect();
    assert_eq!(redacted.len(), 1, "{events:?}");
    assert_eq!(
        redacted[0]["redacted"],
        json!([
            "changes[0].after",
            "changes[0].before",
            "meta.auth.api_token"
        ])
    );
    assert_eq!(redacted[0]["meta"]["auth"]["api_token"], "[REDACTED]");

    let verify = env.run(&["verify", "--org", "acme"]);
    verify.expect_code(0);
    assert!(
        verify.stdout.contains("acme: 4 events, chain intact"),
        "{}",
        verify.stdout
    );
    let file = env.dir.path().join("acme.jsonl");
    let file_arg = file.to_str().expect("UTF-8 path");
    env.run(&["export", "--org", "acme", "-o", file_arg])
        .expect_code(0);
    env.run(&["verify", file_arg]).expect_code(0);

    for entry in std::fs::read_dir(env.data_dir()).expect("the data directory") {
        let path = entry.expect("an entry").path();
        if path.is_file() {
            let bytes = std::fs::read(&path).expect("read the file");
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "the secret is in {}",
                path.display()
            );
        }
    }
    let exported = std::fs::read_to_string(&file).expect("read the export");
    assert!(!exported.contains(secret) && exported.contains("meta.auth.api_token"));
}
