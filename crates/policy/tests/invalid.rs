//! Invalid policies: each must be rejected with exactly one error at the
//! exact line and column, with the exact message.

use ldguard_policy::check_str;

/// Asserts that `text` is rejected with exactly one diagnostic, at
/// `line:col` with `message`, and returns its rendered form.
fn rejects(text: &str, line: usize, col: usize, message: &str) -> String {
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
    assert!(d.headline().starts_with(&format!("p.json:{line}:{col}: ")));
    diags.render(text)
}

#[test]
fn bad_cidr_host_bits() {
    rejects(
        r#"{
  "apiVersion": "ldguard.policy/v1",
  "name": "t",
  "rules": [
    {"name": "a", "kind": "network", "address": ["10.1.0.0/8"], "action": "deny"}
  ]
}"#,
        5,
        51,
        "bad CIDR `10.1.0.0/8` in `address`: host bits are set after the /8 prefix",
    );
}

#[test]
fn bad_cidr_prefix() {
    rejects(
        r#"{
  "apiVersion": "ldguard.policy/v1",
  "name": "t",
  "rules": [
    {"name": "a", "kind": "network", "address": ["10.0.0.0/33"], "action": "deny"}
  ]
}"#,
        5,
        60,
        "bad CIDR `10.0.0.0/33` in `address`: prefix length `/33` is not between 0 and 32",
    );
}

#[test]
fn bad_default_action() {
    rejects(
        r#"{
  "apiVersion": "ldguard.policy/v1",
  "name": "t",
  "defaults": {"file": "refuse"}
}"#,
        4,
        24,
        "unknown action `refuse`",
    );
}

#[test]
fn bad_host_glob() {
    rejects(
        r#"{
  "apiVersion": "ldguard.policy/v1",
  "name": "t",
  "rules": [
    {"name": "a", "kind": "network", "host": ["*.exa mple.com"], "action": "deny"}
  ]
}"#,
        5,
        53,
        "bad glob `*.exa mple.com` in `host`: ` ` cannot appear in a host name glob",
    );
}

#[test]
fn character_class() {
    rejects(
        r#"{
  "apiVersion": "ldguard.policy/v1",
  "name": "t",
  "rules": [
    {"name": "a", "kind": "exec", "path": ["/bin/[bd]ash"], "action": "deny"}
  ]
}"#,
        5,
        50,
        "bad glob `/bin/[bd]ash` in `path`: `[` is not supported in globs (no character classes or alternatives)",
    );
}

#[test]
fn comment() {
    rejects(
        r#"{
  "apiVersion": "ldguard.policy/v1",
  "name": "t",
  // no shells
  "rules": []
}"#,
        4,
        3,
        "comments are not allowed in JSON",
    );
}

#[test]
fn double_star_in_segment() {
    rejects(
        r#"{
  "apiVersion": "ldguard.policy/v1",
  "name": "t",
  "rules": [
    {"name": "a", "kind": "exec", "path": ["/usr/**bin"], "action": "deny"}
  ]
}"#,
        5,
        50,
        "bad glob `/usr/**bin` in `path`: `**` must be a whole segment (between `/`s)",
    );
}

#[test]
fn duplicate_field() {
    rejects(
        r#"{
  "apiVersion": "ldguard.policy/v1",
  "name": "t",
  "name": "u"
}"#,
        4,
        3,
        "duplicate field `name` in the policy",
    );
}

#[test]
fn duplicate_rule_name() {
    rejects(
        r#"{
  "apiVersion": "ldguard.policy/v1",
  "name": "t",
  "rules": [
    {"name": "a", "kind": "exec", "path": ["/bin/sh"], "action": "deny"},
    {"name": "a", "kind": "exec", "path": ["/bin/bash"], "action": "deny"}
  ]
}"#,
        6,
        14,
        "duplicate rule name `a`",
    );
}

#[test]
fn empty_path_list() {
    rejects(
        r#"{
  "apiVersion": "ldguard.policy/v1",
  "name": "t",
  "rules": [
    {"name": "a", "kind": "exec", "path": [], "action": "deny"}
  ]
}"#,
        5,
        43,
        "empty `path` list matches nothing",
    );
}

#[test]
fn empty_rule() {
    rejects(
        r#"{
  "apiVersion": "ldguard.policy/v1",
  "name": "t",
  "rules": [
    {}
  ]
}"#,
        5,
        5,
        "empty rule",
    );
}

