//! The dashboard: events over time by action, what was denied most (rules,
//! programs, images), and every image the server knows of with the
//! assignment and mode that apply to it and its last policy fetch.

use super::chart::{self, Series};
use super::page::{layout, Nav};
use super::{params, query_string, segment, show_time, ConsoleState, PageResult, Session};
use crate::api::{assignments, events};
use crate::store::now_us;
use axum::extract::{Query, State};
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

/// Time ranges offered, with their chart bucket in seconds.
const RANGES: [(&str, &str, i64); 3] = [
    ("1h", "last hour", 60),
    ("24h", "last 24 hours", 1800),
    ("7d", "last 7 days", 14_400),
];

/// One bucket covering any range: totals.
const WHOLE: i64 = 100_000_000;

#[derive(Deserialize)]
pub struct DashboardQuery {
    range: Option<String>,
}

/// Counts per value of `by` (summed over time), largest first.
async fn totals(
    console: &super::Console,
    session: &Session,
    by: &str,
    filter: Value,
) -> PageResult<Vec<(String, i64)>> {
    let mut q = json!({"by": by, "bucket": WHOLE});
    if let (Some(q), Some(f)) = (q.as_object_mut(), filter.as_object()) {
        q.extend(f.clone());
    }
    let answer = events::aggregate(
        State(console.app.clone()),
        session.caller.clone(),
        Query(params(q)?),
    )
    .await?
    .0;
    let mut sums: BTreeMap<String, i64> = BTreeMap::new();
    for c in answer["counts"].as_array().into_iter().flatten() {
        if let Some(v) = c["value"].as_str() {
            *sums.entry(v.to_string()).or_default() += c["count"].as_i64().unwrap_or(0);
        }
    }
    let mut list: Vec<(String, i64)> = sums.into_iter().collect();
    list.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    Ok(list)
}

