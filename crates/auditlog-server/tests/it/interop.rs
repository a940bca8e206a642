//! The transparency log checked by an independent implementation: Go's reference
//! `golang.org/x/mod/sumdb/note` and `sumdb/tlog`, run by `tests/interop/verify.go` over the
//! verifier key, two checkpoints, every tile of both trees, inclusion proofs (JSON and
//! tlog-proof text) and the consistency proof between them, exactly as the endpoints served
//! them, and then every event's inclusion proof in a filtered JSON Lines export as downloaded.
//! The program also checks that tampered copies fail, and reports how many things it
//! checked, which this test compares with what it wrote.
//!
//! It needs `go` and the x/mod sources (Debian's `golang-go` and `golang-golang-x-mod-dev`),
//! built offline in GOPATH mode; without them it says it was skipped, and fails under `CI=true`
//! (`auditlog_testkit::Unavailable`). SQLite only: what is checked is the HTTP surface, which
//! the `log` tests already run on both backends.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use auditlog_core::tiles::tiles_for_size;
use auditlog_testkit::process::Run;
use auditlog_testkit::Unavailable;
use serde_json::json;

use crate::{query, Backend, Server};

/// Where Debian's `golang-*-dev` packages put their sources: a GOPATH.
const GOPATH: &str = "/usr/share/gocode";

/// `go` and the x/mod sources, or why not.
fn go_toolchain() -> Result<(), Unavailable> {
    let version = Command::new("go").arg("version").output();
    if !version.is_ok_and(|output| output.status.success()) {
        return Err(Unavailable::new(
            "`go` is not installed (Debian package golang-go)",
        ));
    }
    let tlog = Path::new(GOPATH).join("src/golang.org/x/mod/sumdb/tlog");
    if !tlog.is_dir() {
        return Err(Unavailable::new(format!(
            "{} is absent (Debian package golang-golang-x-mod-dev)",
            tlog.display()
        )));
    }
    Ok(())
}

/// What was fetched of one tree.
struct Fetched {
    size: u64,
    n_tiles: usize,
    n_proofs: usize,
}

/// Writes the organization's current checkpoint, every tile of its tree, and the inclusion
/// proofs of `ids` (JSON and tlog-proof text) into `dir`, each as served.
async fn fetch_tree(
    server: &Server,
    token: &str,
    prefix: &str,
    dir: &Path,
    ids: &[&String],
) -> Fetched {
    let get = |path: String| server.get(&path).bearer(token);
    std::fs::create_dir_all(dir.join("proof")).unwrap();
    let note = get(format!("{prefix}/checkpoint")).send().await.expect(200);
    std::fs::write(dir.join("checkpoint"), &note.body).unwrap();
    let size: u64 = note
        .text()
        .lines()
        .nth(1)
        .and_then(|line| line.parse().ok())
        .expect("a checkpoint's second line is its size");

    let tiles = tiles_for_size(size);
    for tile in &tiles {
        let path = tile.path();
        let reply = get(format!("{prefix}/{path}")).send().await.expect(200);
        let file = dir.join(&path);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(file, &reply.body).unwrap();
    }

    for id in ids {
        let proof = get(format!("{prefix}/proof/{id}")).send().await.expect(200);
        assert_eq!(
            proof.json()["tree_size"].as_u64(),
            Some(size),
            "a proof against the checkpoint just fetched"
        );
        std::fs::write(dir.join(format!("proof/{id}.json")), &proof.body).unwrap();
        let text = get(format!("{prefix}/proof/{id}?format=tlog-proof"))
            .send()
            .await
            .expect(200);
        std::fs::write(dir.join(format!("proof/{id}.tlog-proof")), &text.body).unwrap();
    }
    Fetched {
        size,
        n_tiles: tiles.len(),
        n_proofs: ids.len(),
    }
}

/// Builds `tests/interop/verify.go` offline in GOPATH mode, with a build cache of its own
/// under `scratch`; answers the binary.
async fn build_verifier(scratch: &Path) -> std::path::PathBuf {
    let program = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/verify.go");
    let binary = scratch.join("verify");
    let mut build = Command::new("go");
    build
        .arg("build")
        .arg("-o")
        .arg(&binary)
        .arg(&program)
        .env("GO111MODULE", "off")
        .env("GOPATH", GOPATH)
        .env("GOCACHE", scratch.join("gocache"))
        .env("GOFLAGS", "")
        .env("GOPROXY", "off")
        .env("GOTOOLCHAIN", "local");
    let started = Instant::now();
    tokio::task::spawn_blocking(move || Run::of("go build verify.go", &mut build))
        .await
        .expect("the go build did not panic")
        .expect_code(0);
    println!(
        "go build verify.go: {:.1} s",
        started.elapsed().as_secs_f64()
    );
    binary
}

