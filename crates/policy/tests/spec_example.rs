//! The docs/policy.md example policy, decided end to end.

use ldguard_policy::{
    compile_str, Access, Action, Call, Direction, Kind, Mode, Protocol, Request, Severity,
};

pub const SPEC_EXAMPLE: &str = r#"{
  "apiVersion": "ldguard.policy/v1",
  "name": "web",
  "mode": "enforce",
  "log": ["deny", "audit"],
  "defaults": {"file": "allow", "exec": "allow", "network": "allow", "syscall": "allow"},
  "ignore": ["opendir"],
  "rules": [
    {"name": "no-shell-from-nginx", "kind": "exec", "program": ["/usr/sbin/nginx"],
     "path": ["/bin/sh", "/usr/bin/*sh"], "action": "deny", "severity": "high"},
    {"name": "etc-read-only", "kind": "file", "access": ["write"], "path": ["/etc/**"], "action": "deny"},
    {"name": "cloud-metadata", "kind": "network", "direction": "outbound",
     "address": ["169.254.169.254/32", "fd00:ec2::254/128"], "port": ["80", "443"], "action": "deny"},
    {"name": "docker-socket", "kind": "network", "direction": "outbound", "unix": ["/var/run/docker.sock"], "action": "deny"},
    {"name": "listen-8080-only", "kind": "network", "direction": "listen", "port": ["1-8079", "8081-65535"], "action": "deny"},
    {"name": "no-debuggers", "kind": "syscall", "call": ["ptrace", "mount", "unshare", "setns"], "action": "deny", "enabled": true}
  ]
}"#;

const NGINX: &[u8] = b"/usr/sbin/nginx";

#[test]
fn spec_example_decides_as_documented() {
    let table = compile_str(SPEC_EXAMPLE, "web.json").unwrap();
    assert_eq!(table.mode(), Mode::Enforce);
    assert_eq!(table.name(), "web");
    for t in [table.clone(), table.for_program(NGINX)] {
        let sh = Request {
            path: Some(b"/bin/sh"),
            ..Request::new(Kind::Exec, Call::Execve, NGINX)
        };
        let d = t.decide(&sh);
        assert_eq!(
            (d.action, d.rule, d.severity, d.errno, d.log),
            (Action::Deny, Some(0), Severity::High, 13, true)
        );
        assert_eq!(t.rule_name(0), "no-shell-from-nginx");
        let bash = Request {
            path: Some(b"/usr/bin/bash"),
            ..sh
        };
        assert_eq!(t.decide(&bash).rule, Some(0));
        let ls = Request {
            path: Some(b"/usr/bin/ls"),
            ..sh
        };
        let d = t.decide(&ls);
        assert_eq!((d.action, d.rule, d.log), (Action::Allow, None, false));

        let write_etc = Request {
            path: Some(b"/etc/passwd"),
            access: Access::Write,
            ..Request::new(Kind::File, Call::Openat, NGINX)
        };
        assert_eq!(t.decide(&write_etc).rule, Some(1));
        let read_etc = Request {
            access: Access::Read,
            ..write_etc
        };
        assert_eq!(t.decide(&read_etc).action, Action::Allow);

        let metadata = Request {
            address: Some("169.254.169.254".parse().unwrap()),
            port: Some(80),
            protocol: Some(Protocol::Tcp),
            ..Request::new(Kind::Network, Call::Connect, NGINX)
        };
        let d = t.decide(&metadata);
        assert_eq!((d.action, d.rule, d.errno), (Action::Deny, Some(2), 1));
        let listen = Request {
            direction: Direction::Listen,
            address: Some("0.0.0.0".parse().unwrap()),
            port: Some(8080),
            ..metadata
        };
        assert_eq!(t.decide(&listen).action, Action::Allow);
        let listen_80 = Request {
            port: Some(80),
            ..listen
        };
        assert_eq!(t.decide(&listen_80).rule, Some(4));

        let ptrace = Request::new(Kind::Syscall, Call::Ptrace, NGINX);
        assert_eq!(t.decide(&ptrace).rule, Some(5));
    }
    // Other programs may run shells.
    let sh = Request {
        path: Some(b"/bin/sh"),
        ..Request::new(Kind::Exec, Call::Execve, b"/usr/bin/python3")
    };
    assert_eq!(table.decide(&sh).action, Action::Allow);
    assert_eq!(
        table.for_program(b"/usr/bin/python3").decide(&sh).action,
        Action::Allow
    );
}
