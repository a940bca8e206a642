//! Benchmark support for auditlog: a harness that measures a [`Store`](auditlog_store::Store)
//! with generated history ([`harness`]: ingest throughput, query latency percentiles and bytes
//! per event on disk), and the end-to-end HTTP benchmark ([`http`]).
//!
//! The history generator is the `auditlog-demo` crate (the binary's demo uses it too, without
//! linking the benchmarks); it is re-exported here as [`generate`], its name in this crate.

pub use auditlog_demo as generate;

pub mod baseline;
pub mod harness;
pub mod http;
pub mod report;
