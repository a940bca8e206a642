//! The events-per-day chart above the table: inline SVG drawn by the server, so it needs no
//! script and no external resource.

use auditlog_core::Timestamp;
use maud::{html, Markup};

/// Most bars drawn; longer ranges are grouped into buckets of several days.
const MAX_BARS: i64 = 90;

/// Draws `days` (days since the epoch with counts, ascending) over `[first_day, last_day]`.
pub fn daily_chart(days: &[(i64, u64)], first_day: i64, last_day: i64) -> Markup {
    let span = (last_day - first_day + 1).max(1);
    let per_bar = (span + MAX_BARS - 1) / MAX_BARS;
    let n_bars = (span + per_bar - 1) / per_bar;
    let mut bars = vec![0u64; n_bars as usize];
    for (day, count) in days {
        if (first_day..=last_day).contains(day) {
            bars[((day - first_day) / per_bar) as usize] += count;
        }
    }
    let max = bars.iter().copied().max().unwrap_or(0).max(1);
    let width = 1000.0;
    let height = 70.0;
    let bar_width = width / n_bars as f64;
    let label = |day: i64| Timestamp::start_of_day(day).to_string()[..10].to_string();
    let total: u64 = bars.iter().sum();
    html! {
        figure.chart aria-label={ "Events per day: " (total) " events from " (label(first_day)) " to " (label(last_day)) } {
            svg viewBox={ "0 0 " (width) " " (height + 16.0) } role="img" preserveAspectRatio="none" {
                title { "Events per " @if per_bar == 1 { "day" } @else { (per_bar) " days" } }
                @for (idx, count) in bars.iter().enumerate() {
                    @let bar_height = if *count == 0 { 0.0 } else { (*count as f64 / max as f64 * height).max(1.5) };
                    @let start = first_day + idx as i64 * per_bar;
                    rect x=(format!("{:.2}", idx as f64 * bar_width + 0.5)) y=(format!("{:.2}", height - bar_height))
                        width=(format!("{:.2}", (bar_width - 1.0).max(0.5))) height=(format!("{:.2}", bar_height)) {
                        title { (label(start)) ": " (count) " events" }
                    }
                }
                text.axis x="0" y=(height + 13.0) { (label(first_day)) }
                text.axis x=(width) y=(height + 13.0) text-anchor="end" { (label(last_day)) }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_one_bar_per_day_or_bucket() {
        let svg = daily_chart(&[(10, 3), (12, 6)], 10, 12).into_string();
        assert_eq!(svg.matches("<rect").count(), 3);
        assert!(svg.contains("6 events"));
        let long = daily_chart(&[(0, 1)], 0, 364).into_string();
        assert!(long.matches("<rect").count() <= 90);
        assert!(long.contains("Events per 5 days"));
    }
}
