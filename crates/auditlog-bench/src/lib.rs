//! Benchmark support for auditlog: a deterministic generator of realistic history
//! ([`generate`]) and a harness that measures a [`Store`](auditlog_store::Store) with it
//! ([`harness`]): ingest throughput, query latency percentiles and bytes per event on disk.

pub mod baseline;
pub mod generate;
pub mod harness;
pub mod http;
pub mod report;
