//! Background export jobs (docs/export-jobs.md) that survive restarts: a request becomes a row in
//! the store, a runner claims it, writes the file with [`write_export`], reports progress,
//! and publishes the file under the job's id until it expires.
//!
//! Everything a runner knows is in the store, so any process can take over: a job left
//! `running` by a process that died stops getting heartbeats, and after [`STALE_AFTER`]
//! another runner claims it and starts it over. Files are written as `<id>.<ext>.part`,
//! synced, then renamed, so a finished name always holds a whole file. File names come from
//! job ids, never from user input.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use auditlog_core::{Outcome, Timestamp};
use auditlog_store::{Change, ExportJob, JobStatus, StoreError};
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use uuid::Uuid;

use crate::access::Actor;
use crate::export::{export_request_record, write_export, ExportError, ExportRequest};
use crate::grant::ReadableOrg;
use crate::{IngestError, Service};

/// How long a running job may go without a heartbeat before another runner takes it over.
pub const STALE_AFTER: Duration = Duration::from_secs(30);
/// Shortest interval between two progress writes of a running job.
pub const PROGRESS_EVERY: Duration = Duration::from_millis(250);
/// Longest interval between two heartbeats, even when the progress did not move: well
/// inside [`STALE_AFTER`], so a slow job is never mistaken for a dead one.
const HEARTBEAT_EVERY: Duration = Duration::from_secs(5);
/// How often expired files are deleted (more often when the TTL is shorter than twice this:
/// a file outlives its TTL by at most half of it).
pub const SWEEP_EVERY: Duration = Duration::from_secs(60);
/// How often an idle runner looks for work it was not woken for: jobs submitted through
/// another process, and jobs whose runner died.
const POLL_EVERY: Duration = Duration::from_secs(5);
/// How long a finished export stays downloadable, unless configured otherwise.
pub const DEFAULT_TTL: Duration = Duration::from_secs(24 * 60 * 60);

/// Why a job could not be submitted. Nothing is stored when the request is invalid.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// The request's filter is not valid; the message is for the requester.
    #[error("the export request is not valid: {0}")]
    Invalid(String),
    /// Recording the request in the organization's log failed.
    #[error("cannot record the export request: {0}")]
    Record(#[from] IngestError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A finished export's file, ready to be served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportFile {
    /// Where it is.
    pub path: PathBuf,
    /// Its media type.
    pub content_type: &'static str,
}

/// The export jobs of one process: submits them, runs them one at a time in the background,
/// and deletes their files when they expire.
pub struct ExportJobs {
    service: Service,
    /// Where export files are written.
    dir: PathBuf,
    /// Who this runner is in the jobs' `claimed_by`, unique per process.
    runner_id: String,
    /// How long a finished file is kept.
    ttl: Duration,
    /// Woken on submit, so a job starts at once instead of at the next poll.
    wake: Arc<Notify>,
}

/// How running one job ended, short of completing.
enum Stop {
    /// Shutdown was asked for; the job goes back to pending for the next start.
    Shutdown,
    /// Another runner took the job over (this one was silent too long): leave it alone.
    Lost,
    /// The job failed: a sentence for the user, the details for the log.
    Failed { user: &'static str, detail: String },
}

impl ExportJobs {
    /// Jobs over `service`, writing files into `dir` (created when needed), kept for
    /// [`DEFAULT_TTL`].
    pub fn new(service: Service, dir: impl Into<PathBuf>) -> ExportJobs {
        ExportJobs {
            service,
            dir: dir.into(),
            runner_id: format!("{}-{}", std::process::id(), Uuid::new_v4().simple()),
            ttl: DEFAULT_TTL,
            wake: Arc::new(Notify::new()),
        }
    }

    /// The same, keeping finished files for `ttl`.
    pub fn with_ttl(mut self, ttl: Duration) -> ExportJobs {
        self.ttl = ttl;
        self
    }

    /// The directory export files are written to.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// This runner's name in the jobs it claims.
    pub fn runner_id(&self) -> &str {
        &self.runner_id
    }

