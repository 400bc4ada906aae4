//! `ldguard policy test FILE CASES.jsonl`: each non-blank line of the cases
//! file is a JSON object, a request (see [`RequestSpec`]) plus `expect` (the
//! expected action) and optionally `rule` (the expected deciding rule's
//! name, or null for a default) and `log`. Lines starting with `#` are
//! comments.

use std::path::Path;
use std::process::ExitCode;

use ldguard_policy::{Action, RuleTable};

use super::request::RequestSpec;

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

pub fn run(policy: &Path, cases: &Path) -> ExitCode {
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
    let (mut passed, mut failed, mut broken) = (0usize, 0usize, 0usize);
    for (n, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let at = format!("{}:{}", cases.display(), n + 1);
        match run_case(&table, trimmed) {
            Ok(None) => passed += 1,
            Ok(Some(diff)) => {
                failed += 1;
                println!("FAIL {at}: {diff}");
            }
            Err(msg) => {
                broken += 1;
                println!("ERROR {at}: {msg}");
            }
        }
    }
    let total = passed + failed + broken;
    if failed + broken == 0 {
        if total == 0 {
            println!("{}: no cases", cases.display());
            return ExitCode::from(1);
        }
        println!(
            "{}: all {total} cases pass against {}",
            cases.display(),
            policy.display()
        );
        ExitCode::SUCCESS
    } else {
        println!(
            "{}: {failed} of {total} cases fail, {broken} cannot run, against {}",
            cases.display(),
            policy.display()
        );
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
