//! The command lines README.md shows under "The command line" work as printed: each one is
//! read from the README itself and run, in order, against one fresh data directory.

use std::process::Command;

use auditlog_testkit::process::Run;

use crate::Env;

/// Commands that do not finish by themselves (`serve`) or need a feature the tests are not
/// built with (`bench`); both have tests of their own.
const NOT_RUN_HERE: [&str; 2] = ["serve", "bench"];

/// The README's text.
fn readme() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md");
    std::fs::read_to_string(path).expect("README.md is readable")
}

/// The first fenced block of `language` after `heading`, without its fences.
fn block_after<'a>(text: &'a str, heading: &str, language: &str) -> &'a str {
    let section = &text[text
        .find(heading)
        .unwrap_or_else(|| panic!("README has {heading:?}"))..];
    let fence = format!("```{language}\n");
    let start = section.find(&fence).expect("a fenced block") + fence.len();
    let end = start + section[start..].find("```").expect("the block ends");
    &section[start..end]
}

/// The `auditlog …` commands of a shell block: continuations joined, comments dropped.
fn commands(block: &str) -> Vec<Vec<String>> {
    let joined = block.replace("\\\n", " ");
    joined
        .lines()
        .map(|line| line.split(" #").next().unwrap_or(line).trim())
        .filter(|line| line.starts_with("auditlog "))
        .map(|line| {
            line.split_whitespace()
                .skip(1)
                .map(str::to_string)
                .collect()
        })
        .collect()
}

#[test]
fn every_command_line_in_the_readme_runs_as_printed() {
    let text = readme();
    let commands = commands(block_after(&text, "## The command line", "sh"));
    assert!(
        commands.len() >= 15,
        "the README lists the commands: {commands:?}"
    );
    let env = Env::new();
    // The file `auditlog import events.jsonl` reads: the README's own example event.
    let example = block_after(&text, "An event in the import format", "json");
    let event: serde_json::Value =
        serde_json::from_str(example).expect("the README's example event is JSON");
    std::fs::write(env.dir.path().join("events.jsonl"), format!("{event}\n"))
        .expect("write events.jsonl");

    let mut ran = Vec::new();
    for line in &commands {
        if NOT_RUN_HERE.contains(&line[0].as_str()) {
            continue;
        }
        // `… > FILE` is the shell's: the command's output is written to FILE.
        let (args, redirect) = match line.iter().position(|word| word == ">") {
            Some(at) => (&line[..at], line.get(at + 1)),
            None => (&line[..], None),
        };
        let mut command = Command::new(env!("CARGO_BIN_EXE_auditlog"));
        command
            .current_dir(env.dir.path())
            .arg("--data-dir")
            .arg(env.data_dir())
            .args(args)
            .env_remove("AUDITLOG_DATA_DIR")
            .env("AUDITLOG_LOG", "warn");
        let run = Run::of(&format!("auditlog {}", args.join(" ")), &mut command);
        run.expect_code(0);
        if let Some(file) = redirect {
            std::fs::write(env.dir.path().join(file), &run.stdout).expect("write the output");
        }
        ran.push((args.join(" "), run));
    }
    let output = |prefix: &str| -> &Run {
        &ran.iter()
            .find(|(line, _)| line.starts_with(prefix))
            .unwrap_or_else(|| panic!("the README runs `auditlog {prefix}`"))
            .1
    };
    // What the README says each prints.
    let user_add = output("user add");
    assert!(
        user_add.stdout.contains("password (shown once): "),
        "`user add` prints a password for a new user: {}",
        user_add.stdout
    );
    assert!(output("token create").stdout.contains("al_token_"));
    assert!(output("ingest-key create").stdout.contains("al_ingest_"));
    assert!(output("service-account create")
        .stdout
        .contains("client_secret"));
    let events = output("events --org acme --action");
    assert!(
        events.stdout.contains("channel_created") || events.stdout.contains("Channel Created"),
        "the imported example event is found by the README's filter: {}",
        events.stdout
    );
    assert!(
        output("public-key --vkey").stdout.starts_with("auditlog+"),
        "the verifier key names the log: {}",
        output("public-key --vkey").stdout
    );
    let since = output("verify --since");
    assert!(
        since.stdout.starts_with("ok ") && since.stdout.contains("extends the saved checkpoint"),
        "the kept checkpoint is extended: {}",
        since.stdout
    );
    let verify_file = output("verify acme.csv");
    assert!(
        verify_file.stdout.starts_with("ok "),
        "the export verifies offline: {}",
        verify_file.stdout
    );
}