    /// Stores a pending export of `org` and records `audit_log_export_requested` in its log in
    /// the same transaction (so no export runs unrecorded, and the export includes its own
    /// request), and wakes the runner.
    pub async fn submit(
        &self,
        org: &ReadableOrg,
        request: ExportRequest,
        actor: &Actor,
    ) -> Result<ExportJob, SubmitError> {
        request.check().map_err(SubmitError::Invalid)?;
        let id = Uuid::now_v7();
        let request_json = serde_json::to_string(&request)
            .map_err(|e| SubmitError::Invalid(format!("the request cannot be stored: {e}")))?;
        let requested_by = actor.label();
        let record = export_request_record(org, actor, &request, Some(id));
        let job = ExportJob {
            id,
            org_id: org.id,
            status: JobStatus::Pending,
            request: request_json,
            requested_by,
            created_at: Timestamp::now(),
            completed_at: None,
            progress: 0,
            total_records: None,
            error_message: None,
            file_name: None,
            expires_at: None,
            claimed_by: None,
            heartbeat_at: None,
        };
        self.service
            .apply_recorded(vec![Change::CreateJob(job.clone())], move |_| vec![record])
            .await?;
        self.wake.notify_one();
        Ok(job)
    }

    /// One job of one organization, as it stands.
    pub async fn status(
        &self,
        org: &ReadableOrg,
        job_id: Uuid,
    ) -> Result<Option<ExportJob>, StoreError> {
        self.service.store().get_job(org.id, job_id).await
    }

    /// The file of a completed, unexpired job; `None` for any other job. The name is the
    /// one the runner stored, checked again to be a bare name made from the job's id.
    pub fn file_path(&self, job: &ExportJob) -> Option<PathBuf> {
        if job.status != JobStatus::Completed
            || job.expires_at.is_none_or(|at| at <= Timestamp::now())
        {
            return None;
        }
        let name = job.file_name.as_deref()?;
        is_own_file_name(job.id, name).then(|| self.dir.join(name))
    }

    /// The file of a completed, unexpired job with its media type, which comes from the
    /// job's request (not from the file's name); `None` for any other job.
    pub fn file(&self, job: &ExportJob) -> Option<ExportFile> {
        let request: ExportRequest = serde_json::from_str(&job.request).ok()?;
        Some(ExportFile {
            path: self.file_path(job)?,
            content_type: request.content_type(),
        })
    }

    /// Starts the runner: it claims and runs jobs one at a time until `shutdown` turns true
    /// (or its sender is dropped), and deletes expired files every [`SWEEP_EVERY`]. It claims
    /// and sweeps at once on start, so jobs of a previous process are picked up.
    pub fn spawn(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) -> JoinHandle<()> {
        tokio::spawn(async move { self.run(&mut shutdown).await })
    }

    async fn run(&self, shutdown: &mut watch::Receiver<bool>) {
        let mut next_sweep = Instant::now();
        loop {
            if *shutdown.borrow() {
                break;
            }
            if Instant::now() >= next_sweep {
                if let Err(error) = self.sweep_expired().await {
                    tracing::warn!(%error, "cannot delete expired export files");
                }
                next_sweep =
                    Instant::now() + SWEEP_EVERY.min(self.ttl / 2).max(Duration::from_secs(1));
            }
            match self.claim().await {
                Ok(Some(job)) => {
                    self.run_job(job, Some(&mut *shutdown)).await;
                    continue;
                }
                Ok(None) => {}
                Err(error) => tracing::warn!(%error, "cannot claim an export job"),
            }
            let idle = POLL_EVERY.min(next_sweep.saturating_duration_since(Instant::now()));
            tokio::select! {
                () = self.wake.notified() => {}
                () = tokio::time::sleep(idle) => {}
                () = shutdown_signalled(shutdown) => break,
            }
        }
    }