#[test]
fn empty_rules() {
    rejects(
        r#"{
  "apiVersion": "ldguard.policy/v1",
  "name": "t",
  "rules": []
}"#,
        4,
        12,
        "empty `rules` array",
    );
}

#[test]
fn enabled_as_string() {
    rejects(
        r#"{
  "apiVersion": "ldguard.policy/v1",
  "name": "t",
  "rules": [
    {"name": "a", "kind": "exec", "path": ["/bin/sh"], "action": "deny", "enabled": "false"}
  ]
}"#,
        5,
        85,
        "`enabled` must be a boolean, found a string",
    );
}

#[test]
fn errno_on_allow() {
    rejects(
        r#"{
  "apiVersion": "ldguard.policy/v1",
  "name": "t",
  "rules": [
    {"name": "a", "kind": "network", "port": [25], "action": "allow", "errno": "EPERM"}
  ]
}"#,
        5,
        71,
        "`errno` only applies to rules whose action is `deny`",
    );
}

#[test]
fn matcher_of_other_kind() {
    rejects(
        r#"{
  "apiVersion": "ldguard.policy/v1",
  "name": "t",
  "rules": [
    {"name": "a", "kind": "file", "path": ["/etc/**"], "port": [80], "action": "deny"}
  ]
}"#,
        5,
        56,
        "`port` does not apply to `file` rules",
    );
}

#[test]
fn missing_api_version() {
    rejects(
        r#"{
  "name": "t"
}"#,
        1,
        1,
        "missing field `apiVersion`",
    );
}

#[test]
fn missing_name() {
    rejects(
        r#"{
  "apiVersion": "ldguard.policy/v1"
}"#,
        1,
        1,
        "missing field `name`",
    );
}

#[test]
fn no_matcher() {
    rejects(
        r#"{
  "apiVersion": "ldguard.policy/v1",
  "name": "t",
  "rules": [
    {"name": "a", "kind": "exec", "action": "deny"}
  ]
}"#,
        5,
        5,
        "rule `a` has no matcher, so it would match every `exec` operation",
    );
}

#[test]
fn non_syscall_call() {
    rejects(
        r#"{
  "apiVersion": "ldguard.policy/v1",
  "name": "t",
  "rules": [
    {"name": "a", "kind": "syscall", "call": ["open"], "action": "deny"}
  ]
}"#,
        5,
        47,
        "`open` is not a syscall-kind call",
    );
}

#[test]
fn not_an_address() {
    rejects(
        r#"{
  "apiVersion": "ldguard.policy/v1",
  "name": "t",
  "rules": [
    {"name": "a", "kind": "network", "address": ["metadata.internal"], "action": "deny"}
  ]
}"#,
        5,
        51,
        "bad CIDR `metadata.internal` in `address`: `metadata.internal` is not an IPv4 or IPv6 address",
    );
}

#[test]
fn port_out_of_range() {
    rejects(
        r#"{
  "apiVersion": "ldguard.policy/v1",
  "name": "t",
  "rules": [
    {"name": "a", "kind": "network", "port": [70000], "action": "deny"}
  ]
}"#,
        5,
        47,
        "bad port `70000`: not a port number (0-65535)",
    );
}

#[test]
fn relative_glob() {
    rejects(
        r#"{
  "apiVersion": "ldguard.policy/v1",
  "name": "t",
  "rules": [
    {"name": "a", "kind": "exec", "path": ["bin/sh"], "action": "deny"}
  ]
}"#,
        5,
        45,
        "bad glob `bin/sh` in `path`: path glob must be absolute (start with `/`) or start with `**`",
    );
}

#[test]
fn reversed_port_range() {
    rejects(
        r#"{
  "apiVersion": "ldguard.policy/v1",
  "name": "t",
  "rules": [
    {"name": "a", "kind": "network", "port": ["9000-8000"], "action": "deny"}
  ]
}"#,
        5,
        48,
        "bad port range `9000-8000`: the range is empty: 9000 is greater than 8000",
    );
}

#[test]
fn rule_field_at_top_level() {
    rejects(
        r#"{
  "apiVersion": "ldguard.policy/v1",
  "name": "t",
  "path": ["/bin/sh"]
}"#,
        4,
        3,
        "unknown field `path` in the policy",
    );
}

#[test]
fn trailing_comma() {
    rejects(
        r#"{
  "apiVersion": "ldguard.policy/v1",
  "name": "t",
  "rules": [
    {"name": "a", "kind": "exec", "path": ["/bin/sh"], "action": "deny"},
  ]
}"#,
        6,
        3,
        "expected a value, found `]`",
    );
}

