//! Semantics of `decide`, field by field (docs/policy.md).

use ldguard_policy::{
    compile_str, Access, Action, Call, Direction, Kind, LogClass, Mode, Protocol, Request,
    RuleTable, Severity,
};
use serde_json::{json, Value};

const APP: &[u8] = b"/usr/bin/app";

fn table(extra: Value) -> RuleTable {
    let mut doc = json!({"apiVersion": "ldguard.policy/v1", "name": "t"});
    for (k, v) in extra.as_object().unwrap() {
        doc[k] = v.clone();
    }
    let text = serde_json::to_string_pretty(&doc).unwrap();
    compile_str(&text, "t.json").unwrap_or_else(|d| panic!("{}", d.render(&text)))
}

fn rules(rules: Value) -> RuleTable {
    table(json!({ "rules": rules }))
}

fn file(path: &'static [u8], access: Access) -> Request<'static> {
    Request {
        path: Some(path),
        access,
        ..Request::new(Kind::File, Call::Openat, APP)
    }
}

fn exec(path: &'static [u8]) -> Request<'static> {
    Request {
        path: Some(path),
        ..Request::new(Kind::Exec, Call::Execve, APP)
    }
}

fn connect(addr: &str, port: u16) -> Request<'static> {
    Request {
        address: Some(addr.parse().unwrap()),
        port: Some(port),
        protocol: Some(Protocol::Tcp),
        ..Request::new(Kind::Network, Call::Connect, APP)
    }
}

/// The deciding rule's name, or "default".
fn by(t: &RuleTable, req: &Request<'_>) -> String {
    let d = t.decide(req);
    let s = d
        .rule
        .map_or("default".to_string(), |i| t.rule_name(i).to_string());
    // The specialised table must always agree.
    assert_eq!(
        t.for_program(req.program).decide(req),
        d,
        "for_program disagrees on {req:?}"
    );
    s
}

#[test]
fn first_enabled_matching_rule_in_document_order_decides() {
    let t = rules(json!([
        {"name": "off", "kind": "exec", "path": "/bin/sh", "action": "kill", "enabled": false},
        {"name": "allow-sh", "kind": "exec", "path": "/bin/sh", "action": "allow"},
        {"name": "deny-bin", "kind": "exec", "path": "/bin/*", "action": "deny"},
        {"name": "deny-sh", "kind": "exec", "path": "/bin/sh", "action": "deny"},
    ]));
    assert_eq!(by(&t, &exec(b"/bin/sh")), "allow-sh");
    assert_eq!(by(&t, &exec(b"/bin/ls")), "deny-bin");
    assert_eq!(by(&t, &exec(b"/usr/bin/ls")), "default");
    // Order matters, not specificity.
    let t = rules(json!([
        {"name": "broad", "kind": "file", "path": "/etc/**", "action": "deny"},
        {"name": "narrow", "kind": "file", "path": "/etc/hosts", "action": "allow"},
    ]));
    assert_eq!(by(&t, &file(b"/etc/hosts", Access::Read)), "broad");
}

#[test]
fn disabled_rules_are_skipped() {
    let t = rules(
        json!([{"name": "off", "kind": "syscall", "call": "ptrace", "action": "deny", "enabled": false}]),
    );
    let d = t.decide(&Request::new(Kind::Syscall, Call::Ptrace, APP));
    assert_eq!((d.action, d.rule), (Action::Allow, None));
}

#[test]
fn defaults_apply_per_kind_and_default_to_allow() {
    let t = table(json!({"defaults": {"exec": "deny", "syscall": "kill"}}));
    assert_eq!(t.decide(&exec(b"/bin/sh")).action, Action::Deny);
    assert_eq!(t.decide(&file(b"/x", Access::Write)).action, Action::Allow);
    assert_eq!(t.decide(&connect("1.2.3.4", 1)).action, Action::Allow);
    let d = t.decide(&Request::new(Kind::Syscall, Call::Mount, APP));
    assert_eq!(
        (d.action, d.rule, d.severity, d.errno),
        (Action::Kill, None, Severity::Medium, 1)
    );
    let t = table(json!({"defaults": {"file": "audit", "network": "deny"}}));
    let d = t.decide(&file(b"/x", Access::Read));
    assert_eq!(
        (d.action, d.severity, d.errno, d.log),
        (Action::Audit, Severity::Info, 0, true)
    );
    let d = t.decide(&connect("1.2.3.4", 1));
    assert_eq!((d.action, d.errno), (Action::Deny, 1));
}

#[test]
fn top_level_defaults() {
    let t = table(json!({}));
    assert_eq!(t.mode(), Mode::Enforce);
    assert_eq!(t.name(), "t");
    let log = t.log_classes();
    assert!(log.contains(LogClass::Deny) && log.contains(LogClass::Audit));
    assert!(!log.contains(LogClass::Allow) && !log.behavior());
    assert_eq!(t.policy_description(), None);
    for mode in Mode::ALL {
        assert_eq!(table(json!({"mode": mode.as_str()})).mode(), *mode);
    }
    let t = table(json!({"log": ["behavior"], "description": "d"}));
    assert!(t.log_classes().behavior());
    assert_eq!(t.policy_description(), Some("d"));
}

#[test]
fn errno_defaults_by_kind_and_can_be_named() {
    let t = rules(json!([
        {"name": "f", "kind": "file", "path": "/f", "action": "deny"},
        {"name": "e", "kind": "exec", "path": "/e", "action": "deny"},
        {"name": "n", "kind": "network", "port": 1, "action": "deny"},
        {"name": "r", "kind": "network", "port": 2, "action": "deny", "errno": "ECONNREFUSED"},
        {"name": "s", "kind": "syscall", "call": "bpf", "action": "deny"},
        {"name": "a", "kind": "syscall", "call": "keyctl", "action": "allow"},
    ]));
    assert_eq!(t.decide(&file(b"/f", Access::Read)).errno, 13);
    assert_eq!(t.decide(&exec(b"/e")).errno, 13);
    assert_eq!(t.decide(&connect("1.1.1.1", 1)).errno, 1);
    assert_eq!(t.decide(&connect("1.1.1.1", 2)).errno, 111);
    assert_eq!(
        t.decide(&Request::new(Kind::Syscall, Call::Bpf, APP)).errno,
        1
    );
    assert_eq!(
        t.decide(&Request::new(Kind::Syscall, Call::Keyctl, APP))
            .errno,
        0
    );
}

#[test]
fn every_action_and_severity() {
    for action in Action::ALL {
        for severity in Severity::ALL {
            let t = rules(
                json!([{"name": "r", "kind": "exec", "path": "/x", "action": action.as_str(), "severity": severity.as_str()}]),
            );
            let d = t.decide(&exec(b"/x"));
            assert_eq!(
                (d.action, d.severity, d.rule),
                (*action, *severity, Some(0))
            );
            assert_eq!(
                d.action.blocks(),
                matches!(action, Action::Deny | Action::Kill)
            );
        }
    }
    let t = rules(json!([{"name": "r", "kind": "exec", "path": "/x", "action": "deny"}]));
    assert_eq!(t.decide(&exec(b"/x")).severity, Severity::Medium);
}

#[test]
fn log_selects_outcomes_and_deny_covers_kill() {
    let doc = |log: Value| {
        table(json!({"log": log, "rules": [
            {"name": "a", "kind": "exec", "path": "/allow", "action": "allow"},
            {"name": "u", "kind": "exec", "path": "/audit", "action": "audit"},
            {"name": "d", "kind": "exec", "path": "/deny", "action": "deny"},
            {"name": "k", "kind": "exec", "path": "/kill", "action": "kill"},
        ]}))
    };
    let logged = |t: &RuleTable| -> Vec<bool> {
        [&b"/allow"[..], b"/audit", b"/deny", b"/kill", b"/other"]
            .iter()
            .map(|p| {
                t.decide(&Request {
                    path: Some(p),
                    ..exec(b"/")
                })
                .log
            })
            .collect()
    };
    assert_eq!(
        logged(&doc(json!(["deny", "audit"]))),
        [false, true, true, true, false]
    );
    assert_eq!(
        logged(&doc(json!(["deny"]))),
        [false, false, true, true, false]
    );
    assert_eq!(
        logged(&doc(json!(["allow"]))),
        [true, false, false, false, true]
    );
    assert_eq!(logged(&doc(json!([]))), [false; 5]);
    assert_eq!(
        logged(&doc(json!(["allow", "audit", "deny", "behavior"]))),
        [true; 5]
    );
}

#[test]
fn ignore_suppresses_events_but_not_decisions() {
    let t = table(json!({"ignore": ["opendir", "execvp"], "rules": [
        {"name": "d", "kind": "file", "path": "/secret/**", "action": "deny"},
        {"name": "e", "kind": "exec", "path": "/bin/sh", "action": "deny"},
    ]}));
    let opendir = Request {
        call: Call::Opendir,
        ..file(b"/secret/x", Access::Read)
    };
    let d = t.decide(&opendir);
    assert_eq!((d.action, d.log), (Action::Deny, false));
    assert!(t.decide(&file(b"/secret/x", Access::Read)).log);
    let execvp = Request {
        call: Call::Execvp,
        ..exec(b"/bin/sh")
    };
    assert_eq!(
        (t.decide(&execvp).action, t.decide(&execvp).log),
        (Action::Deny, false)
    );
    assert!(
        t.is_ignored(Call::Opendir) && t.is_ignored(Call::Execvp) && !t.is_ignored(Call::Execve)
    );
}

#[test]
fn program_globs_select_the_calling_executable() {
    let t = rules(json!([
        {"name": "nginx", "kind": "exec", "program": ["/usr/sbin/nginx"], "path": "/bin/sh", "action": "deny"},
        {"name": "pythons", "kind": "exec", "program": "/usr/bin/python3*", "action": "audit"},
    ]));
    let sh = |program: &'static [u8]| Request {
        program,
        ..exec(b"/bin/sh")
    };
    assert_eq!(by(&t, &sh(b"/usr/sbin/nginx")), "nginx");
    assert_eq!(by(&t, &sh(b"/usr/bin/python3.11")), "pythons");
    assert_eq!(by(&t, &sh(b"/usr/bin/python2")), "default");
    let specialised = t.for_program(b"/usr/sbin/nginx");
    assert_eq!(specialised.program(), Some(&b"/usr/sbin/nginx"[..]));
    assert_eq!(specialised.rule_name(1), "pythons");
}