    /// Claims the next job (pending, or running without a heartbeat for [`STALE_AFTER`]),
    /// runs it to its end, and returns it as it ended; `None` when there was none.
    pub async fn run_next(&self) -> Result<Option<ExportJob>, StoreError> {
        let Some(job) = self.claim().await? else {
            return Ok(None);
        };
        let id = job.id;
        let org_id = job.org_id;
        self.run_job(job, None).await;
        self.service.store().get_job(org_id, id).await
    }

    async fn claim(&self) -> Result<Option<ExportJob>, StoreError> {
        let now = Timestamp::now();
        let stale_before = now.plus_millis(-(STALE_AFTER.as_millis() as i64));
        self.service
            .store()
            .claim_job(&self.runner_id, now, stale_before)
            .await
    }

    /// Deletes the files of completed jobs whose time is up and marks them expired; returns
    /// how many expired.
    pub async fn sweep_expired(&self) -> Result<u64, StoreError> {
        let store = self.service.store();
        let mut n_expired = 0;
        for mut job in store.expired_jobs(Timestamp::now()).await? {
            if let Some(name) = job
                .file_name
                .as_deref()
                .filter(|n| is_own_file_name(job.id, n))
            {
                match std::fs::remove_file(self.dir.join(name)) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(error) => {
                        // Keep it completed, so the next sweep tries again.
                        tracing::warn!(job = %job.id, %error, "cannot delete an expired export file");
                        continue;
                    }
                }
            }
            job.status = JobStatus::Expired;
            store.update_job(&job).await?;
            n_expired += 1;
        }
        Ok(n_expired)
    }

    /// Runs a claimed job and writes its outcome back.
    async fn run_job(&self, mut job: ExportJob, shutdown: Option<&mut watch::Receiver<bool>>) {
        let store = self.service.store();
        let started = std::time::Instant::now();
        tracing::info!(job = %job.id, org = %job.org_id, "export started");
        let outcome = self.execute(&mut job, shutdown).await;
        let part = self.dir.join(format!("{}.part", job_file_name(&job)));
        let now = Timestamp::now();
        match outcome {
            Ok((records, file_name)) => {
                job.status = JobStatus::Completed;
                job.progress = 100;
                job.total_records = Some(records);
                job.file_name = Some(file_name);
                job.completed_at = Some(now);
                job.expires_at = Some(now.plus_millis(self.ttl.as_millis() as i64));
                job.heartbeat_at = Some(now);
                job.error_message = None;
                tracing::info!(job = %job.id, records, seconds = started.elapsed().as_secs_f64(), "export completed");
            }
            Err(Stop::Lost) => {
                tracing::warn!(job = %job.id, "export job was taken over by another runner; abandoning it");
                return;
            }
            Err(Stop::Shutdown) => {
                let _ = std::fs::remove_file(&part);
                job.status = JobStatus::Pending;
                job.claimed_by = None;
                job.heartbeat_at = None;
                job.progress = 0;
                tracing::info!(job = %job.id, "export interrupted by shutdown; it will start over");
            }
            Err(Stop::Failed { user, detail }) => {
                let _ = std::fs::remove_file(&part);
                job.status = JobStatus::Failed;
                job.error_message = Some(user.to_string());
                job.completed_at = Some(now);
                tracing::error!(job = %job.id, error = %detail, "export failed");
                self.record_failure(&job, user).await;
            }
        }
        if let Err(error) = store.update_job(&job).await {
            // The job stays `running`; its heartbeat stops, so a runner retries it later.
            tracing::error!(job = %job.id, %error, "cannot record the end of an export job");
        }
    }

    /// Records in the organization's log that the export `job` failed (its request,
    /// recorded when it was made, with outcome `failure` and the sentence the user sees), by
    /// auditlog itself. A failure to record is logged: the job has failed either way.
    async fn record_failure(&self, job: &ExportJob, reason: &str) {
        let org = match self.service.store().find_org(&job.org_id.to_string()).await {
            Ok(Some(org)) => org,
            Ok(None) => return,
            Err(error) => {
                tracing::warn!(job = %job.id, %error, "a failed export could not be recorded");
                return;
            }
        };
        let Ok(request) = serde_json::from_str::<ExportRequest>(&job.request) else {
            return;
        };
        let record = export_request_record(&org, &Actor::auditlog(), &request, Some(job.id))
            .not_done(Outcome::Failure, reason);
        if let Err(error) = self
            .service
            .apply_recorded(Vec::new(), move |_| vec![record])
            .await
        {
            tracing::warn!(job = %job.id, %error, "a failed export could not be recorded");
        }
    }