/// Runs the verifier with `args`; it must succeed.
async fn run_verifier(binary: std::path::PathBuf, args: Vec<std::ffi::OsString>) -> Run {
    let mut command = Command::new(&binary);
    command.args(args);
    let run = tokio::task::spawn_blocking(move || Run::of("verify", &mut command))
        .await
        .expect("the verifier did not panic");
    println!("verify:\n{}{}", run.stdout, run.stderr);
    run.expect_code(0);
    run
}

/// Writes the consistency proof of `org` from `old` to its current signed tree into `out`.
async fn fetch_consistency(server: &Server, token: &str, prefix: &str, old: u64, out: &Path) {
    let consistency = server
        .get(&format!(
            "{prefix}/consistency?{}",
            query(&[("old", &old.to_string())])
        ))
        .bearer(token)
        .send()
        .await
        .expect(200);
    std::fs::write(out.join("consistency.json"), &consistency.body).unwrap();
}

/// The summary line the verifier prints for two trees, as this test counts what it wrote:
/// one tampered copy per tile, two per checkpoint, two per inclusion proof, two for the
/// consistency proof.
fn summary(a: &Fetched, b: &Fetched) -> String {
    let n_tiles = a.n_tiles + b.n_tiles;
    let n_proofs = a.n_proofs + b.n_proofs;
    let n_tampered = n_tiles + 2 * 2 + 2 * n_proofs + 2;
    format!(
        "checked: checkpoints=2 tiles={n_tiles} leaves={} inclusion={n_proofs} \
         tlog_proofs={n_proofs} consistency=1 tampered={n_tampered}\n",
        a.size + b.size
    )
}

/// What both tests start from: a server with an organization, its ingest key and an
/// administrator, the organization's log prefix, and a scratch directory whose `log` holds
/// the verifier key as served.
struct Scene {
    server: Server,
    org: auditlog_store::Org,
    key: String,
    admin: String,
    prefix: String,
    scratch: tempfile::TempDir,
    out: std::path::PathBuf,
}

impl Scene {
    async fn new() -> Scene {
        let server = Server::start(Backend::Sqlite).await;
        let org = server.org("acme", true).await;
        let key = server.ingest_key(Some(&org)).await;
        let admin = server.admin(&org, "admin@acme.test").await;
        let prefix = format!("/api/log/{}", org.id);
        let scratch = tempfile::tempdir().expect("temporary directory");
        let out = scratch.path().join("log");
        std::fs::create_dir_all(&out).unwrap();
        let vkey = server.get("/api/log/vkey").send().await.expect(200);
        std::fs::write(out.join("vkey"), &vkey.body).unwrap();
        Scene {
            server,
            org,
            key,
            admin,
            prefix,
            scratch,
            out,
        }
    }
}