#[test]
fn file_access_read_and_write() {
    let t = rules(json!([
        {"name": "w", "kind": "file", "access": ["write"], "path": "/etc/**", "action": "deny"},
        {"name": "r", "kind": "file", "access": "read", "path": "/etc/shadow", "action": "audit"},
        {"name": "rw", "kind": "file", "access": ["read", "write"], "path": "/secret", "action": "deny"},
        {"name": "any", "kind": "file", "path": "/any", "action": "deny"},
    ]));
    assert_eq!(by(&t, &file(b"/etc/passwd", Access::Write)), "w");
    assert_eq!(by(&t, &file(b"/etc/passwd", Access::Read)), "default");
    assert_eq!(by(&t, &file(b"/etc/shadow", Access::Read)), "r");
    assert_eq!(by(&t, &file(b"/secret", Access::Read)), "rw");
    assert_eq!(by(&t, &file(b"/secret", Access::Write)), "rw");
    assert_eq!(by(&t, &file(b"/any", Access::Read)), "any");
    assert_eq!(by(&t, &file(b"/any", Access::Write)), "any");
}

#[test]
fn path_rules_match_the_path_or_its_resolved_target() {
    let t = rules(json!([
        {"name": "dash", "kind": "exec", "path": "/usr/bin/dash", "action": "deny"},
        {"name": "etc", "kind": "file", "path": "/etc/**", "access": "write", "action": "deny"},
    ]));
    let via_link = Request {
        resolved_path: Some(b"/usr/bin/dash"),
        ..exec(b"/bin/sh")
    };
    assert_eq!(by(&t, &via_link), "dash");
    assert_eq!(by(&t, &exec(b"/bin/sh")), "default");
    let link_into_etc = Request {
        resolved_path: Some(b"/etc/cron.d/x"),
        ..file(b"/tmp/link", Access::Write)
    };
    assert_eq!(by(&t, &link_into_etc), "etc");
    // A request without any path matches only rules without `path`.
    assert_eq!(
        by(&t, &Request::new(Kind::Exec, Call::Execve, APP)),
        "default"
    );
}