fn top_table(
    title: &str,
    column: &str,
    filter_key: &str,
    range: &str,
    rows: &[(String, i64)],
) -> Markup {
    html! {
        section .card aria-labelledby=(format!("top-{filter_key}")) {
            h2 id=(format!("top-{filter_key}")) { (title) }
            @if rows.is_empty() {
                p .hint { "No denials in this time range." }
            } @else {
                table {
                    thead { tr { th scope="col" { (column) } th scope="col" .num { "Denials" } } }
                    tbody {
                        @for (value, n) in rows.iter().take(10) {
                            tr {
                                td { a href=(format!("/events?{}", query_string(&[("action", "deny"), (filter_key, value), ("from", range)]))) { (value) } }
                                td .num { (n) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// An image as the dashboard lists it.
struct ImageRow {
    image: String,
    assignment: Option<String>,
    policy: Option<String>,
    mode: Option<String>,
}

async fn image_row(console: &super::Console, image: &str) -> PageResult<ImageRow> {
    let store = &console.app.store;
    let id = params(json!({ "image": image }))?;
    let Some(a) = assignments::resolve(store, &id).await? else {
        return Ok(ImageRow {
            image: image.to_string(),
            assignment: None,
            policy: None,
            mode: None,
        });
    };
    let (version, text) = assignments::effective_document(store, &a).await?;
    let mode = serde_json::from_str::<Value>(&text)
        .ok()
        .and_then(|d| d["mode"].as_str().map(str::to_string))
        .unwrap_or_else(|| "enforce".into());
    Ok(ImageRow {
        image: image.to_string(),
        assignment: Some(a.name),
        policy: Some(format!("{} v{version}", a.policy)),
        mode: Some(mode),
    })
}

pub async fn page(
    State(console): ConsoleState,
    session: Session,
    Query(q): Query<DashboardQuery>,
) -> PageResult<Markup> {
    let (range, range_label, bucket_s) = RANGES
        .iter()
        .find(|(r, _, _)| Some(*r) == q.range.as_deref())
        .copied()
        .unwrap_or(RANGES[1]);
    let bucket_us = bucket_s * 1_000_000;
    let now = now_us();
    let range_us = range_us(range);
    let from_us = (now - range_us).div_euclid(bucket_us) * bucket_us;
    let answer = events::aggregate(
        State(console.app.clone()),
        session.caller.clone(),
        Query(params(
            json!({"by": "action", "bucket": bucket_s, "from": range}),
        )?),
    )
    .await?
    .0;
    let mut counts = BTreeMap::new();
    for c in answer["counts"].as_array().into_iter().flatten() {
        let start = c["bucket"]
            .as_str()
            .and_then(ldguard_events::parse_time)
            .map(|(s, _)| s * 1_000_000);
        if let (Some(start), Some(action)) = (start, c["value"].as_str()) {
            counts.insert(
                (start, action.to_string()),
                c["count"].as_i64().unwrap_or(0),
            );
        }
    }
    let series = Series {
        from_us,
        bucket_us,
        buckets: ((now - from_us) / bucket_us + 1) as usize,
        counts,
    };
    let denied = json!({"action": "deny", "from": range});
    let rules = totals(&console, &session, "rule", denied.clone()).await?;
    let programs = totals(&console, &session, "program", denied.clone()).await?;
    let denied_images = totals(&console, &session, "image", denied).await?;
    let seen = totals(&console, &session, "image", json!({"from": range})).await?;
    let fetches = console.fetches.all();
    let names: BTreeSet<String> = seen
        .iter()
        .map(|(i, _)| i.clone())
        .chain(fetches.keys().cloned())
        .collect();
    let mut images = Vec::new();
    for name in &names {
        images.push(image_row(&console, name).await?);
    }
    let content = html! {
        h1 { "Dashboard" }
        form method="get" action="/" .range {
            label for="range" { "Time range" }
            select #range name="range" {
                @for (r, label, _) in RANGES {
                    option value=(r) selected[r == range] { (label) }
                }
            }
            noscript { button type="submit" { "Show" } }
        }
        (chart::render(&series, &format!("Events over time by action, {range_label}")))
        div .grid {
            (top_table("Top rules with denials", "Rule", "rule", range, &rules))
            (top_table("Programs with denials", "Program", "program", range, &programs))
            (top_table("Images with denials", "Image", "image", range, &denied_images))
        }
        section aria-labelledby="images-heading" {
            h2 #images-heading { "Instrumented images" }
            p .hint { "Images that reported events in this time range or fetched their policy from this server process since it started." }
            @if images.is_empty() {
                p { "No image has reported to this server yet." }
            } @else {
                table #images {
                    thead { tr {
                        th scope="col" { "Image" } th scope="col" { "Assignment" }
                        th scope="col" { "Policy" } th scope="col" { "Mode" }
                        th scope="col" { "Last policy fetch" }
                    } }
                    tbody {
                        @for row in &images {
                            tr {
                                td { a href=(format!("/events?{}", query_string(&[("image", &row.image)]))) { (row.image) } }
                                td {
                                    @if let Some(a) = &row.assignment {
                                        a href=(format!("/assignments/{}", segment(a))) { (a) }
                                    } @else { "none applies" }
                                }
                                td { (row.policy.as_deref().unwrap_or("")) }
                                td { (row.mode.as_deref().unwrap_or("")) }
                                td {
                                    @match fetches.get(&row.image) {
                                        Some(f) => {
                                            (show_time(f.at_us)) " ("
                                            (match f.status { 200 => "new document", 304 => "unchanged", _ => "no assignment applied" })
                                            ")"
                                        }
                                        None => "not since this server started",
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(layout("Dashboard", &session, Nav::Dashboard, content))
}

/// A range such as `24h` in microseconds.
fn range_us(range: &str) -> i64 {
    crate::api::events::parse_instant(range, 0).map_or(86_400_000_000, |t| -t)
}