    /// Writes the job's file; returns the records written and the file's final name.
    async fn execute(
        &self,
        job: &mut ExportJob,
        shutdown: Option<&mut watch::Receiver<bool>>,
    ) -> Result<(u64, String), Stop> {
        let store = self.service.store();
        let request: ExportRequest =
            serde_json::from_str(&job.request).map_err(|e| Stop::Failed {
                user: "The export request could not be read.",
                detail: format!("job request JSON: {e}"),
            })?;
        // The request was authorized when it was submitted.
        let org = match store.find_org(&job.org_id.to_string()).await {
            Ok(Some(org)) => ReadableOrg::authorized_before(org),
            Ok(None) => {
                return Err(Stop::Failed {
                    user: "The organization no longer exists.",
                    detail: format!("organization {} not found", job.org_id),
                })
            }
            Err(e) => return Err(store_failed(e)),
        };
        let file_name = format!("{}.{}", job.id, request.extension());
        let part = self.dir.join(format!("{file_name}.part"));
        let io_failed = |e: std::io::Error| Stop::Failed {
            user: if e.kind() == std::io::ErrorKind::StorageFull {
                "The disk holding export files is full, so the export was discarded; \
                 request it again once space is freed."
            } else {
                "The export file could not be written."
            },
            detail: format!("{}: {e}", part.display()),
        };
        std::fs::create_dir_all(&self.dir).map_err(io_failed)?;
        // A runner that died may have left a part file, and one that was merely slow may
        // still hold it open: unlink it rather than truncate, so that runner writes into a
        // file nobody will ever see instead of into ours.
        match std::fs::remove_file(&part) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_failed(e)),
        }
        // Written with blocking std I/O from this task: each page is a few hundred KB into
        // the OS page cache, small next to the store reads between them.
        // Exports hold audit data: readable by the service's own user only.
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&part).map_err(io_failed)?;

        let scanned = Arc::new(AtomicU64::new(0));
        let head = Arc::new(AtomicU64::new(0));
        let result = {
            let (scanned_w, head_w) = (scanned.clone(), head.clone());
            let export = write_export(&self.service, &org, &request, &mut file, move |_, s, h| {
                scanned_w.store(s, Ordering::Relaxed);
                head_w.store(h, Ordering::Relaxed);
            });
            tokio::pin!(export);
            let mut ticker = tokio::time::interval(PROGRESS_EVERY);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut last_write = Instant::now();
            let mut shutdown = shutdown;
            loop {
                tokio::select! {
                    result = &mut export => break result,
                    _ = ticker.tick() => {
                        let progress = percent(scanned.load(Ordering::Relaxed), head.load(Ordering::Relaxed));
                        if progress != job.progress || last_write.elapsed() >= HEARTBEAT_EVERY {
                            job.progress = progress;
                            self.heartbeat(job).await?;
                            last_write = Instant::now();
                        }
                    }
                    () = maybe_shutdown(shutdown.as_deref_mut()) => return Err(Stop::Shutdown),
                }
            }
        };
        let summary = result.map_err(|e| match e {
            ExportError::Request(reason) => Stop::Failed {
                user: "The export's filter is not valid.",
                detail: reason,
            },
            ExportError::Store(e) | ExportError::Log(crate::log::LogError::Store(e)) => {
                store_failed(e)
            }
            ExportError::Log(e) => Stop::Failed {
                user: "The audit log's integrity could not be proven, so nothing was exported; \
                       an operator must look at the server's log.",
                detail: e.to_string(),
            },
            ExportError::Io(e) => io_failed(e),
        })?;
        // Syncing hundreds of MB can take seconds: not on an async worker.
        tokio::task::spawn_blocking(move || file.sync_all())
            .await
            .map_err(|e| io_failed(std::io::Error::other(e)))?
            .map_err(io_failed)?;
        self.ensure_still_ours(job).await?;
        let final_path = self.dir.join(&file_name);
        std::fs::rename(&part, &final_path).map_err(io_failed)?;
        sync_dir(&self.dir);
        Ok((summary.records, file_name))
    }

    /// Writes progress and heartbeat, unless another runner has taken the job.
    async fn heartbeat(&self, job: &mut ExportJob) -> Result<(), Stop> {
        self.ensure_still_ours(job).await?;
        job.heartbeat_at = Some(Timestamp::now());
        if let Err(error) = self.service.store().update_job(job).await {
            // A missed heartbeat is not fatal; the next one may get through.
            tracing::warn!(job = %job.id, %error, "cannot record export progress");
        }
        Ok(())
    }

    /// Fails with [`Stop::Lost`] when the stored job is no longer this runner's. The store
    /// has no compare-and-set for jobs, so a takeover between this read and the next write
    /// is possible; it needs a runner silent for [`STALE_AFTER`] to wake at that instant.
    async fn ensure_still_ours(&self, job: &ExportJob) -> Result<(), Stop> {
        match self.service.store().get_job(job.org_id, job.id).await {
            Ok(Some(stored))
                if stored.status == JobStatus::Running
                    && stored.claimed_by.as_deref() == Some(&self.runner_id) =>
            {
                Ok(())
            }
            Ok(_) => Err(Stop::Lost),
            // Cannot tell; carry on, the final write will tell again.
            Err(error) => {
                tracing::warn!(job = %job.id, %error, "cannot check the export job's owner");
                Ok(())
            }
        }
    }
}

