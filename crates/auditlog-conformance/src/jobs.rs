//! Cases: export jobs round-trip, update, are claimed once and expire.

use std::collections::HashMap;
use std::sync::Arc;

use auditlog_core::timestamp::MS_PER_DAY;
use auditlog_core::Timestamp;
use auditlog_store::{ExportJob, JobStatus, Org, Store};
use uuid::Uuid;

use crate::events::*;
use crate::support::*;

/// A pending export job of `org`, created at `created_ms`.
pub(crate) fn pending_job(n: u32, org: &Org, created_ms: i64) -> ExportJob {
    ExportJob {
        id: fixed_id(JOB_IDS, n),
        org_id: org.id,
        status: JobStatus::Pending,
        request: format!(
            r#"{{"filter":{{"action":["channel_created"],"q":"prod"}},"format":"jsonl","compression":"gzip","n":{n}}}"#
        ),
        requested_by: "alice@example.com".to_string(),
        created_at: ts(created_ms),
        completed_at: None,
        progress: 0,
        total_records: None,
        error_message: None,
        file_name: None,
        expires_at: None,
        claimed_by: None,
        heartbeat_at: None,
    }
}

pub(crate) async fn get_job_ok(store: &dyn Store, org_id: Uuid, id: Uuid) -> Option<ExportJob> {
    ok(
        store.get_job(org_id, id).await,
        format!("get_job({org_id}, {id})"),
    )
}

/// Export jobs round-trip field by field (every optional field absent and present), are
/// scoped to their organization, and `update_job` writes every field back, clearing ones
/// set to `None`.
pub async fn export_jobs_round_trip_and_update(store: Arc<dyn Store>) {
    let store = &*store;
    let t0 = base_time().as_millis();
    let a = make_org(store, "jobs-a").await;
    let b = make_org(store, "jobs-b").await;
    let minimal = pending_job(1, &a, t0);
    let full = ExportJob {
        id: fixed_id(JOB_IDS, 2),
        org_id: a.id,
        status: JobStatus::Completed,
        request: r#"{"filter":{"actor":["zoë@例え.jp"]},"format":"csv","compression":"none"}"#
            .to_string(),
        requested_by: "CI Bot — “exporter”".to_string(),
        created_at: ts(t0 + 1),
        completed_at: Some(ts(t0 + 60_000)),
        progress: 100,
        total_records: Some(5_000_000_000),
        error_message: Some("partial: 3 events skipped\nsee log".to_string()),
        file_name: Some("jobs-a/0190-export.csv.gz".to_string()),
        expires_at: Some(ts(t0 + 7 * MS_PER_DAY)),
        claimed_by: Some("runner-a:4242".to_string()),
        heartbeat_at: Some(ts(t0 + 59_999)),
    };
    let other = pending_job(3, &b, t0 + 2);
    for job in [&minimal, &full, &other] {
        let created = ok(store.create_job(job.clone()).await, "create_job");
        assert_eq!(&created, job, "create_job returns the job");
    }
    for job in [&minimal, &full, &other] {
        assert_eq!(
            get_job_ok(store, job.org_id, job.id).await.as_ref(),
            Some(job),
            "get_job round-trips job {}",
            job.id
        );
    }
    for job in [&minimal, &full] {
        assert_eq!(
            get_job_ok(store, b.id, job.id).await,
            None,
            "get_job with organization B returns organization A's job"
        );
    }
    assert_eq!(
        get_job_ok(store, a.id, other.id).await,
        None,
        "get_job with organization A returns organization B's job"
    );
    assert_eq!(
        get_job_ok(store, a.id, fixed_id(JOB_IDS, 99)).await,
        None,
        "get_job of an unknown job"
    );

    // A job's life, written back step by step.
    let running = ExportJob {
        status: JobStatus::Running,
        progress: 40,
        total_records: Some(1200),
        claimed_by: Some("runner-1".to_string()),
        heartbeat_at: Some(ts(t0 + 5000)),
        ..minimal.clone()
    };
    let completed = ExportJob {
        status: JobStatus::Completed,
        completed_at: Some(ts(t0 + 9000)),
        progress: 100,
        total_records: Some(3000),
        file_name: Some("jobs-a/minimal.jsonl.gz".to_string()),
        expires_at: Some(ts(t0 + MS_PER_DAY)),
        claimed_by: None,
        heartbeat_at: None,
        ..running.clone()
    };
    let expired = ExportJob {
        status: JobStatus::Expired,
        file_name: None,
        ..completed.clone()
    };
    let failed = ExportJob {
        status: JobStatus::Failed,
        completed_at: Some(ts(t0 + 70_000)),
        error_message: Some("disk full".to_string()),
        file_name: None,
        total_records: None,
        expires_at: None,
        ..full.clone()
    };
    for (step, job) in [&running, &completed, &expired, &failed]
        .into_iter()
        .enumerate()
    {
        ok(
            store.update_job(job).await,
            format!("update_job step {step}"),
        );
        assert_eq!(
            get_job_ok(store, job.org_id, job.id).await.as_ref(),
            Some(job),
            "update_job step {step} ({:?}) is kept",
            job.status
        );
    }
    assert_eq!(
        get_job_ok(store, a.id, minimal.id).await.as_ref(),
        Some(&expired),
        "updating another job changed this one"
    );
    assert_eq!(
        get_job_ok(store, b.id, other.id).await.as_ref(),
        Some(&other),
        "updating A's jobs changed B's"
    );
}

