//! The HTTP service of auditlog (axum): the reference Audit Logs API with our extensions,
//! ingest, exports, the OpenAPI document, health and metrics. Only this crate knows HTTP;
//! everything it does goes through `auditlog_service::Service`.
//!
//! - [`serve`] runs the service on a listener until `shutdown` resolves — the seam every
//!   test uses with a port-0 listener.
//! - `api`: the handlers; `error`: the one error type; `auth`: bearer credentials and rate
//!   limits; `forwarded`: the client's address behind trusted proxies; `metrics`: the
//!   Prometheus counters.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use auditlog_service::jobs::ExportJobs;
use auditlog_service::Service;
use axum::extract::DefaultBodyLimit;
use axum::Router;
use tokio::net::TcpListener;

mod api;
mod auth;
pub mod error;
pub mod forwarded;
mod metrics;
mod page;
mod params;

pub use metrics::Metrics;

/// The OpenAPI 3.1 document of this API, as served at `/api/openapi.json`.
pub const OPENAPI: &str = include_str!("../../../docs/openapi.json");

/// Settings of the HTTP service.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Largest request body accepted, in bytes (413 beyond).
    pub body_limit: usize,
    /// Where export files are written.
    pub export_dir: PathBuf,
    /// How long export files are kept.
    pub export_ttl: Duration,
    /// Requests per second each credential may make (0: unlimited).
    pub rate_limit_per_second: u32,
    /// Requests a credential may make at once above the rate.
    pub rate_limit_burst: u32,
    /// The URL prefix for links in responses (download URLs), e.g. `http://127.0.0.1:8080`.
    pub public_url: String,
    /// The reverse proxies whose `Forwarded` and `X-Forwarded-For` headers are believed
    /// (`forwarded::client_address`); empty, the default, believes nobody's and takes each
    /// client's address from its TCP connection.
    pub trusted_proxies: Vec<forwarded::IpRange>,
}

impl ServerConfig {
    /// The defaults: 8 MiB bodies, 24 h exports, 100 requests/s with a burst of 200, no
    /// trusted proxies.
    pub fn new(export_dir: PathBuf, public_url: String) -> ServerConfig {
        ServerConfig {
            body_limit: 8 * 1024 * 1024,
            export_dir,
            export_ttl: Duration::from_secs(24 * 3600),
            rate_limit_per_second: 100,
            rate_limit_burst: 200,
            public_url,
            trusted_proxies: Vec::new(),
        }
    }
}

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// The application layer.
    pub service: Service,
    /// The export jobs.
    pub jobs: Arc<ExportJobs>,
    /// Counters for `/metrics`.
    pub metrics: Arc<Metrics>,
    /// Per-credential rate limits.
    pub limiter: Arc<auth::RateLimiter>,
    /// Sign-in attempts per client address (`auth::Client::ip`: behind a trusted proxy, the
    /// address it forwards, so that clients behind one proxy do not share one budget).
    pub sign_in_limiter: Arc<auth::RateLimiter>,
    /// Settings.
    pub config: Arc<ServerConfig>,
}

impl AppState {
    /// Composes the state; the export runner is not started here (see [`serve`]).
    pub fn new(service: Service, config: ServerConfig) -> AppState {
        let jobs = Arc::new(
            ExportJobs::new(service.clone(), config.export_dir.clone()).with_ttl(config.export_ttl),
        );
        AppState {
            limiter: Arc::new(auth::RateLimiter::new(
                config.rate_limit_per_second,
                config.rate_limit_burst,
            )),
            // Ten attempts, then one every six seconds.
            sign_in_limiter: Arc::new(auth::RateLimiter::with_rate(1.0 / 6.0, 10.0)),
            metrics: Arc::new(Metrics::default()),
            service,
            jobs,
            config: Arc::new(config),
        }
    }
}

/// The router with every route and layer.
pub fn router(state: AppState) -> Router {
    let body_limit = state.config.body_limit;
    api::routes()
        .merge(page::routes())
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ))
        .with_state(state)
}

/// Serves until `shutdown` resolves, then stops accepting, lets in-flight requests (and so
/// in-flight appends) finish, and stops the export runner.
pub async fn serve(
    state: AppState,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (stop_jobs, jobs_stopped) = tokio::sync::watch::channel(false);
    let runner = state.jobs.clone().spawn(jobs_stopped);
    let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
    let result = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await;
    let _ = stop_jobs.send(true);
    let _ = runner.await;
    result
}
