//! `ldguard policy test FILE CASES.jsonl`: each non-blank line of the cases
//! file is a JSON object, a request (see [`RequestSpec`]) plus `expect` (the
//! expected action) and optionally `rule` (the expected deciding rule's
//! name, or null for a default) and `log`. Lines starting with `#` are
//! comments.

use std::path::Path;
use std::process::ExitCode;

use ldguard_policy::{Action, RuleTable};

use super::request::RequestSpec;
use super::Format;

/// The parts of a case line beside the request.
struct Expectation {
    expect: String,
    /// `Some(None)` is an explicit `null`: a default must decide.
    rule: Option<Option<String>>,
    log: Option<bool>,
}

/// Splits a case line into its request and its expectations. The request
/// part is strict (unknown fields are errors) so that a typo in a field name
/// cannot silently turn a case into a different request.
fn parse_case(line: &str) -> Result<(RequestSpec, Expectation), String> {
    let mut obj: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(line).map_err(|e| format!("not a JSON object: {e}"))?;
    let expect = match obj.remove("expect") {
        Some(serde_json::Value::String(s)) => s,
        Some(other) => return Err(format!("`expect` must be a string, found {other}")),
        None => return Err("missing field `expect` (the expected action)".into()),
    };
    let rule = match obj.remove("rule") {
        None => None,
        Some(serde_json::Value::Null) => Some(None),
        Some(serde_json::Value::String(s)) => Some(Some(s)),
        Some(other) => return Err(format!("`rule` must be a rule name or null, found {other}")),
    };
    let log = match obj.remove("log") {
        None => None,
        Some(serde_json::Value::Bool(b)) => Some(b),
        Some(other) => return Err(format!("`log` must be true or false, found {other}")),
    };
    // Free text naming the case; only for readers of the file.
    obj.remove("comment");
    let request: RequestSpec = serde_json::from_value(serde_json::Value::Object(obj))
        .map_err(|e| format!("bad request: {e}"))?;
    Ok((request, Expectation { expect, rule, log }))
}

/// `policy test --format json`: the verdict and every case that did not pass.
#[derive(serde::Serialize)]
struct TestReport {
    policy: String,
    cases: String,
    total: usize,
    passed: usize,
    failed: Vec<CaseProblem>,
    broken: Vec<CaseProblem>,
}

#[derive(serde::Serialize)]
struct CaseProblem {
    line: usize,
    message: String,
}

pub fn run(policy: &Path, cases: &Path, format: Format) -> ExitCode {
    let table = match super::load_or_report(policy) {
        Ok(t) => t,
        Err(code) => return code,
    };
    let text = match std::fs::read_to_string(cases) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {}: cannot read cases: {e}", cases.display());
            return ExitCode::from(2);
        }
    };
    let mut report = TestReport {
        policy: policy.display().to_string(),
        cases: cases.display().to_string(),
        total: 0,
        passed: 0,
        failed: Vec::new(),
        broken: Vec::new(),
    };
    let text_output = format == Format::Text;
    for (n, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        report.total += 1;
        let at = format!("{}:{}", cases.display(), n + 1);
        match run_case(&table, trimmed) {
            Ok(None) => report.passed += 1,
            Ok(Some(diff)) => {
                if text_output {
                    println!("FAIL {at}: {diff}");
                }
                report.failed.push(CaseProblem {
                    line: n + 1,
                    message: diff,
                });
            }
            Err(msg) => {
                if text_output {
                    println!("ERROR {at}: {msg}");
                }
                report.broken.push(CaseProblem {
                    line: n + 1,
                    message: msg,
                });
            }
        }
    }
    let ok = report.passed == report.total && report.total > 0;
    if !text_output {
        super::print_json(&report);
    } else if report.total == 0 {
        println!("{}: no cases", cases.display());
    } else if ok {
        println!(
            "{}: all {} cases pass against {}",
            cases.display(),
            report.total,
            policy.display()
        );
    } else {
        println!(
            "{}: {} of {} cases fail, {} cannot run, against {}",
            cases.display(),
            report.failed.len(),
            report.total,
            report.broken.len(),
            policy.display()
        );
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// `Ok(None)` when the case passes, `Ok(Some(diff))` when it does not,
/// `Err` when the line is not a valid case.
fn run_case(table: &RuleTable, line: &str) -> Result<Option<String>, String> {
    let (request, case) = parse_case(line)?;
    let expect = Action::parse(&case.expect).ok_or_else(|| {
        format!(
            "unknown expected action `{}` (expected allow, audit, deny or kill)",
            case.expect
        )
    })?;
    let owned = request.build()?;
    let req = owned.request();
    let d = table.for_program(req.program).decide(&req);
    let actual_rule = d.rule.map(|i| table.rule_name(i).to_string());
    let show_rule = |r: &Option<String>| {
        r.as_ref().map_or_else(
            || format!("defaults.{}", req.kind),
            |n| format!("rule `{n}`"),
        )
    };
    let mut diffs = Vec::new();
    if d.action != expect {
        diffs.push(format!(
            "action: expected {expect}, got {} (by {})",
            d.action,
            show_rule(&actual_rule)
        ));
    }
    if let Some(want) = &case.rule {
        if *want != actual_rule {
            diffs.push(format!(
                "rule: expected {}, got {}",
                show_rule(want),
                show_rule(&actual_rule)
            ));
        }
    }
    if let Some(want) = case.log {
        if want != d.log {
            diffs.push(format!("log: expected {want}, got {}", d.log));
        }
    }
    if diffs.is_empty() {
        Ok(None)
    } else {
        Ok(Some(format!(
            "{}\n    {}",
            request.describe(),
            diffs.join("\n    ")
        )))
    }
}
