//! Formatting shared by the benchmark reports: numbers people can read and Markdown tables
//! ready to paste into BENCHMARKS.md.

use std::cell::RefCell;
use std::fmt;
use std::time::{Duration, Instant};

/// `1234567` as `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let groups: Vec<&str> = digits
        .as_bytes()
        .rchunks(3)
        .rev()
        .map(|group| std::str::from_utf8(group).expect("ASCII digits"))
        .collect();
    groups.join(",")
}

/// Milliseconds with three significant digits (at least two decimals below 1 ms).
pub fn millis(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms < 1.0 {
        format!("{ms:.3}")
    } else if ms < 10.0 {
        format!("{ms:.2}")
    } else if ms < 100.0 {
        format!("{ms:.1}")
    } else {
        format!("{ms:.0}")
    }
}

/// Writes `(metric, value, unit)` rows as a Markdown table.
pub fn write_table(
    f: &mut fmt::Formatter<'_>,
    rows: &[(String, String, &'static str)],
) -> fmt::Result {
    writeln!(f, "| metric | value | unit |")?;
    writeln!(f, "|---|---:|---|")?;
    for (metric, value, unit) in rows {
        writeln!(f, "| {metric} | {value} | {unit} |")?;
    }
    Ok(())
}

/// Prints a benchmark's progress to stderr: a line when the phase changes, when it
/// completes, and otherwise at most every two seconds.
pub struct Progress {
    state: RefCell<(String, Instant)>,
    started: Instant,
}

impl Default for Progress {
    fn default() -> Progress {
        Progress::new()
    }
}

impl Progress {
    /// Starts the clock.
    pub fn new() -> Progress {
        let now = Instant::now();
        Progress {
            state: RefCell::new((String::new(), now)),
            started: now,
        }
    }

    /// Reports `done` of `total` in `phase`.
    pub fn report(&self, phase: &str, done: u64, total: u64) {
        let mut state = self.state.borrow_mut();
        let new_phase = state.0 != phase;
        let due = state.1.elapsed() >= Duration::from_secs(2);
        if !(new_phase || done >= total || due) {
            return;
        }
        if new_phase {
            state.0 = phase.to_string();
        }
        state.1 = Instant::now();
        let percent = if total == 0 {
            100.0
        } else {
            done as f64 * 100.0 / total as f64
        };
        eprintln!(
            "[{:>7.1}s] {phase}: {done}/{total} ({percent:.0}%)",
            self.started.elapsed().as_secs_f64()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_numbers_for_people() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(millis(Duration::from_micros(250)), "0.250");
        assert_eq!(millis(Duration::from_micros(12_345)), "12.3");
    }
}
