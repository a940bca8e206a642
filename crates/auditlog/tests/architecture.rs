//! The crate edges and boundaries ARCHITECTURE.md names, checked against the workspace as
//! `cargo metadata` describes it and against the sources, so that the document stays true:
//!
//! - dependencies point one way (each workspace crate has a layer; a normal dependency on
//!   another workspace crate goes to a lower layer);
//! - only the binary depends on both storage backends;
//! - `auditlog-core` depends on no I/O crate, and `auditlog-store` on no database driver;
//! - only the server (axum, tower, maud) knows HTTP and HTML;
//! - the server and the command line reach the store only through the service, and the
//!   server never holds the operator's capability nor provisions anything.
//!
//! Dev-dependencies are not edges of the shipped graph, so only normal and build
//! dependencies count.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// The layer of each workspace crate, lowest first. A crate may depend only on crates of a
/// lower layer; a new crate gets its line here and in ARCHITECTURE.md.
const LAYERS: [(&str, u8); 11] = [
    ("auditlog-core", 0),
    // Dev-only: what tests share, knowing no auditlog crate.
    ("auditlog-testkit", 0),
    ("auditlog-store", 1),
    // The history generator, over the event model only.
    ("auditlog-demo", 1),
    // Dev-only: the Store contract, over the trait.
    ("auditlog-conformance", 2),
    ("auditlog-sqlite", 2),
    ("auditlog-postgres", 2),
    ("auditlog-service", 2),
    ("auditlog-server", 3),
    ("auditlog-bench", 4),
    ("auditlog", 5),
];

/// Crates that do I/O (files, sockets, databases, clocks and randomness beyond
/// `Timestamp::now()`): none of them may be a dependency of `auditlog-core`.
const IO_CRATES: [&str; 14] = [
    "tokio",
    "tokio-util",
    "rusqlite",
    "tokio-postgres",
    "postgres",
    "deadpool-postgres",
    "axum",
    "hyper",
    "tower",
    "tower-http",
    "reqwest",
    "rand",
    "getrandom",
    "tempfile",
];

/// Database drivers, which belong to the backends only.
const DRIVERS: [&str; 4] = [
    "rusqlite",
    "tokio-postgres",
    "postgres",
    "deadpool-postgres",
];

/// Crates of HTTP and HTML serving, which belong to the server only.
const HTTP_CRATES: [&str; 5] = ["axum", "hyper", "tower", "tower-http", "maud"];

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("the workspace root is two levels above this crate")
        .to_path_buf()
}

/// Each workspace crate's normal and build dependencies, by name.
fn shipped_dependencies() -> BTreeMap<String, BTreeSet<String>> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let output = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .arg("--manifest-path")
        .arg(workspace_root().join("Cargo.toml"))
        .output()
        .expect("run cargo metadata");
    assert!(
        output.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: Value = serde_json::from_slice(&output.stdout).expect("cargo metadata JSON");
    let mut crates = BTreeMap::new();
    for package in metadata["packages"].as_array().expect("packages") {
        let name = package["name"].as_str().expect("package name").to_string();
        let dependencies = package["dependencies"]
            .as_array()
            .expect("dependencies")
            .iter()
            .filter(|dependency| dependency["kind"].as_str() != Some("dev"))
            .map(|dependency| dependency["name"].as_str().expect("name").to_string())
            .collect();
        crates.insert(name, dependencies);
    }
    crates
}

fn layer(name: &str) -> Option<u8> {
    LAYERS
        .iter()
        .find(|(crate_name, _)| *crate_name == name)
        .map(|(_, layer)| *layer)
}