/// Checks a claimed job: the job as it was, now running for `runner` with a heartbeat at
/// `now` (a taken-over job may restart its progress), and stored so.
pub(crate) async fn assert_claimed(
    store: &dyn Store,
    claimed: Option<ExportJob>,
    before: &ExportJob,
    runner: &str,
    now: Timestamp,
    context: &str,
) {
    let claimed = claimed.unwrap_or_else(|| {
        panic!(
            "{context}: claim_job returned None; expected job {} ({:?}, created {})",
            before.id, before.status, before.created_at
        )
    });
    assert_eq!(
        claimed.id, before.id,
        "{context}: claim_job claimed another job"
    );
    let progress = if before.status == JobStatus::Running {
        claimed.progress
    } else {
        before.progress
    };
    let expected = ExportJob {
        status: JobStatus::Running,
        claimed_by: Some(runner.to_string()),
        heartbeat_at: Some(now),
        progress,
        ..before.clone()
    };
    assert_eq!(
        claimed, expected,
        "{context}: the claimed job is running for {runner:?} since now, and otherwise as it was"
    );
    assert!(claimed.progress <= 100, "{context}: progress above 100");
    assert_eq!(
        get_job_ok(store, claimed.org_id, claimed.id).await.as_ref(),
        Some(&claimed),
        "{context}: the claim is stored"
    );
}