/// The final file name of a job, from its stored request (`<id>.<ext>`), or just the id
/// when the request cannot be read.
fn job_file_name(job: &ExportJob) -> String {
    match serde_json::from_str::<ExportRequest>(&job.request) {
        Ok(request) => format!("{}.{}", job.id, request.extension()),
        Err(_) => job.id.to_string(),
    }
}

/// True for a bare file name that a runner makes for this job: `<id>.<ext>`.
fn is_own_file_name(id: Uuid, name: &str) -> bool {
    let Some(ext) = name.strip_prefix(&format!("{id}.")) else {
        return false;
    };
    matches!(ext, "jsonl" | "csv" | "jsonl.gz" | "csv.gz")
}

fn percent(scanned: u64, head: u64) -> u8 {
    if head == 0 {
        return 0;
    }
    // 100 only once the job is complete, i.e. the file renamed and recorded.
    ((scanned.min(head) * 99) / head) as u8
}

fn store_failed(error: StoreError) -> Stop {
    Stop::Failed {
        user: "The audit log could not be read; try the export again later.",
        detail: error.to_string(),
    }
}

/// Makes a rename in `dir` durable (on Unix a directory can be synced; elsewhere the rename
/// is as durable as the platform makes it).
fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Err(error) = std::fs::File::open(dir).and_then(|d| d.sync_all()) {
        tracing::warn!(dir = %dir.display(), %error, "cannot sync the export directory");
    }
    #[cfg(not(unix))]
    let _ = dir;
}

/// Resolves when shutdown is asked for: the value turns true, or the sender is gone.
async fn shutdown_signalled(shutdown: &mut watch::Receiver<bool>) {
    loop {
        if *shutdown.borrow_and_update() {
            return;
        }
        if shutdown.changed().await.is_err() {
            return;
        }
    }
}

/// [`shutdown_signalled`], or never when there is no shutdown signal.
async fn maybe_shutdown(shutdown: Option<&mut watch::Receiver<bool>>) {
    match shutdown {
        Some(shutdown) => shutdown_signalled(shutdown).await,
        None => std::future::pending().await,
    }
}