#[test]
fn trailing_slash_glob() {
    rejects(
        r#"{
  "apiVersion": "ldguard.policy/v1",
  "name": "t",
  "rules": [
    {"name": "a", "kind": "file", "path": ["/etc/"], "action": "deny"}
  ]
}"#,
        5,
        49,
        "bad glob `/etc/` in `path`: glob ends with `/`, but normalised paths never do",
    );
}

#[test]
fn unix_with_port() {
    rejects(
        r#"{
  "apiVersion": "ldguard.policy/v1",
  "name": "t",
  "rules": [
    {"name": "a", "kind": "network", "unix": ["/run/x.sock"], "port": [80], "action": "deny"}
  ]
}"#,
        5,
        38,
        "`unix` and `port` can never match together",
    );
}

#[test]
fn unknown_access() {
    rejects(
        r#"{
  "apiVersion": "ldguard.policy/v1",
  "name": "t",
  "rules": [
    {"name": "a", "kind": "file", "access": ["exec"], "action": "deny"}
  ]
}"#,
        5,
        46,
        "unknown access `exec`",
    );
}

#[test]
fn unknown_action() {
    rejects(
        r#"{
  "apiVersion": "ldguard.policy/v1",
  "name": "t",
  "rules": [
    {"name": "a", "kind": "exec", "path": ["/bin/sh"], "action": "block"}
  ]
}"#,
        5,
        66,
        "unknown action `block`",
    );
}

#[test]
fn unknown_default_kind() {
    rejects(
        r#"{
  "apiVersion": "ldguard.policy/v1",
  "name": "t",
  "defaults": {"files": "deny"}
}"#,
        4,
        16,
        "unknown field `files` in `defaults`",
    );
}

#[test]
fn unknown_direction() {
    rejects(
        r#"{
  "apiVersion": "ldguard.policy/v1",
  "name": "t",
  "rules": [
    {"name": "a", "kind": "network", "direction": "egress", "action": "deny"}
  ]
}"#,
        5,
        51,
        "unknown direction `egress`",
    );
}

#[test]
fn unknown_errno() {
    rejects(
        r#"{
  "apiVersion": "ldguard.policy/v1",
  "name": "t",
  "rules": [
    {"name": "a", "kind": "network", "port": [25], "action": "deny", "errno": "ECONREFUSED"}
  ]
}"#,
        5,
        79,
        "unknown errno `ECONREFUSED`",
    );
}

#[test]
fn unknown_ignore_call() {
    rejects(
        r#"{
  "apiVersion": "ldguard.policy/v1",
  "name": "t",
  "ignore": ["opendri"]
}"#,
        4,
        14,
        "unknown call `opendri`",
    );
}

#[test]
fn unknown_kind() {
    rejects(
        r#"{
  "apiVersion": "ldguard.policy/v1",
  "name": "t",
  "rules": [
    {"name": "a", "kind": "exe", "path": ["/bin/sh"], "action": "deny"}
  ]
}"#,
        5,
        27,
        "unknown kind `exe`",
    );
}

#[test]
fn unknown_log_class() {
    rejects(
        r#"{
  "apiVersion": "ldguard.policy/v1",
  "name": "t",
  "log": ["deny", "kill"]
}"#,
        4,
        19,
        "unknown log outcome `kill`",
    );
}

#[test]
fn unknown_mode() {
    rejects(
        r#"{
  "apiVersion": "ldguard.policy/v1",
  "name": "t",
  "mode": "enforcing"
}"#,
        4,
        11,
        "unknown mode `enforcing`",
    );
}

#[test]
fn unknown_policy_field() {
    rejects(
        r#"{
  "apiVersion": "ldguard.policy/v1",
  "name": "t",
  "mdoe": "enforce",
  "rules": [{"name": "a", "kind": "exec", "path": "/bin/sh", "action": "deny"}]
}"#,
        4,
        3,
        "unknown field `mdoe` in the policy",
    );
}

#[test]
fn unknown_protocol() {
    rejects(
        r#"{
  "apiVersion": "ldguard.policy/v1",
  "name": "t",
  "rules": [
    {"name": "a", "kind": "network", "protocol": ["icmp"], "action": "deny"}
  ]
}"#,
        5,
        51,
        "unknown protocol `icmp`",
    );
}