/// After a purge of most of the log, Go's `sumdb/tlog` verifies the tree as served (its
/// tiles untouched), the checkpoint before the purge is consistent with the one after, and
/// the remaining events' inclusion proofs verify.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn go_sumdb_verifies_the_log_after_a_purge() {
    if auditlog_testkit::available(go_toolchain()).is_none() {
        return;
    }
    let Scene {
        server,
        org,
        key,
        admin,
        prefix,
        scratch,
        out,
    } = Scene::new().await;

    let mut old = Vec::new();
    for n in [256, 256, 200] {
        old.extend(crate::log::ingest(&server, &key, n).await);
    }
    let sample: Vec<&String> = old.iter().step_by(71).collect();
    let a = fetch_tree(&server, &admin, &prefix, &out.join("a"), &sample).await;
    server
        .call("PUT", "/api/audit-logs/retention")
        .bearer(&admin)
        .org("acme")
        .json(&json!({"retention_period_in_days": 1}))
        .send()
        .await
        .expect(200);
    server
        .service
        .store()
        .wait_indexed()
        .await
        .expect("indexed");
    let recorded_before = server.head(&org).await;
    let cutoff = auditlog_core::Timestamp::now();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let new = crate::log::ingest(&server, &key, 140).await;
    let report = server
        .service
        .purge_expired(
            &auditlog_service::grant::Operator::at_the_command_line(),
            cutoff.plus_millis(86_400_000),
        )
        .await
        .expect("purge");
    let purged: u64 = report.purged.iter().map(|(_, n)| n).sum();
    assert_eq!(
        purged, recorded_before,
        "every event recorded before the cutoff went: {report:?}"
    );
    server
        .get(&format!("/api/audit-logs/{}", old[0]))
        .bearer(&admin)
        .org("acme")
        .send()
        .await
        .expect(404);

    let sample: Vec<&String> = new.iter().step_by(13).chain(new.last()).collect();
    let b = fetch_tree(&server, &admin, &prefix, &out.join("b"), &sample).await;
    assert!(b.size > a.size + 140, "the tree grew past the purge");
    fetch_consistency(&server, &admin, &prefix, a.size, &out).await;
    let binary = build_verifier(scratch.path()).await;
    let run = run_verifier(binary, vec![out.clone().into()]).await;
    let expected = summary(&a, &b);
    assert!(
        run.stdout.contains(&expected),
        "Go did not report {expected:?}:\n{}",
        run.stdout
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn go_sumdb_verifies_what_the_log_serves() {
    if auditlog_testkit::available(go_toolchain()).is_none() {
        return;
    }
    let Scene {
        server,
        org,
        key,
        admin,
        prefix,
        scratch,
        out,
    } = Scene::new().await;

    // Tree A: ~700 leaves in batches of several sizes: full and partial level-0 tiles and a
    // level-1 tile (which needs 256 leaves or more).
    let mut ids = Vec::new();
    for n in [256, 200, 180, 64] {
        ids.extend(crate::log::ingest(&server, &key, n).await);
    }
    let mut sample: Vec<&String> = ids.iter().step_by(61).chain(ids.last()).collect();
    sample.dedup();
    let a = fetch_tree(&server, &admin, &prefix, &out.join("a"), &sample).await;
    assert!(a.size >= 700 && a.size % 256 != 0, "tree A has {}", a.size);

    // Tree B: the partial tile of A completed and a new one begun.
    for n in [90, 50] {
        ids.extend(crate::log::ingest(&server, &key, n).await);
    }
    let mut sample: Vec<&String> = ids.iter().skip(7).step_by(97).chain(ids.last()).collect();
    sample.dedup();
    let b = fetch_tree(&server, &admin, &prefix, &out.join("b"), &sample).await;
    assert_eq!(b.size, a.size + 140);
    assert!(b.size / 256 > a.size / 256, "B completes A's partial tile");
    fetch_consistency(&server, &admin, &prefix, a.size, &out).await;

    // A filtered JSON Lines export (the channels, not the administrators' own records), as
    // downloaded.
    let request = json!({"q": ["action_key:channel_created"]});
    let job = crate::export_completed(&server, &admin, "acme", request).await;
    let export = server
        .get(&format!("/api/audit-logs/export/{job}/download"))
        .bearer(&admin)
        .org("acme")
        .send()
        .await
        .expect(200);
    let export_file = scratch.path().join("export.jsonl");
    std::fs::write(&export_file, &export.body).unwrap();

    let binary = build_verifier(scratch.path()).await;
    let go_verify = |args: Vec<std::ffi::OsString>| run_verifier(binary.clone(), args);
    let run = go_verify(vec![out.clone().into()]).await;

    // Everything written was checked, and every tampered copy refused.
    let summary = summary(&a, &b);
    assert!(
        run.stdout.contains(&summary),
        "Go did not report {summary:?}:\n{}",
        run.stdout
    );
    assert!(run
        .stdout
        .contains(&format!("a: origin auditlog/{}, size {}", org.id, a.size)));

    // Every event of the export is proven by Go's tlog.CheckRecord against the file's tree
    // checkpoint; two tampered checkpoints and three tampered proofs (a path hash, the leaf
    // hash, the leaf index) of the first, middle and last event are refused.
    let run = go_verify(vec![
        "export".into(),
        export_file.into(),
        out.join("vkey").into(),
    ])
    .await;
    let summary = format!(
        "checked: export events={} tampered={}\n",
        ids.len(),
        2 + 3 * 3
    );
    assert!(
        run.stdout.contains(&summary),
        "Go did not report {summary:?}:\n{}",
        run.stdout
    );
}
