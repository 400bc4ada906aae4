//! The `backstop` and `drift` policy fields: accepted forms, and each
//! mistake rejected with one error at its exact place, with a hint.

use ldguard_policy::{check_str, Action, Backstop, LandlockLevel};

fn doc(extra: &str) -> String {
    format!("{{\n  \"apiVersion\": \"ldguard.policy/v1\",\n  \"name\": \"t\",\n{extra}\n}}")
}

/// Asserts one error at `line:col` with `message` and `hint`.
fn rejects(text: &str, line: usize, col: usize, message: &str, hint: Option<&str>) {
    let (policy, diags) = check_str(text, "p.json");
    assert!(policy.is_none(), "accepted:\n{text}");
    let all: Vec<String> = diags.iter().map(|d| d.to_string()).collect();
    assert_eq!(diags.len(), 1, "expected one diagnostic, got {all:#?}");
    let d = &diags.0[0];
    assert!(d.is_error());
    assert_eq!(
        (d.line, d.col, d.message.as_str()),
        (line, col, message),
        "{all:#?}"
    );
    assert_eq!(d.hint.as_deref(), hint, "{all:#?}");
}

#[test]
fn both_fields_parse() {
    let text = doc(
        r#"  "backstop": {"seccomp": true, "landlock": "best-effort"},
  "drift": "deny""#,
    );
    let (policy, diags) = check_str(&text, "p.json");
    assert!(diags.is_empty(), "{diags}");
    let p = policy.unwrap();
    assert_eq!(
        p.backstop,
        Some(Backstop {
            seccomp: true,
            landlock: LandlockLevel::BestEffort
        })
    );
    assert_eq!(p.drift, Some(Action::Deny));
}

#[test]
fn absent_fields_are_none_and_partial_backstop_defaults_off() {
    let (p, _) = check_str(&doc(r#"  "mode": "enforce""#), "p.json");
    let p = p.unwrap();
    assert_eq!((p.backstop, p.drift), (None, None));
    let (p, d) = check_str(&doc(r#"  "backstop": {"landlock": "required"}"#), "p.json");
    assert!(d.is_empty(), "{d}");
    assert_eq!(
        p.unwrap().backstop,
        Some(Backstop {
            seccomp: false,
            landlock: LandlockLevel::Required
        })
    );
}

#[test]
fn backstop_must_be_an_object() {
    rejects(
        &doc(r#"  "backstop": true"#),
        4,
        15,
        "`backstop` must be an object, found a boolean",
        Some(r#"write `{"seccomp": true, "landlock": "best-effort"}`"#),
    );
}

#[test]
fn unknown_backstop_field_suggests() {
    rejects(
        &doc(r#"  "backstop": {"secomp": true}"#),
        4,
        16,
        "unknown field `secomp` in `backstop`",
        Some("did you mean `seccomp`?"),
    );
}

#[test]
fn seccomp_must_be_a_boolean() {
    rejects(
        &doc(r#"  "backstop": {"seccomp": "true"}"#),
        4,
        27,
        "`seccomp` must be a boolean, found a string",
        Some("write true or false without quotes"),
    );
}

#[test]
fn landlock_boolean_gets_the_words() {
    rejects(
        &doc(r#"  "backstop": {"landlock": true}"#),
        4,
        28,
        "`landlock` must be a string, found a boolean",
        Some(r#"use `"best-effort"` or `"required"`"#),
    );
}

#[test]
fn unknown_landlock_level() {
    rejects(
        &doc(r#"  "backstop": {"landlock": "besteffort"}"#),
        4,
        28,
        "unknown landlock level `besteffort`",
        Some("did you mean `best-effort`?"),
    );
    rejects(
        &doc(r#"  "backstop": {"landlock": "on"}"#),
        4,
        28,
        "unknown landlock level `on`",
        Some("use `best-effort`, or `required` to refuse kernels without it"),
    );
}

#[test]
fn unknown_drift_action() {
    rejects(
        &doc(r#"  "drift": "block""#),
        4,
        12,
        "unknown drift action `block`",
        Some("the value is the action for a drifted executable, e.g. `deny`"),
    );
    rejects(
        &doc(r#"  "drift": "dny""#),
        4,
        12,
        "unknown drift action `dny`",
        Some("did you mean `deny`?"),
    );
}

#[test]
fn drift_must_be_a_string() {
    rejects(
        &doc(r#"  "drift": true"#),
        4,
        12,
        "`drift` must be a string, found a boolean",
        None,
    );
}

#[test]
fn backstop_warnings_name_the_reason() {
    let (p, d) = check_str(&doc(r#"  "backstop": {"seccomp": false}"#), "p.json");
    assert!(p.is_some());
    assert_eq!(d.len(), 1);
    assert!(!d.0[0].is_error());
    assert_eq!(d.0[0].message, "`backstop` turns nothing on");
    assert_eq!((d.0[0].line, d.0[0].col), (4, 3));

    let (p, d) = check_str(
        &doc("  \"mode\": \"permissive\",\n  \"backstop\": {\"seccomp\": true}"),
        "p.json",
    );
    assert!(p.is_some());
    assert_eq!(d.len(), 1);
    assert_eq!(
        d.0[0].message,
        "`backstop` is not installed while the mode is `permissive`"
    );
    assert_eq!((d.0[0].line, d.0[0].col), (5, 3));
}