#[test]
fn glob_shapes_in_the_index() {
    let t = rules(json!([
        {"name": "literal", "kind": "file", "path": "/a/b", "action": "deny"},
        {"name": "subtree", "kind": "file", "path": "/s/**", "action": "deny"},
        {"name": "children", "kind": "file", "path": "/c/*", "action": "deny"},
        {"name": "suffix", "kind": "file", "path": "**/.aws/credentials", "action": "deny"},
        {"name": "basename", "kind": "file", "path": "**/miner*", "action": "deny"},
        {"name": "contains", "kind": "file", "path": "**/ab/a/**", "action": "deny"},
        {"name": "general", "kind": "file", "path": "/g/**/x?.conf", "action": "deny"},
        {"name": "root", "kind": "file", "path": "/", "action": "audit"},
    ]));
    let cases: &[(&[u8], &str)] = &[
        (b"/a/b", "literal"),
        (b"/a/bc", "default"),
        (b"/a", "default"),
        (b"/s", "subtree"),
        (b"/s/x/y", "subtree"),
        (b"/sx", "default"),
        (b"/c/x", "children"),
        (b"/c/x/y", "default"),
        (b"/c", "default"),
        (b"/home/u/.aws/credentials", "suffix"),
        (b"/.aws/credentials", "suffix"),
        (b"/home/u/x.aws/credentials", "default"),
        (b"/tmp/miner", "basename"),
        (b"/minerd", "basename"),
        (b"/miner/x", "default"),
        (b"/x/ab/ab/a", "contains"),
        (b"/ab/a", "contains"),
        (b"/x/ab/ax", "default"),
        (b"/x/cab/a/y", "default"),
        (b"/g/x1.conf", "general"),
        (b"/g/p/q/xy.conf", "general"),
        (b"/g/x12.conf", "default"),
        (b"/", "root"),
    ];
    for (path, want) in cases {
        assert_eq!(
            by(&t, &file(path, Access::Read)),
            *want,
            "{}",
            String::from_utf8_lossy(path)
        );
    }
}

