//! Faults for tests to cause on purpose: a filesystem that fills up ([`SmallDisk`], a size-
//! limited tmpfs) and a PostgreSQL server of the test's own that it may stop and start
//! ([`OwnCluster`], never the shared test server, which other tests are using).
//!
//! Both need what a CI machine has (root, to mount; the PostgreSQL server binaries). Where
//! they are missing, the constructors answer [`Unavailable`], which skips the test locally
//! and fails it under `CI=true`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use uuid::Uuid;

use crate::Unavailable;

/// A tmpfs of a fixed size, mounted on a fresh directory and unmounted when dropped.
#[derive(Debug)]
pub struct SmallDisk {
    path: PathBuf,
}

/// The file [`SmallDisk::fill`] writes.
const FILLER: &str = "filler";

impl SmallDisk {
    /// Mounts a tmpfs of `bytes` bytes (needs root, as in CI).
    pub fn mount(bytes: u64) -> Result<SmallDisk, Unavailable> {
        let path = std::env::temp_dir().join(format!("auditlog-small-disk-{}", Uuid::new_v4()));
        std::fs::create_dir_all(&path)
            .map_err(|e| Unavailable::new(format!("cannot create {}: {e}", path.display())))?;
        let mounted = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={bytes},mode=0700"),
                "tmpfs",
            ])
            .arg(&path)
            .output();
        match mounted {
            Ok(output) if output.status.success() => Ok(SmallDisk { path }),
            failed => {
                let _ = std::fs::remove_dir(&path);
                let why = match failed {
                    Ok(output) => String::from_utf8_lossy(&output.stderr).trim().to_string(),
                    Err(e) => e.to_string(),
                };
                Err(Unavailable::new(format!(
                    "cannot mount a {bytes}-byte tmpfs ({why}); the disk-full tests need root"
                )))
            }
        }
    }

    /// The mount point.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes a file until the filesystem refuses for want of space; answers how many bytes
    /// it took. Anything written on this disk afterwards needs space that [`SmallDisk::free`]
    /// gives back.
    pub fn fill(&self) -> u64 {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.path.join(FILLER))
            .expect("create the filler file");
        let mut written = 0;
        // Big writes first, then small ones for the last partial pages.
        for chunk in [1 << 16, 512, 1] {
            let bytes = vec![0u8; chunk];
            while file.write_all(&bytes).is_ok() {
                written += chunk as u64;
            }
        }
        let _ = file.sync_all();
        written
    }

    /// Removes what [`SmallDisk::fill`] wrote.
    pub fn free(&self) {
        std::fs::remove_file(self.path.join(FILLER)).expect("remove the filler file");
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        // Lazily: a server still holding files open must not keep the mount alive.
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// A PostgreSQL server of one test's own: a fresh cluster (`initdb`) in a temporary
/// directory, on a free port of 127.0.0.1, with superuser `auditlog` trusted without a
/// password. Stopped and removed when dropped.
#[derive(Debug)]
pub struct OwnCluster {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    /// Run the server binaries as `postgres`: they refuse to run as root.
    as_postgres: bool,
}

impl OwnCluster {
    /// Creates and starts the cluster.
    pub fn start() -> Result<OwnCluster, Unavailable> {
        let bin = server_binaries().ok_or_else(|| {
            Unavailable::new(
                "no PostgreSQL server binaries (initdb, pg_ctl) under /usr/lib/postgresql",
            )
        })?;
        let dir = std::env::temp_dir().join(format!("auditlog-pg-{}", Uuid::new_v4()));
        std::fs::create_dir_all(&dir)
            .map_err(|e| Unavailable::new(format!("cannot create {}: {e}", dir.display())))?;
        let as_postgres = is_root();
        if as_postgres {
            let chown = Command::new("chown")
                .arg("postgres:postgres")
                .arg(&dir)
                .status();
            if !chown.is_ok_and(|s| s.success()) {
                return Err(Unavailable::new(
                    "cannot give the cluster directory to user postgres",
                ));
            }
        }
        let mut cluster = OwnCluster {
            bin,
            dir,
            port: 0,
            as_postgres,
        };
        let data = cluster.data_dir();
        cluster
            .run(
                "initdb",
                &[
                    "-D",
                    &data,
                    "-U",
                    "auditlog",
                    "-A",
                    "trust",
                    "-E",
                    "UTF8",
                    "--no-sync",
                ],
            )
            .map_err(Unavailable::new)?;
        // The port is free when chosen but may be taken before the server binds it (other
        // tests bind ports too): try a few.
        let mut failures = Vec::new();
        for _ in 0..3 {
            cluster.port = free_port().map_err(Unavailable::new)?;
            match cluster.start_server() {
                Ok(()) => return Ok(cluster),
                Err(e) => failures.push(e),
            }
        }
        Err(Unavailable::new(failures.join("\n")))
    }

    /// The URL of the cluster's `postgres` database.
    pub fn url(&self) -> String {
        format!("postgres://auditlog@127.0.0.1:{}/postgres", self.port)
    }

    /// Stops the server: `fast` rolls back open transactions and disconnects every client,
    /// `immediate` is a crash (recovery from the WAL at the next start).
    pub fn stop(&self, mode: StopMode) {
        let mode = match mode {
            StopMode::Fast => "fast",
            StopMode::Immediate => "immediate",
        };
        let data = self.data_dir();
        self.run("pg_ctl", &["-D", &data, "-m", mode, "-w", "stop"])
            .expect("stop the cluster");
    }

    /// Starts the server again after [`OwnCluster::stop`].
    pub fn start_again(&self) {
        let mut failures = Vec::new();
        for _ in 0..3 {
            match self.start_server() {
                Ok(()) => return,
                Err(e) => failures.push(e),
            }
            std::thread::sleep(std::time::Duration::from_secs(1));
        }
        panic!("cannot start the cluster again:\n{}", failures.join("\n"));
    }

    fn start_server(&self) -> Result<(), String> {
        let data = self.data_dir();
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1",
            self.port,
            self.dir.display()
        );
        let log = self.dir.join("server.log");
        let started = self.run(
            "pg_ctl",
            &[
                "-D",
                &data,
                "-o",
                &options,
                "-l",
                &log.to_string_lossy(),
                "-w",
                "-t",
                "60",
                "start",
            ],
        );
        started.map_err(|e| format!("{e}\nserver log:\n{}", self.log_tail()))
    }

    /// The server log's last lines, for an error message.
    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(10)..].join("\n")
    }

    fn data_dir(&self) -> String {
        self.dir.join("data").to_string_lossy().into_owned()
    }

    fn run(&self, program: &str, args: &[&str]) -> Result<(), String> {
        let program = self.bin.join(program);
        let mut command = if self.as_postgres {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(&program);
            command
        } else {
            Command::new(&program)
        };
        let output = command
            .args(args)
            .output()
            .map_err(|e| format!("cannot run {}: {e}", program.display()))?;
        if output.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{} {args:?} failed: {}{}",
                program.display(),
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ))
        }
    }
}

impl Drop for OwnCluster {
    fn drop(&mut self) {
        let data = self.data_dir();
        let _ = self.run("pg_ctl", &["-D", &data, "-m", "immediate", "-w", "stop"]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// How [`OwnCluster::stop`] stops the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopMode {
    /// Disconnect clients, roll back their transactions, then stop cleanly.
    Fast,
    /// Kill the server processes: recovery runs at the next start.
    Immediate,
}

/// A port of 127.0.0.1 that was free a moment ago.
fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free port: {e}"))
}

/// The newest `/usr/lib/postgresql/<version>/bin` that holds `initdb`.
fn server_binaries() -> Option<PathBuf> {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let version: u32 = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin)
}

/// Whether this process runs as root (`id -u` prints 0).
fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}
