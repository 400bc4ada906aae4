//! Events over time by action, drawn server-side as inline SVG (one line
//! per action), with the same numbers in a table for screen readers and
//! for people who want the figures.

use maud::{html, Markup};
use std::collections::BTreeMap;

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 200.0;
const LEFT: f64 = 44.0;
const BOTTOM: f64 = 24.0;
const TOP: f64 = 10.0;

/// The order and colour of the lines.
const SERIES: [(&str, &str); 4] = [
    ("deny", "#b42318"),
    ("kill", "#6e0b0b"),
    ("audit", "#b54708"),
    ("allow", "#8c959f"),
];

/// Counts per (bucket start in µs, action).
pub struct Series {
    pub from_us: i64,
    pub bucket_us: i64,
    pub buckets: usize,
    pub counts: BTreeMap<(i64, String), i64>,
}

impl Series {
    fn count(&self, i: usize, action: &str) -> i64 {
        let start = self.from_us + i as i64 * self.bucket_us;
        self.counts
            .get(&(start, action.to_string()))
            .copied()
            .unwrap_or(0)
    }

    fn actions(&self) -> Vec<(&'static str, &'static str)> {
        SERIES
            .iter()
            .filter(|(a, _)| self.counts.keys().any(|(_, x)| x == a))
            .copied()
            .collect()
    }
}

pub fn render(s: &Series, caption: &str) -> Markup {
    let actions = s.actions();
    let max = (0..s.buckets)
        .flat_map(|i| actions.iter().map(move |(a, _)| (i, *a)))
        .map(|(i, a)| s.count(i, a))
        .max()
        .unwrap_or(0)
        .max(1);
    let plot_w = WIDTH - LEFT - 8.0;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let x = |i: usize| LEFT + plot_w * (i as f64 + 0.5) / s.buckets.max(1) as f64;
    let y = |n: i64| TOP + plot_h * (1.0 - n as f64 / max as f64);
    let label = |i: usize| super::show_time(s.from_us + i as i64 * s.bucket_us)[5..16].to_string();
    let ticks = [0, s.buckets / 2, s.buckets.saturating_sub(1)];
    html! {
        figure .chart {
            figcaption #chart-caption { (caption) }
            svg role="img" aria-labelledby="chart-caption" viewBox=(format!("0 0 {WIDTH} {HEIGHT}"))
                width="100%" preserveAspectRatio="xMinYMin meet" {
                line x1=(LEFT) y1=(TOP + plot_h) x2=(WIDTH - 8.0) y2=(TOP + plot_h) stroke="#d0d7de" {}
                line x1=(LEFT) y1=(TOP) x2=(LEFT) y2=(TOP + plot_h) stroke="#d0d7de" {}
                text x=(LEFT - 4.0) y=(TOP + 8.0) text-anchor="end" { (max) }
                text x=(LEFT - 4.0) y=(TOP + plot_h) text-anchor="end" { "0" }
                @for (i, anchor) in ticks.iter().zip(["start", "middle", "end"]) {
                    text x=(x(*i)) y=(HEIGHT - 6.0) text-anchor=(anchor) { (label(*i)) }
                }
                @for (action, colour) in &actions {
                    polyline fill="none" stroke=(colour) stroke-width="2" data-action=(action)
                        points=({
                            (0..s.buckets)
                                .map(|i| format!("{:.1},{:.1}", x(i), y(s.count(i, action))))
                                .collect::<Vec<_>>()
                                .join(" ")
                        }) {}
                }
            }
            @if actions.is_empty() {
                p .hint { "No events in this time range." }
            } @else {
                p .legend {
                    @for (action, _) in &actions {
                        span class=(format!("key-{action}")) aria-hidden="true" { "■ " } (action) " "
                    }
                }
                details {
                    summary { "The figures" }
                    table {
                        thead { tr {
                            th scope="col" { "From (UTC)" }
                            @for (action, _) in &actions { th scope="col" .num { (action) } }
                        } }
                        tbody {
                            @for i in 0..s.buckets {
                                @if actions.iter().any(|(a, _)| s.count(i, a) > 0) {
                                    tr {
                                        th scope="row" { (super::show_time(s.from_us + i as i64 * s.bucket_us)) }
                                        @for (action, _) in &actions { td .num { (s.count(i, action)) } }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_action_present_with_its_points() {
        let mut counts = BTreeMap::new();
        counts.insert((1_000, "deny".to_string()), 4);
        counts.insert((1_010, "allow".to_string()), 2);
        let s = Series {
            from_us: 1_000,
            bucket_us: 10,
            buckets: 3,
            counts,
        };
        let svg = render(&s, "Events").into_string();
        assert_eq!(svg.matches("<polyline").count(), 2, "{svg}");
        assert!(svg.contains(r#"data-action="deny""#));
        assert!(!svg.contains(r#"data-action="audit""#));
        // The tallest point (4 denials) touches the top of the plot.
        assert!(svg.contains(",10.0"), "{svg}");
    }
}
