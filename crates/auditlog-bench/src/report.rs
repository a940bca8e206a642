//! Formatting shared by the benchmark reports: numbers people can read and Markdown tables
//! ready to paste into BENCHMARKS.md.

use std::fmt;
use std::time::Duration;

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