#[test]
fn network_directions() {
    let t = rules(json!([
        {"name": "out", "kind": "network", "direction": "outbound", "port": 25, "action": "deny"},
        {"name": "in", "kind": "network", "direction": ["inbound"], "address": "10.99.0.0/16", "action": "audit"},
        {"name": "listen", "kind": "network", "direction": "listen", "port": ["1-8079", "8081-65535"], "action": "deny"},
    ]));
    assert_eq!(by(&t, &connect("1.2.3.4", 25)), "out");
    let listen = |port| Request {
        direction: Direction::Listen,
        call: Call::Bind,
        ..connect("0.0.0.0", port)
    };
    assert_eq!(by(&t, &listen(25)), "listen");
    assert_eq!(by(&t, &listen(8080)), "default");
    assert_eq!(by(&t, &listen(0)), "default");
    let inbound = Request {
        direction: Direction::Inbound,
        call: Call::Accept,
        ..connect("10.99.1.2", 51234)
    };
    assert_eq!(by(&t, &inbound), "in");
    assert_eq!(
        by(
            &t,
            &Request {
                direction: Direction::Inbound,
                ..connect("1.2.3.4", 25)
            }
        ),
        "default"
    );
}

#[test]
fn network_addresses_v4_v6_and_mapped() {
    let t = rules(json!([
        {"name": "meta", "kind": "network", "address": ["169.254.169.254/32", "fd00:ec2::254"], "action": "deny"},
        {"name": "private", "kind": "network", "address": ["10.0.0.0/8", "fc00::/7"], "action": "deny"},
        {"name": "mapped-rule", "kind": "network", "address": "::ffff:192.168.0.0/112", "action": "deny"},
        {"name": "v6", "kind": "network", "address": "2001:db8::/32", "action": "audit"},
    ]));
    assert_eq!(by(&t, &connect("169.254.169.254", 80)), "meta");
    assert_eq!(by(&t, &connect("::ffff:169.254.169.254", 80)), "meta");
    assert_eq!(by(&t, &connect("fd00:ec2::254", 80)), "meta");
    assert_eq!(by(&t, &connect("10.255.255.255", 1)), "private");
    assert_eq!(by(&t, &connect("::ffff:10.0.0.1", 1)), "private");
    assert_eq!(by(&t, &connect("fd12::1", 1)), "private");
    assert_eq!(by(&t, &connect("192.168.4.4", 1)), "mapped-rule");
    assert_eq!(by(&t, &connect("2001:db8:1::1", 1)), "v6");
    assert_eq!(by(&t, &connect("11.0.0.0", 1)), "default");
    assert_eq!(by(&t, &connect("::1", 1)), "default");
    // No address in the request: address rules do not match.
    let unix = Request {
        unix: Some(b"/run/x.sock"),
        ..Request::new(Kind::Network, Call::Connect, APP)
    };
    assert_eq!(by(&t, &unix), "default");
}

