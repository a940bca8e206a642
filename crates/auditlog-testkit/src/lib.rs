//! What auditlog's tests and benchmarks share, written once: a small HTTP/1.1 client
//! ([`http`]), PostgreSQL test databases that clean up after themselves ([`postgres`]), runs
//! of a program with their output ([`process`]), faults caused on purpose ([`faults`]: a full
//! disk, a PostgreSQL server that restarts), and the rule for a test whose service is
//! missing ([`Unavailable`]): locally it says it was skipped and passes; under `CI=true`,
//! where every service must be present, it fails.
//!
//! A dev-only crate (`publish = false`): no shipped crate depends on it.

pub mod faults;
pub mod http;
pub mod postgres;
pub mod process;

use std::fmt;

/// The environment variable CI sets to `true`; `.ci/run` exports it itself.
pub const CI_VARIABLE: &str = "CI";

/// Whether this run is CI (`CI=true`), where a test may not skip for want of a service.
pub fn is_ci() -> bool {
    std::env::var(CI_VARIABLE).is_ok_and(|value| value == "true")
}

/// A service a test needs that this machine does not provide (a PostgreSQL database, a
/// browser), with what would provide it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unavailable {
    /// What is missing and how to provide it, e.g. "AUDITLOG_TEST_DATABASE_URL is not set".
    pub reason: String,
}

impl Unavailable {
    /// A missing service, described by `reason`.
    pub fn new(reason: impl Into<String>) -> Unavailable {
        Unavailable {
            reason: reason.into(),
        }
    }

    /// Ends the test's claim on the service: prints that the test is skipped, or panics
    /// under `CI=true`, so that CI never passes a test that checked nothing.
    #[track_caller]
    pub fn skip(&self) {
        if is_ci() {
            panic!("CI requires this test's service: {}", self.reason);
        }
        println!("skipped: {}", self.reason);
    }
}

impl fmt::Display for Unavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

impl std::error::Error for Unavailable {}

/// The service, or `None` after [`Unavailable::skip`] (which panics under `CI=true`).
/// The usual opening of a test that needs one:
///
/// ```text
/// let Some(database) = available(TestDatabase::create("x", Isolation::Schema).await) else {
///     return;
/// };
/// ```
#[track_caller]
pub fn available<T>(service: Result<T, Unavailable>) -> Option<T> {
    match service {
        Ok(service) => Some(service),
        Err(unavailable) => {
            unavailable.skip();
            None
        }
    }
}
