//! The auditlog command.
fn main() {}