#[test]
fn dependencies_point_one_way() {
    let crates = shipped_dependencies();
    let mut problems = Vec::new();
    for (name, dependencies) in &crates {
        let Some(own) = layer(name) else {
            problems.push(format!(
                "{name} has no layer: add it to LAYERS here and to the crate map of ARCHITECTURE.md"
            ));
            continue;
        };
        for dependency in dependencies.iter().filter(|d| crates.contains_key(*d)) {
            match layer(dependency) {
                Some(theirs) if theirs < own => {}
                _ => problems.push(format!(
                    "{name} (layer {own}) depends on {dependency}, which is not below it"
                )),
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn only_the_binary_knows_both_backends() {
    let both: Vec<String> = shipped_dependencies()
        .into_iter()
        .filter(|(_, dependencies)| {
            dependencies.contains("auditlog-sqlite") && dependencies.contains("auditlog-postgres")
        })
        .map(|(name, _)| name)
        .collect();
    assert_eq!(both, ["auditlog"]);
}

#[test]
fn core_does_no_io_and_the_store_trait_has_no_driver() {
    let crates = shipped_dependencies();
    let core = &crates["auditlog-core"];
    let io: Vec<&&str> = IO_CRATES.iter().filter(|c| core.contains(**c)).collect();
    assert!(io.is_empty(), "auditlog-core depends on I/O crates: {io:?}");
    let store = &crates["auditlog-store"];
    let drivers: Vec<&&str> = DRIVERS.iter().filter(|c| store.contains(**c)).collect();
    assert!(
        drivers.is_empty(),
        "auditlog-store depends on database drivers: {drivers:?}"
    );
}

#[test]
fn only_the_server_knows_http() {
    let mut problems = Vec::new();
    for (name, dependencies) in shipped_dependencies() {
        for http in HTTP_CRATES.iter().filter(|c| dependencies.contains(**c)) {
            if name != "auditlog-server" {
                problems.push(format!("{name} depends on {http}"));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Every `.rs` file under `dir`, recursively.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display())) {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            files.push(path);
        }
    }
    files
}

/// The lines of the sources under `dir` that contain `needle`, as `file:line: text`.
fn lines_containing(dir: &Path, needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for path in rust_files(dir) {
        let text = std::fs::read_to_string(&path).expect("read a source file");
        for (number, line) in text.lines().enumerate() {
            if line.contains(needle) {
                found.push(format!(
                    "{}:{}: {}",
                    path.display(),
                    number + 1,
                    line.trim()
                ));
            }
        }
    }
    found
}

#[test]
fn the_server_and_the_command_line_reach_the_store_only_through_the_service() {
    let root = workspace_root();
    let mut found = lines_containing(&root.join("crates/auditlog-server/src"), ".store()");
    found.extend(lines_containing(
        &root.join("crates/auditlog/src"),
        ".store()",
    ));
    assert!(found.is_empty(), "{}", found.join("\n"));
}

/// The server neither holds the operator's capability nor calls the provisioning methods
/// that take a bare organization or user (users, tokens for a given user, ingest keys,
/// in-process ingest, setting a password, recording an action): those are for the binary's
/// commands, the benchmarks, tests and the service itself.
#[test]
fn the_server_holds_no_operator_power() {
    let src = workspace_root().join("crates/auditlog-server/src");
    let mut found = Vec::new();
    for needle in [
        "Operator",
        "add_user(",
        "remove_user(",
        "create_api_token(",
        "create_ingest_key(",
        ".ingest(",
        "ingest_idempotent(",
        "set_password(",
        ".record(",
    ] {
        found.extend(lines_containing(&src, needle));
    }
    assert!(found.is_empty(), "{}", found.join("\n"));
}

/// `unsafe` appears in one place: the allocator setting, which glibc offers only through a C
/// call (the workspace lint denies it everywhere else; this keeps it from spreading quietly).
#[test]
fn unsafe_code_stays_in_the_allocator_setting() {
    let root = workspace_root();
    let allowed = root.join("crates/auditlog-service/src/allocator.rs");
    let allowed = allowed.display().to_string();
    let mut found = Vec::new();
    // Spelled in two pieces so that this file does not match itself.
    for needle in [
        concat!("unsafe", " {"),
        concat!("unsafe", " fn"),
        concat!("unsafe", " impl"),
    ] {
        found.extend(
            lines_containing(&root.join("crates"), needle)
                .into_iter()
                .filter(|line| !line.starts_with(&allowed)),
        );
    }
    assert!(found.is_empty(), "{}", found.join("\n"));
    assert!(
        lines_containing(
            &root.join("crates/auditlog-service/src"),
            concat!("unsafe", " {")
        )
        .len()
            == 1,
        "the allocator setting is the one unsafe block"
    );
}