#[test]
fn network_ports_protocols_unix_and_hosts() {
    let t = rules(json!([
        {"name": "udp-dns", "kind": "network", "port": 53, "protocol": "udp", "action": "allow"},
        {"name": "all-dns", "kind": "network", "port": [53, "853"], "action": "deny"},
        {"name": "range", "kind": "network", "port": ["6660-6669"], "protocol": ["tcp"], "action": "deny"},
        {"name": "docker", "kind": "network", "unix": ["/var/run/docker.sock", "@docker-*"], "action": "deny"},
        {"name": "ngrok", "kind": "network", "host": ["*.ngrok.io"], "action": "deny"},
        {"name": "deep", "kind": "network", "host": "**.evil.net", "port": 443, "action": "kill"},
    ]));
    let udp = |port| Request {
        protocol: Some(Protocol::Udp),
        call: Call::Sendto,
        ..connect("9.9.9.9", port)
    };
    assert_eq!(by(&t, &udp(53)), "udp-dns");
    assert_eq!(by(&t, &connect("9.9.9.9", 53)), "all-dns");
    assert_eq!(by(&t, &connect("9.9.9.9", 853)), "all-dns");
    assert_eq!(by(&t, &connect("9.9.9.9", 6665)), "range");
    assert_eq!(by(&t, &udp(6665)), "default");
    assert_eq!(
        by(
            &t,
            &Request {
                protocol: None,
                ..connect("9.9.9.9", 6665)
            }
        ),
        "default"
    );
    assert_eq!(by(&t, &connect("9.9.9.9", 6670)), "default");
    let unix = |p: &'static [u8]| Request {
        unix: Some(p),
        ..Request::new(Kind::Network, Call::Connect, APP)
    };
    assert_eq!(by(&t, &unix(b"/var/run/docker.sock")), "docker");
    assert_eq!(by(&t, &unix(b"@docker-1")), "docker");
    assert_eq!(by(&t, &unix(b"/run/other.sock")), "default");
    let host = |h: &'static str, port| Request {
        host: Some(h),
        ..connect("3.3.3.3", port)
    };
    assert_eq!(by(&t, &host("abc.ngrok.io", 80)), "ngrok");
    assert_eq!(by(&t, &host("ABC.NGROK.IO.", 80)), "ngrok");
    assert_eq!(by(&t, &host("ngrok.io", 80)), "default");
    assert_eq!(by(&t, &host("a.b.evil.net", 443)), "deep");
    assert_eq!(by(&t, &host("evil.net", 443)), "deep");
    assert_eq!(by(&t, &host("evil.net", 80)), "default");
    assert_eq!(by(&t, &connect("3.3.3.3", 443)), "default");
}

