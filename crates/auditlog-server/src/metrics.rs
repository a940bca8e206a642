//! Prometheus metrics, kept as plain atomics: request counts and latency histograms per route
//! and status class, events ingested, export jobs, and (from the service's counts) events
//! refused by validation per organization and action.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use auditlog_service::rejections::{OrgRejections, RejectedAction};
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;

use crate::AppState;

/// Upper bounds of the latency histogram buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    total: u64,
    sum: f64,
}

/// The service's counters.
#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    latency: Mutex<BTreeMap<String, Histogram>>,
    /// Events stored through the ingest endpoint.
    pub events_ingested: AtomicU64,
    /// Export jobs requested.
    pub exports_requested: AtomicU64,
}

impl Metrics {
    fn observe(&self, method: &str, route: &str, status: u16, seconds: f64) {
        *self
            .requests
            .lock()
            .expect("lock")
            .entry((method.to_string(), route.to_string(), status))
            .or_default() += 1;
        let mut latency = self.latency.lock().expect("lock");
        let histogram = latency.entry(route.to_string()).or_default();
        for (idx, bound) in BUCKETS.iter().enumerate() {
            if seconds <= *bound {
                histogram.counts[idx] += 1;
            }
        }
        histogram.total += 1;
        histogram.sum += seconds;
    }

    /// The Prometheus text exposition, with the store's size and indexing lag and the
    /// service's counts of refused events.
    pub fn render(
        &self,
        disk_bytes: u64,
        lag: auditlog_store::IndexLag,
        rejections: &[OrgRejections],
        unrecorded_actions: u64,
    ) -> String {
        let mut out = String::new();
        out.push_str(
            "# HELP auditlog_http_requests_total HTTP requests by method, route and status.\n",
        );
        out.push_str("# TYPE auditlog_http_requests_total counter\n");
        for ((method, route, status), n) in self.requests.lock().expect("lock").iter() {
            out.push_str(&format!(
                "auditlog_http_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}} {n}\n"
            ));
        }
        out.push_str(
            "# HELP auditlog_http_request_duration_seconds HTTP request latency by route.\n",
        );
        out.push_str("# TYPE auditlog_http_request_duration_seconds histogram\n");
        for (route, h) in self.latency.lock().expect("lock").iter() {
            for (idx, bound) in BUCKETS.iter().enumerate() {
                out.push_str(&format!(
                    "auditlog_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {}\n",
                    h.counts[idx]
                ));
            }
            out.push_str(&format!("auditlog_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}\n", h.total));
            out.push_str(&format!(
                "auditlog_http_request_duration_seconds_sum{{route=\"{route}\"}} {}\n",
                h.sum
            ));
            out.push_str(&format!(
                "auditlog_http_request_duration_seconds_count{{route=\"{route}\"}} {}\n",
                h.total
            ));
        }
        out.push_str(
            "# HELP auditlog_events_ingested_total Events stored through the ingest API.\n",
        );
        out.push_str("# TYPE auditlog_events_ingested_total counter\n");
        out.push_str(&format!(
            "auditlog_events_ingested_total {}\n",
            self.events_ingested.load(Ordering::Relaxed)
        ));
        out.push_str("# HELP auditlog_export_jobs_requested_total Export jobs requested.\n");
        out.push_str("# TYPE auditlog_export_jobs_requested_total counter\n");
        out.push_str(&format!(
            "auditlog_export_jobs_requested_total {}\n",
            self.exports_requested.load(Ordering::Relaxed)
        ));
        render_rejections(&mut out, rejections);
        out.push_str("# HELP auditlog_unrecorded_actions_total Actions refused (503) because their audit record could not be made: the service fails closed.\n");
        out.push_str("# TYPE auditlog_unrecorded_actions_total counter\n");
        out.push_str(&format!(
            "auditlog_unrecorded_actions_total {unrecorded_actions}\n"
        ));
        out.push_str("# HELP auditlog_store_disk_bytes Bytes the store occupies on disk.\n");
        out.push_str("# TYPE auditlog_store_disk_bytes gauge\n");
        out.push_str(&format!("auditlog_store_disk_bytes {disk_bytes}\n"));
        out.push_str(
            "# HELP auditlog_index_lag_events Stored events not yet in the derived indexes (reads include them all the same).\n",
        );
        out.push_str("# TYPE auditlog_index_lag_events gauge\n");
        out.push_str(&format!("auditlog_index_lag_events {}\n", lag.events));
        out.push_str(
            "# HELP auditlog_index_lag_seconds Age of the oldest stored event not yet indexed.\n",
        );
        out.push_str("# TYPE auditlog_index_lag_seconds gauge\n");
        out.push_str(&format!(
            "auditlog_index_lag_seconds {:.3}\n",
            lag_seconds(lag)
        ));
        out
    }
}

