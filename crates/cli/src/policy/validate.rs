//! `ldguard policy validate FILE... [--format json]`: errors, and warnings
//! such as rules an earlier rule shadows; `ldguard policy lint` is the same
//! report, failing on warnings too.

use std::path::PathBuf;
use std::process::ExitCode;

use ldguard_policy::diag::Level;
use ldguard_policy::Diagnostics;
use serde::Serialize;

use super::{load, Format, LoadError};

/// One file's verdict in `--format json`.
#[derive(Serialize)]
struct Verdict {
    file: String,
    valid: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    policy: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rules: Option<usize>,
    /// A file that could not be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    diagnostics: Vec<JsonDiagnostic>,
}

#[derive(Serialize)]
struct JsonDiagnostic {
    level: &'static str,
    line: usize,
    col: usize,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    expected: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    hint: Option<String>,
}

fn json_diagnostics(diags: &Diagnostics) -> Vec<JsonDiagnostic> {
    diags
        .iter()
        .map(|d| JsonDiagnostic {
            level: match d.level {
                Level::Warning => "warning",
                Level::Error => "error",
            },
            line: d.line,
            col: d.col,
            message: d.message.clone(),
            expected: d.expected.clone(),
            hint: d.hint.clone(),
        })
        .collect()
}

/// `strict` (lint): warnings fail the run as errors do.
pub fn run(files: &[PathBuf], format: Format, strict: bool) -> ExitCode {
    let mut failed = 0usize;
    let mut verdicts = Vec::new();
    for path in files {
        let file = path.display().to_string();
        match load(path) {
            Ok((policy, _, warnings)) => {
                if strict && !warnings.is_empty() {
                    failed += 1;
                }
                if format == Format::Json {
                    verdicts.push(Verdict {
                        file,
                        valid: true,
                        policy: Some(policy.name.clone()),
                        rules: Some(policy.rules.len()),
                        error: None,
                        diagnostics: json_diagnostics(&warnings),
                    });
                    continue;
                }
                if !warnings.is_empty() {
                    let text = std::fs::read_to_string(path).unwrap_or_default();
                    eprint!("{}", warnings.render(&text));
                }
                println!(
                    "{file}: ok (policy `{}`, {} rules{})",
                    policy.name,
                    policy.rules.len(),
                    match warnings.len() {
                        0 => String::new(),
                        1 => ", 1 warning".to_string(),
                        n => format!(", {n} warnings"),
                    }
                );
            }
            Err(LoadError::Io(msg)) => {
                failed += 1;
                if format == Format::Json {
                    verdicts.push(Verdict {
                        file,
                        valid: false,
                        policy: None,
                        rules: None,
                        error: Some(msg),
                        diagnostics: Vec::new(),
                    });
                    continue;
                }
                eprintln!("{msg}");
            }
            Err(LoadError::Invalid { source, diags }) => {
                failed += 1;
                if format == Format::Json {
                    verdicts.push(Verdict {
                        file,
                        valid: false,
                        policy: None,
                        rules: None,
                        error: None,
                        diagnostics: json_diagnostics(&diags),
                    });
                    continue;
                }
                eprintln!("{}", diags.render(&source));
                let errors = diags.iter().filter(|d| d.is_error()).count();
                eprintln!(
                    "{file}: {errors} error{}",
                    if errors == 1 { "" } else { "s" }
                );
            }
        }
    }
    if format == Format::Json {
        super::print_json(&verdicts);
    }
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
