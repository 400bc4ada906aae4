//! `RuleTable::blocking_rule_under`: which deny rule a rename or removal
//! of a directory would move out from under its path.

use ldguard_policy::{compile_str, Action, Call};

fn table(rules: &str) -> ldguard_policy::RuleTable {
    let text = format!(
        r#"{{"apiVersion": "ldguard.policy/v1", "name": "t", "mode": "enforce", "rules": {rules}}}"#
    );
    compile_str(&text, "t.json").unwrap()
}

#[test]
fn finds_the_first_blocking_rule_below_a_directory() {
    let t = table(
        r#"[
        {"name": "allowed", "kind": "file", "path": ["/srv/app/ok/**"], "action": "allow"},
        {"name": "audit", "kind": "file", "path": ["/srv/app/log/**"], "action": "audit"},
        {"name": "ro", "kind": "file", "access": ["write"], "path": ["/srv/app/ro/**"], "action": "deny"},
        {"name": "key", "kind": "file", "path": ["/srv/app/key.pem"], "action": "kill"},
        {"name": "no-id", "kind": "exec", "path": ["/usr/bin/id"], "action": "deny"},
        {"name": "anywhere", "kind": "file", "path": ["**/.aws/credentials"], "action": "deny"},
        {"name": "net", "kind": "network", "unix": ["/run/docker.sock"], "action": "deny"}
    ]"#,
    );
    let under = |d: &str| t.blocking_rule_under(d.as_bytes()).map(|i| t.rule_name(i));
    assert_eq!(under("/srv/app"), Some("ro"));
    assert_eq!(under("/srv"), Some("ro"));
    assert_eq!(under("/"), Some("ro"));
    // Inside the protected tree the rule matches the directory itself: the
    // checks of the directory as an object decide, not this.
    assert_eq!(under("/srv/app/ro"), None);
    assert_eq!(under("/srv/app/ro/sub"), None);
    assert_eq!(under("/srv/app/key.pem"), None);
    assert_eq!(under("/usr"), Some("no-id"));
    assert_eq!(under("/usr/bin"), Some("no-id"));
    // Prefix of a name, not of a directory.
    assert_eq!(under("/sr"), None);
    assert_eq!(under("/srv/ap"), None);
    // Allow and audit rules do not count; a floating glob counts only
    // where its match starts in the directory's own name.
    assert_eq!(under("/srv/app/ok"), None);
    assert_eq!(under("/home/u"), None);
    assert_eq!(under("/home/u/.aws"), Some("anywhere"));
    // A unix socket is reached by its inode: moving its directory moves it
    // out from under the rule's path.
    assert_eq!(under("/run"), Some("net"));
    let d = t.decision_of_rule(t.blocking_rule_under(b"/srv").unwrap(), Call::Rename);
    assert_eq!(d.action, Action::Deny);
    assert_eq!(d.errno, 13, "EACCES");
}

#[test]
fn wildcards_before_the_protected_part_count() {
    let t = table(
        r#"[
        {"name": "keys", "kind": "file", "access": ["read"], "path": ["/home/*/.ssh/**"], "action": "deny"},
        {"name": "listen", "kind": "network", "direction": "listen", "unix": ["/run/l.sock"], "action": "deny"},
        {"name": "abstract", "kind": "network", "unix": ["@hidden"], "action": "deny"},
        {"name": "no-exec-tmp", "kind": "exec", "path": ["/tmp/**"], "action": "deny"}
    ]"#,
    );
    let under = |d: &str| t.blocking_rule_under(d.as_bytes()).map(|i| t.rule_name(i));
    assert_eq!(under("/home/u"), Some("keys"));
    assert_eq!(under("/home"), Some("keys"));
    assert_eq!(under("/home/u/src"), None);
    // Only connecting reaches a socket by its inode; abstract names have
    // no path.
    assert_eq!(under("/run"), None);
    // A rule that covers the directory itself (`/tmp/**` for `/tmp/x`)
    // leaves renames inside /tmp to the object checks.
    assert_eq!(under("/tmp/x"), None);
    assert_eq!(under("/tmp/x/y"), None);
    assert_eq!(under("/"), Some("keys"));
}

#[test]
fn specialised_tables_keep_only_the_program_s_rules() {
    let t = table(
        r#"[
        {"name": "nginx-only", "kind": "file", "program": ["/usr/sbin/nginx"], "path": ["/srv/www/**"], "action": "deny"}
    ]"#,
    );
    assert_eq!(t.blocking_rule_under(b"/srv"), None);
    let nginx = t.for_program(b"/usr/sbin/nginx");
    assert_eq!(nginx.blocking_rule_under(b"/srv"), Some(0));
    assert_eq!(
        t.for_program(b"/usr/bin/cat").blocking_rule_under(b"/srv"),
        None
    );
}