/// The `action` label of a count. Only a key that could be valid (`snake_case`, at most 64
/// characters) is a label of its own: what else clients send is arbitrary text, so it is
/// summed under one label, and labels in parentheses can never collide with a key.
fn action_label(action: &RejectedAction) -> &str {
    match action {
        RejectedAction::Key(key) if key.is_empty() => "(none)",
        RejectedAction::Key(key) if auditlog_core::validate::is_action_key(key) => key,
        RejectedAction::Key(_) => "(malformed)",
        RejectedAction::Other => "(other)",
    }
}

/// A label value with `\`, `"` and line feeds escaped, as the text format requires.
fn label_value(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// `auditlog_ingest_rejected_events_total{org,action}`: as many series per organization as
/// it has counts, at most (`auditlog_service::rejections::MAX_ACTIONS_PER_ORG` + 1).
fn render_rejections(out: &mut String, rejections: &[OrgRejections]) {
    out.push_str("# HELP auditlog_ingest_rejected_events_total Events refused by validation on POST /api/audit-logs/events since the process started, by organization (\"\": none could be resolved) and action ((none): no action key; (malformed): not a snake_case key; (other): beyond the actions counted per organization).\n");
    out.push_str("# TYPE auditlog_ingest_rejected_events_total counter\n");
    for org in rejections {
        let mut by_label: BTreeMap<&str, u64> = BTreeMap::new();
        for count in &org.counts {
            *by_label.entry(action_label(&count.action)).or_default() += count.count;
        }
        let org_label = label_value(org.org_name.as_deref().unwrap_or(""));
        for (action, n) in by_label {
            out.push_str(&format!(
                "auditlog_ingest_rejected_events_total{{org=\"{org_label}\",action=\"{}\"}} {n}\n",
                label_value(action)
            ));
        }
    }
}

/// Seconds since the oldest unindexed event was stored (0 when there is none).
pub fn lag_seconds(lag: auditlog_store::IndexLag) -> f64 {
    lag.oldest.map_or(0.0, |oldest| {
        (auditlog_core::Timestamp::now().as_millis() - oldest.as_millis()).max(0) as f64 / 1000.0
    })
}

/// Middleware: gives each request an id (the client's `X-Request-Id` when sane), logs it, and
/// counts it by route and status.
pub async fn track(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().to_string();
    // Label by route pattern, not by path, so ids do not explode the label space.
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |m| m.as_str().to_string());
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.chars().all(|c| c.is_ascii_graphic()))
        .map_or_else(|| uuid::Uuid::now_v7().to_string(), str::to_string);
    request
        .extensions_mut()
        .insert(RequestId(request_id.clone()));
    let mut response = next.run(request).await;
    let status = response.status().as_u16();
    let seconds = started.elapsed().as_secs_f64();
    state.metrics.observe(&method, &route, status, seconds);
    tracing::info!(%method, %route, status, ms = seconds * 1000.0, request_id = %request_id, "request");
    let headers = response.headers_mut();
    if let Ok(value) = request_id.parse() {
        headers.insert("x-request-id", value);
    }
    headers.insert(
        "x-content-type-options",
        axum::http::HeaderValue::from_static("nosniff"),
    );
    response
}

/// The id of the request being served.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

#[cfg(test)]
mod tests {
    use auditlog_core::Timestamp;
    use auditlog_service::rejections::{Problem, RejectionCount};

    use super::*;

    fn count(action: RejectedAction, n: u64) -> RejectionCount {
        RejectionCount {
            action,
            count: n,
            last_problem: Problem::new("invalid", "actor_email", "bad"),
            last_rejected_at: Timestamp::from_millis(0).expect("in range"),
        }
    }

    #[test]
    fn rejections_are_labelled_by_organization_and_a_bounded_action() {
        let rejections = [
            OrgRejections {
                org_name: Some("acme \"q\" \\ x\ny".into()),
                counts: vec![
                    count(RejectedAction::Key("channel_created".into()), 3),
                    count(RejectedAction::Key("Bad \"Key\"\n".into()), 2),
                    count(RejectedAction::Key("x y".into()), 1),
                    count(RejectedAction::Key(String::new()), 4),
                    count(RejectedAction::Other, 5),
                ],
            },
            OrgRejections {
                org_name: None,
                counts: vec![count(RejectedAction::Key("channel_created".into()), 7)],
            },
        ];
        let mut out = String::new();
        render_rejections(&mut out, &rejections);
        let series: Vec<&str> = out.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(
            series,
            vec![
                r#"auditlog_ingest_rejected_events_total{org="acme \"q\" \\ x\ny",action="(malformed)"} 3"#,
                r#"auditlog_ingest_rejected_events_total{org="acme \"q\" \\ x\ny",action="(none)"} 4"#,
                r#"auditlog_ingest_rejected_events_total{org="acme \"q\" \\ x\ny",action="(other)"} 5"#,
                r#"auditlog_ingest_rejected_events_total{org="acme \"q\" \\ x\ny",action="channel_created"} 3"#,
                r#"auditlog_ingest_rejected_events_total{org="",action="channel_created"} 7"#,
            ]
        );
    }
}