/// `claim_job` takes the oldest pending job, then running jobs whose heartbeat is older than
/// `stale_before`, never a fresh running job or a finished one, and never the same job
/// twice; `expired_jobs` lists completed jobs whose files expire before `now`.
pub async fn export_jobs_claim_and_expire(store: Arc<dyn Store>) {
    let t0 = base_time().as_millis();
    let a = make_org(&*store, "claim-a").await;
    let b = make_org(&*store, "claim-b").await;
    let now = ts(t0 + 3_600_000);
    let stale_before = now.plus_millis(-60_000);
    let claim = |runner: &'static str, now: Timestamp, stale_before: Timestamp| {
        let store = Arc::clone(&store);
        async move {
            ok(
                store.claim_job(runner, now, stale_before).await,
                format!("claim_job({runner:?}, {now}, {stale_before})"),
            )
        }
    };
    assert_eq!(
        claim("runner-0", now, stale_before).await,
        None,
        "claim_job on a store without jobs"
    );

    // Newer pending job first, with the smaller id: the claim must go by created_at.
    let pending_new = pending_job(1, &a, t0 + 200);
    let pending_old = pending_job(2, &b, t0 + 100);
    let finished = |n: u32, status: JobStatus, created_ms: i64| ExportJob {
        id: fixed_id(JOB_IDS, n),
        org_id: a.id,
        status,
        request: r#"{"format":"jsonl"}"#.to_string(),
        requested_by: "bob@example.org".to_string(),
        created_at: ts(created_ms),
        completed_at: Some(ts(t0 + 1000)),
        progress: if status == JobStatus::Completed {
            100
        } else {
            30
        },
        total_records: Some(10),
        error_message: (status == JobStatus::Failed).then(|| "boom".to_string()),
        file_name: (status == JobStatus::Completed).then(|| format!("claim-a/{n}.jsonl")),
        expires_at: Some(ts(t0 + 2 * MS_PER_DAY)),
        claimed_by: Some("runner-gone".to_string()),
        heartbeat_at: Some(ts(t0)),
    };
    let completed = finished(3, JobStatus::Completed, t0);
    let failed = finished(4, JobStatus::Failed, t0 + 1);
    let expired = finished(5, JobStatus::Expired, t0 + 2);
    let running = |n: u32, created_ms: i64, heartbeat_at: Timestamp| ExportJob {
        id: fixed_id(JOB_IDS, n),
        org_id: a.id,
        status: JobStatus::Running,
        request: r#"{"format":"csv"}"#.to_string(),
        requested_by: "carol@example.com".to_string(),
        created_at: ts(created_ms),
        completed_at: None,
        progress: 35,
        total_records: Some(800),
        error_message: None,
        file_name: None,
        expires_at: None,
        claimed_by: Some("runner-busy".to_string()),
        heartbeat_at: Some(heartbeat_at),
    };
    let fresh = running(6, t0 + 3, now.plus_millis(-10_000));
    // Exactly on the bound is not older than it.
    let on_the_bound = running(7, t0 + 4, stale_before);
    for job in [
        &pending_new,
        &pending_old,
        &completed,
        &failed,
        &expired,
        &fresh,
        &on_the_bound,
    ] {
        ok(store.create_job(job.clone()).await, "create_job");
    }

    assert_claimed(
        &*store,
        claim("runner-1", now, stale_before).await,
        &pending_old,
        "runner-1",
        now,
        "the first claim takes the oldest pending job",
    )
    .await;
    assert_claimed(
        &*store,
        claim("runner-2", now, stale_before).await,
        &pending_new,
        "runner-2",
        now,
        "the second claim takes the other pending job",
    )
    .await;
    assert_eq!(
        claim("runner-3", now, stale_before).await,
        None,
        "nothing is claimable: the running jobs are fresh (heartbeat at or after stale_before) and the others finished"
    );

    // The runner of `fresh` dies: its heartbeat falls behind.
    let dead = ExportJob {
        heartbeat_at: Some(stale_before.plus_millis(-1)),
        ..fresh.clone()
    };
    ok(store.update_job(&dead).await, "update_job");
    assert_claimed(
        &*store,
        claim("runner-3", now, stale_before).await,
        &dead,
        "runner-3",
        now,
        "a running job whose heartbeat is older than stale_before is taken over",
    )
    .await;
    assert_eq!(
        claim("runner-4", now, stale_before).await,
        None,
        "a job just taken over is claimed again"
    );

    // Later, every running job has gone quiet: each is taken over once, finished ones never.
    let later = now.plus_millis(MS_PER_DAY);
    let later_stale = later.plus_millis(-60_000);
    let mut taken: Vec<ExportJob> = Vec::new();
    for runner in ["runner-5", "runner-6", "runner-7", "runner-8"] {
        let before: HashMap<Uuid, ExportJob> = {
            let mut jobs = HashMap::new();
            for job in [&pending_old, &pending_new, &fresh, &on_the_bound] {
                let stored = get_job_ok(&*store, job.org_id, job.id)
                    .await
                    .expect("job exists");
                jobs.insert(job.id, stored);
            }
            jobs
        };
        let claimed = claim(runner, later, later_stale).await.unwrap_or_else(|| {
            panic!("{runner}: a running job with an old heartbeat was not claimed")
        });
        let was = before.get(&claimed.id).unwrap_or_else(|| {
            panic!(
                "{runner}: claim_job claimed job {} ({:?}), which is not a stale running job",
                claimed.id, claimed.status
            )
        });
        assert_eq!(
            was.status,
            JobStatus::Running,
            "{runner}: claimed a job that was not running"
        );
        assert_claimed(
            &*store,
            Some(claimed.clone()),
            was,
            runner,
            later,
            &format!("{runner} takes over a stale job"),
        )
        .await;
        assert!(
            taken.iter().all(|t| t.id != claimed.id),
            "{runner}: job {} was taken over twice",
            claimed.id
        );
        taken.push(claimed);
    }
    assert_eq!(
        claim("runner-9", later, later_stale).await,
        None,
        "after every stale job is taken over, nothing is claimable"
    );
    // Their runners finish them; finished jobs stay put, however old their heartbeat.
    for (idx, job) in taken.iter().enumerate() {
        let status = if idx % 2 == 0 {
            JobStatus::Completed
        } else {
            JobStatus::Failed
        };
        let done = ExportJob {
            status,
            completed_at: Some(later),
            progress: 100,
            ..job.clone()
        };
        ok(store.update_job(&done).await, "update_job(finish)");
    }
    assert_eq!(
        claim(
            "runner-9",
            ts(t0 + 400 * MS_PER_DAY),
            ts(t0 + 399 * MS_PER_DAY)
        )
        .await,
        None,
        "completed, failed and expired jobs are never claimed, however old their heartbeat"
    );
    for job in [&completed, &failed, &expired] {
        assert_eq!(
            get_job_ok(&*store, job.org_id, job.id).await.as_ref(),
            Some(job),
            "claiming changed a finished job"
        );
    }

    // Concurrent claims never hand out the same job twice.
    let c = make_org(&*store, "claim-c").await;
    let racing: Vec<ExportJob> = (0..4)
        .map(|i| pending_job(20 + i, &c, t0 + 10_000 + i64::from(i)))
        .collect();
    for job in &racing {
        ok(store.create_job(job.clone()).await, "create_job");
    }
    let barrier = Arc::new(tokio::sync::Barrier::new(8));
    let mut handles = Vec::new();
    for task in 0..8 {
        let (store, barrier) = (Arc::clone(&store), Arc::clone(&barrier));
        handles.push(tokio::spawn(async move {
            barrier.wait().await;
            let runner = format!("racer-{task}");
            let claimed = store.claim_job(&runner, later, later_stale).await;
            (runner, claimed)
        }));
    }
    let mut won: Vec<ExportJob> = Vec::new();
    for handle in handles {
        let (runner, claimed) = handle.await.expect("a claiming task panicked");
        let claimed = claimed.unwrap_or_else(|e| panic!("{runner}: claim_job failed: {e} ({e:?})"));
        if let Some(job) = claimed {
            assert_eq!(
                job.claimed_by.as_deref(),
                Some(runner.as_str()),
                "a concurrent claim returned a job claimed by another runner"
            );
            won.push(job);
        }
    }
    let mut won_ids: Vec<Uuid> = won.iter().map(|j| j.id).collect();
    won_ids.sort();
    let racing_ids: Vec<Uuid> = racing.iter().map(|j| j.id).collect();
    assert_eq!(
        won_ids, racing_ids,
        "8 concurrent claims of 4 pending jobs: each job claimed exactly once, the other claims None"
    );
    for job in &won {
        assert_eq!(
            get_job_ok(&*store, job.org_id, job.id).await.as_ref(),
            Some(job),
            "a concurrent claim is stored as returned"
        );
    }

    // Expiry: completed jobs whose files expire strictly before `now`.
    let expiry_now = ts(t0 + 30 * MS_PER_DAY);
    let with_expiry =
        |job: &ExportJob, n: u32, org: &Org, expires_at: Option<Timestamp>| ExportJob {
            id: fixed_id(JOB_IDS, n),
            org_id: org.id,
            expires_at,
            ..job.clone()
        };
    let due_a = with_expiry(&completed, 40, &a, Some(expiry_now.plus_millis(-1)));
    let due_b = with_expiry(
        &completed,
        41,
        &b,
        Some(expiry_now.plus_millis(-MS_PER_DAY)),
    );
    let not_due = [
        with_expiry(&completed, 42, &a, Some(expiry_now)),
        with_expiry(&completed, 43, &a, Some(expiry_now.plus_millis(1))),
        with_expiry(&completed, 44, &a, None),
        with_expiry(&failed, 45, &a, Some(expiry_now.plus_millis(-1))),
        with_expiry(&expired, 46, &a, Some(expiry_now.plus_millis(-1))),
        with_expiry(&fresh, 47, &b, Some(expiry_now.plus_millis(-1))),
        with_expiry(&pending_new, 48, &b, Some(expiry_now.plus_millis(-1))),
    ];
    for job in [&due_a, &due_b].into_iter().chain(&not_due) {
        ok(store.create_job(job.clone()).await, "create_job");
    }
    // `completed` itself expires at t0 + 2 days: due as well.
    let mut expected = vec![completed.clone(), due_a, due_b];
    expected.sort_by_key(|j| j.id);
    let mut got = ok(store.expired_jobs(expiry_now).await, "expired_jobs");
    got.sort_by_key(|j| j.id);
    let ids = |jobs: &[ExportJob]| -> Vec<Uuid> { jobs.iter().map(|j| j.id).collect() };
    assert_eq!(
        ids(&got),
        ids(&expected),
        "expired_jobs({expiry_now}) lists the completed jobs (of every organization) whose files expire before then"
    );
    assert_eq!(got, expected, "expired_jobs returns the stored fields");
    assert!(
        ok(store.expired_jobs(ts(t0)).await, "expired_jobs(early)").is_empty(),
        "expired_jobs before any file expires"
    );
}
