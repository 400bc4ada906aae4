//! `ldguard policy validate|lint|explain|test`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Subcommand;
use ldguard_policy::{Diagnostics, Policy, RuleTable};

mod backstop;
mod explain;
mod request;
mod test;
mod validate;

#[derive(Subcommand)]
pub enum PolicyCommand {
    /// Check policy files (JSON, or YAML when named .yaml/.yml); print every
    /// problem as `file:line:col: message` with the offending source and a
    /// hint. Exit 1 if any file has errors.
    Validate {
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
        /// Output: `text` for people, `json` for programs (one object per
        /// file, with every diagnostic).
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
    /// Report rules that can never decide anything: shadowed by an earlier
    /// rule, never matching, or deciding what the default decides anyway.
    /// Exit 1 if any file has errors or warnings.
    Lint {
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
        /// Output: `text` for people, `json` for programs (one object per
        /// file, with every diagnostic).
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
    /// Show how a policy decides one operation, and which rule (or default)
    /// decides it; with `--backstop`, what the kernel backstop enforces.
    Explain(Box<explain::ExplainArgs>),
    /// Run a policy against test cases (JSON lines, each a request and the
    /// expected action). Exit 1 on any mismatch.
    Test {
        #[arg(value_name = "FILE")]
        policy: PathBuf,
        #[arg(value_name = "CASES.jsonl")]
        cases: PathBuf,
        /// Output: `text` for people, `json` for programs.
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
    #[command(flatten)]
    Server(crate::server::PolicyServerCommand),
}

/// Output of every `policy` command.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
}

/// Prints `value` as pretty JSON on standard output.
fn print_json(value: &impl serde::Serialize) {
    // Plain structs of strings and numbers always serialise.
    println!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_default()
    );
}

pub fn run(cmd: PolicyCommand, server: &crate::server::ServerArgs) -> ExitCode {
    match cmd {
        PolicyCommand::Server(cmd) => crate::server::policy(cmd, server),
        PolicyCommand::Validate { files, format } => validate::run(&files, format, false),
        PolicyCommand::Lint { files, format } => validate::run(&files, format, true),
        PolicyCommand::Explain(args) => explain::run(&args),
        PolicyCommand::Test {
            policy,
            cases,
            format,
        } => test::run(&policy, &cases, format),
    }
}

/// Why a policy could not be loaded.
pub enum LoadError {
    Io(String),
    Invalid { source: String, diags: Diagnostics },
}

/// Reads, validates and compiles a policy file.
pub fn load(path: &Path) -> Result<(Policy, RuleTable, Diagnostics), LoadError> {
    let origin = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|e| LoadError::Io(format!("{origin}: cannot read policy: {e}")))?;
    let format = ldguard_policy::PolicyFormat::of_name(&origin);
    match ldguard_policy::check_source(&text, &origin, format) {
        (Some(policy), mut diags) => {
            let table = ldguard_policy::compile_document(&policy);
            diags
                .0
                .extend(ldguard_policy::lint::lint(&text, &origin, format, &policy));
            Ok((policy, table, diags))
        }
        (None, diags) => Err(LoadError::Invalid {
            source: text,
            diags,
        }),
    }
}

/// Loads a policy for `explain`/`test`, printing problems; `None` means the
/// caller should exit with the returned code.
pub fn load_or_report(path: &Path) -> Result<RuleTable, ExitCode> {
    match load(path) {
        Ok((_, table, _)) => Ok(table),
        Err(LoadError::Io(msg)) => {
            eprintln!("error: {msg}");
            Err(ExitCode::from(2))
        }
        Err(LoadError::Invalid { source, diags }) => {
            eprint!("{}", diags.render(&source));
            eprintln!("error: {} is not a valid policy", path.display());
            Err(ExitCode::from(1))
        }
    }
}

/// The file to hand the preload library for `path`, which it reads as JSON:
/// `path` itself for a JSON policy; for a YAML one, its JSON translation,
/// written once under `$XDG_CACHE_HOME/ldguard/run/` (or `~/.cache/…`),
/// named by its content so that concurrent runs share it and a changed
/// policy gets a new file. The file outlives this process on purpose: the
/// command replaces it (exec) and its library reads the policy afterwards.
pub fn json_for_library(path: &Path, text: &str) -> Result<PathBuf, String> {
    use std::hash::{Hash, Hasher};
    let origin = path.display().to_string();
    let format = ldguard_policy::PolicyFormat::of_name(&origin);
    if format == ldguard_policy::PolicyFormat::Json {
        return Ok(path.to_path_buf());
    }
    let root = format
        .parse(text)
        .map_err(|e| format!("{origin}: {}", e.message))?;
    let json = ldguard_policy::json::to_string_pretty(&root);
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .ok_or(
            "neither XDG_CACHE_HOME nor HOME is set: cannot store the JSON form of a YAML policy",
        )?
        .join("ldguard/run");
    std::fs::create_dir_all(&cache).map_err(|e| format!("{}: {e}", cache.display()))?;
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    json.hash(&mut hasher);
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("policy");
    let file = cache.join(format!("{stem}-{:016x}.json", hasher.finish()));
    if std::fs::read_to_string(&file).ok().as_deref() != Some(json.as_str()) {
        // Written beside and renamed, so a reader never sees half a file.
        let tmp = cache.join(format!(".{stem}-{}.tmp", std::process::id()));
        std::fs::write(&tmp, &json)
            .and_then(|()| std::fs::rename(&tmp, &file))
            .map_err(|e| format!("{}: {e}", file.display()))?;
    }
    Ok(file)
}

/// What `ldguard policy push` sends for `path`: JSON as it is; YAML, once
/// valid, as its JSON translation. The error is (rendered diagnostics,
/// message).
pub fn json_text_to_push(path: &Path, text: String) -> Result<String, (Option<String>, String)> {
    let origin = path.display().to_string();
    let format = ldguard_policy::PolicyFormat::of_name(&origin);
    if format == ldguard_policy::PolicyFormat::Json {
        return Ok(text);
    }
    match ldguard_policy::check_source(&text, &origin, format) {
        (Some(_), _) => format
            .parse(&text)
            .map(|root| ldguard_policy::json::to_string_pretty(&root))
            .map_err(|e| (None, format!("{origin}: {}", e.message))),
        (None, diags) => Err((
            Some(diags.render(&text)),
            format!("{origin} is not a valid policy; nothing was sent"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_yaml_policy_is_pushed_as_json_and_a_bad_one_not_at_all() {
        let yaml = "apiVersion: ldguard.policy/v1\nname: y\nrules:\n  - {name: r, kind: exec, path: [/bin/sh], action: deny}\n";
        let sent = json_text_to_push(Path::new("p.yaml"), yaml.into()).unwrap();
        let v: serde_json::Value = serde_json::from_str(&sent).unwrap();
        assert_eq!(v["rules"][0]["path"][0], "/bin/sh");
        let json = r#"{"apiVersion": "ldguard.policy/v1", "name": "j"}"#;
        assert_eq!(
            json_text_to_push(Path::new("p.json"), json.into()).unwrap(),
            json
        );
        let (rendered, message) =
            json_text_to_push(Path::new("p.yml"), yaml.replace("kind:", "knd:")).unwrap_err();
        assert!(rendered
            .unwrap()
            .contains("p.yml:4:15: unknown field `knd`"));
        assert!(message.contains("nothing was sent"), "{message}");
    }
}