#[test]
fn syscall_calls() {
    let t = rules(json!([
        {"name": "debug", "kind": "syscall", "call": ["ptrace"], "action": "deny"},
        {"name": "escape", "kind": "syscall", "call": ["mount", "unshare", "setns", "ptrace"], "action": "kill"},
    ]));
    let sys = |call| Request::new(Kind::Syscall, call, APP);
    assert_eq!(by(&t, &sys(Call::Ptrace)), "debug");
    assert_eq!(by(&t, &sys(Call::Setns)), "escape");
    assert_eq!(by(&t, &sys(Call::Setuid)), "default");
}

#[test]
fn rule_metadata_accessors() {
    let t = table(json!({"description": "policy text", "rules": [
        {"name": "one", "description": "first", "kind": "exec", "path": "/x", "action": "deny"},
        {"name": "two", "kind": "exec", "path": "/y", "action": "deny"},
    ]}));
    assert_eq!(
        (t.rule_name(0), t.rule_name(1), t.rule_name(9)),
        ("one", "two", "")
    );
    assert_eq!(
        (
            t.rule_description(0),
            t.rule_description(1),
            t.rule_description(9)
        ),
        (Some("first"), None, None)
    );
    assert_eq!(t.rule_count(), 2);
    assert_eq!(t.policy_description(), Some("policy text"));
}

#[test]
fn needs_resolution_only_when_a_path_rule_could_decide_differently() {
    // No path rules at all.
    let t = rules(json!([{"name": "s", "kind": "syscall", "call": "bpf", "action": "deny"}]));
    assert!(!t.needs_resolution(Kind::File, Access::Read));
    assert!(!t.needs_resolution(Kind::Exec, Access::Read));
    assert!(!t.needs_resolution(Kind::Syscall, Access::Read));
    // A deny on writes: only file writes need resolution.
    let t = rules(
        json!([{"name": "w", "kind": "file", "access": "write", "path": "/etc/**", "action": "deny"}]),
    );
    assert!(t.needs_resolution(Kind::File, Access::Write));
    assert!(!t.needs_resolution(Kind::File, Access::Read));
    // Only allow rules, allow default, allow not logged: nothing observable changes.
    let t = rules(json!([{"name": "a", "kind": "exec", "path": "/bin/*", "action": "allow"}]));
    assert!(!t.needs_resolution(Kind::Exec, Access::Read));
    // ... unless allowed outcomes are logged (the rule name would differ),
    let t = table(
        json!({"log": ["allow"], "rules": [{"name": "a", "kind": "exec", "path": "/bin/*", "action": "allow"}]}),
    );
    assert!(t.needs_resolution(Kind::Exec, Access::Read));
    // ... or the default is not allow.
    let t = table(
        json!({"defaults": {"exec": "deny"}, "rules": [{"name": "a", "kind": "exec", "path": "/bin/*", "action": "allow"}]}),
    );
    assert!(t.needs_resolution(Kind::Exec, Access::Read));
    // A catch-all rule before every path rule shadows them.
    let t = rules(json!([
        {"name": "all", "kind": "exec", "program": "/usr/bin/app", "action": "allow"},
        {"name": "sh", "kind": "exec", "path": "/bin/sh", "action": "deny"},
    ]));
    assert!(
        t.needs_resolution(Kind::Exec, Access::Read),
        "unspecialised: `all` depends on the program"
    );
    assert!(!t
        .for_program(APP)
        .needs_resolution(Kind::Exec, Access::Read));
    assert!(t
        .for_program(b"/bin/other")
        .needs_resolution(Kind::Exec, Access::Read));
    // Unix socket rules make network resolution worthwhile.
    let t = rules(
        json!([{"name": "d", "kind": "network", "unix": "/run/docker.sock", "action": "deny"}]),
    );
    assert!(t.needs_resolution(Kind::Network, Access::Read));
}