#[test]
fn unknown_rule_field() {
    rejects(
        r#"{
  "apiVersion": "ldguard.policy/v1",
  "name": "t",
  "rules": [
    {"name": "a", "kind": "file", "acess": ["write"], "path": ["/etc/**"], "action": "deny"}
  ]
}"#,
        5,
        35,
        "unknown field `acess` in rule",
    );
}

#[test]
fn unknown_severity() {
    rejects(
        r#"{
  "apiVersion": "ldguard.policy/v1",
  "name": "t",
  "rules": [
    {"name": "a", "kind": "exec", "path": ["/bin/sh"], "action": "deny", "severity": "severe"}
  ]
}"#,
        5,
        86,
        "unknown severity `severe`",
    );
}

#[test]
fn wrong_api_version() {
    rejects(
        r#"{
  "apiVersion": "ldguard.policy/v2",
  "name": "t"
}"#,
        2,
        17,
        "unsupported apiVersion `ldguard.policy/v2`",
    );
}

#[test]
fn rendering_shows_the_line_a_caret_expected_and_hint() {
    let rendered = rejects(
        "{\n  \"apiVersion\": \"ldguard.policy/v1\",\n  \"name\": \"t\",\n  \"rules\": [\n    {\"name\": \"a\", \"kind\": \"file\", \"acess\": [\"write\"], \"path\": [\"/etc/**\"], \"action\": \"deny\"}\n  ]\n}",
        5,
        35,
        "unknown field `acess` in rule",
    );
    let expected = "p.json:5:35: unknown field `acess` in rule
  |
5 |     {\"name\": \"a\", \"kind\": \"file\", \"acess\": [\"write\"], \"path\": [\"/etc/**\"], \"action\": \"deny\"}
  |                                   ^^^^^^^
  = expected: one of `name`, `kind`, `action`, `enabled`, `severity`, `errno`, `description`, `program`, `path`, `access`, `direction`, `address`, `port`, `protocol`, `unix`, `host` or `call`
  = hint: did you mean `access`?
";
    assert_eq!(rendered, expected);
}

#[test]
fn every_problem_is_reported_in_source_order() {
    let text = r#"{
  "apiVersion": "ldguard.policy/v1",
  "name": "t",
  "mode": "strict",
  "rules": [
    {"name": "a", "kind": "exec", "path": ["bin/sh"], "action": "deny"},
    {"name": "b", "kind": "network", "port": ["80-"], "action": "deny", "colour": "red"}
  ]
}"#;
    let (policy, diags) = check_str(text, "p.json");
    assert!(policy.is_none());
    let got: Vec<(usize, usize)> = diags.iter().map(|d| (d.line, d.col)).collect();
    // `80-` is missing its upper bound: the caret sits where it should be.
    assert_eq!(got, vec![(4, 11), (6, 45), (7, 51), (7, 73)]);
    assert_eq!(diags.0[3].message, "unknown field `colour` in rule");
}

#[test]
fn escaped_strings_point_at_the_whole_string() {
    // With an escape the inner offset no longer maps to a column, so the
    // whole string is the span.
    rejects(
        "{\"apiVersion\": \"ldguard.policy/v1\", \"name\": \"t\", \"rules\": [{\"name\": \"a\", \"kind\": \"exec\", \"path\": [\"\\u0062in/sh\"], \"action\": \"deny\"}]}",
        1,
        99,
        "bad glob `bin/sh` in `path`: path glob must be absolute (start with `/`) or start with `**`",
    );
}

#[test]
fn valid_policies_have_no_diagnostics() {
    let (policy, diags) = check_str(
        r#"{"apiVersion": "ldguard.policy/v1", "name": "t",
            "rules": [{"name": "a", "kind": "exec", "path": "/bin/sh", "action": "deny"}]}"#,
        "p.json",
    );
    assert!(policy.is_some());
    assert!(diags.is_empty(), "{diags}");
}

#[test]
fn multibyte_characters_at_an_error_render_whole() {
    // Found by the fuzzer: a one-byte span at a two-byte character.
    let rendered = rejects(
        "{\"apiVersion\": \"ldguard.policy/v1\", \"name\": \"t\", \"rules\": [{\"name\": \"a\", \"kind\": \"exec\", \"path\": [\"ԝbin\"], \"action\": \"deny\"}]}",
        1,
        100,
        "bad glob `ԝbin` in `path`: path glob must be absolute (start with `/`) or start with `**`",
    );
    assert!(rendered.contains("\n  |"), "{rendered}");
}