#[test]
fn tables_are_shareable_across_threads() {
    let t = std::sync::Arc::new(rules(
        json!([{"name": "d", "kind": "exec", "path": "/bin/sh", "action": "deny"}]),
    ));
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let t = t.clone();
            std::thread::spawn(move || {
                (0..1000).all(|_| t.decide(&exec(b"/bin/sh")).action == Action::Deny)
            })
        })
        .collect();
    assert!(handles.into_iter().all(|h| h.join().unwrap()));
}

#[test]
fn crowded_interval_tables_are_searched_exactly() {
    // 60 port rules and 60 address rules whose boundaries crowd a few
    // top-byte buckets, so lookups take the in-bucket binary search.
    let mut list = Vec::new();
    for i in 0..60u16 {
        list.push(json!({"name": format!("p{i}"), "kind": "network", "port": format!("{}-{}", 1000 + 4 * i, 1001 + 4 * i), "action": "deny"}));
    }
    for i in 0..60u16 {
        list.push(json!({"name": format!("a{i}"), "kind": "network", "address": format!("10.0.{}.0/25", 2 * i), "port": 1, "action": "deny"}));
    }
    for i in 0..60u16 {
        list.push(json!({"name": format!("v6-{i}"), "kind": "network", "address": format!("fd00::{:x}00/120", 2 * i + 1), "port": 2, "action": "deny"}));
    }
    let t = rules(Value::Array(list));
    for i in 0..60u16 {
        let p = 1000 + 4 * i;
        assert_eq!(by(&t, &connect("8.8.8.8", p)), format!("p{i}"));
        assert_eq!(by(&t, &connect("8.8.8.8", p + 1)), format!("p{i}"));
        assert_eq!(by(&t, &connect("8.8.8.8", p + 2)), "default");
        assert_eq!(by(&t, &connect("8.8.8.8", p - 1)), "default");
        assert_eq!(
            by(&t, &connect(&format!("10.0.{}.0", 2 * i), 1)),
            format!("a{i}")
        );
        assert_eq!(
            by(&t, &connect(&format!("10.0.{}.127", 2 * i), 1)),
            format!("a{i}")
        );
        assert_eq!(
            by(&t, &connect(&format!("10.0.{}.128", 2 * i), 1)),
            "default"
        );
        assert_eq!(
            by(&t, &connect(&format!("10.0.{}.1", 2 * i + 1), 1)),
            "default"
        );
        assert_eq!(
            by(&t, &connect(&format!("fd00::{:x}ff", 2 * i + 1), 2)),
            format!("v6-{i}")
        );
        assert_eq!(
            by(&t, &connect(&format!("fd00::{:x}00", 2 * i + 2), 2)),
            "default"
        );
    }
    assert_eq!(by(&t, &connect("255.255.255.255", 65535)), "default");
    assert_eq!(by(&t, &connect("0.0.0.0", 0)), "default");
}
