//! The learner end to end on hand-written events: the policy it writes
//! validates, allows what was seen, denies the rest with a named rule, and
//! stays small.

use ldguard_events::Event;
use ldguard_learn::{Base, Learner, Options, PolicyDoc};
use ldguard_policy::{Access, Action, Call, Direction, Kind, Request, RuleTable};

const PY: &str = "/usr/bin/python3.11";
const SH: &str = "/usr/bin/dash";

fn ev(
    program: &str,
    pid: u32,
    kind: &str,
    call: &str,
    target: &str,
    access: Option<&str>,
) -> Event {
    Event {
        time: "2026-11-23T06:30:00.000000Z".into(),
        pid,
        program: program.into(),
        kind: kind.into(),
        call: call.into(),
        target: Some(target.into()),
        access: access.map(Into::into),
        action: "allow".into(),
        severity: "info".into(),
        mode: "permissive".into(),
        behavior: true,
        ..Event::default()
    }
}

fn workload() -> Vec<Event> {
    let mut v = Vec::new();
    for m in ["os", "re", "json/__init__", "http/server", "socket", "enum"] {
        let p = format!("/usr/lib/python3.11/{m}.py");
        v.push(ev(PY, 10, "file", "openat", &p, Some("read")));
    }
    for p in [
        "/etc/hosts",
        "/etc/mime.types",
        "/proc/10/status",
        "/srv/app/index.html",
    ] {
        v.push(ev(PY, 10, "file", "openat", p, Some("read")));
    }
    v.push(ev(
        PY,
        10,
        "file",
        "openat",
        "/tmp/tmpk3j_2x9a",
        Some("write"),
    ));
    v.push(ev(
        PY,
        10,
        "file",
        "openat",
        "/srv/app/log/access.log",
        Some("write"),
    ));
    v.push(ev(
        PY,
        10,
        "network",
        "bind",
        "127.0.0.1:8000",
        Some("listen"),
    ));
    v.push(ev(
        PY,
        10,
        "network",
        "listen",
        "127.0.0.1:8000",
        Some("listen"),
    ));
    v.push(ev(
        PY,
        10,
        "network",
        "accept4",
        "127.0.0.1:45678",
        Some("inbound"),
    ));
    v.push(ev(
        PY,
        10,
        "network",
        "connect",
        "10.1.2.3:5432",
        Some("outbound"),
    ));
    v.push(ev(
        PY,
        10,
        "network",
        "connect",
        "127.0.0.1:41000",
        Some("outbound"),
    ));
    v.push(ev(
        PY,
        10,
        "network",
        "getaddrinfo",
        "db.internal",
        Some("outbound"),
    ));
    v.push(ev(PY, 10, "exec", "posix_spawn", "/usr/bin/dash", None));
    v.push(ev(SH, 11, "exec", "execve", "/usr/bin/gzip", None));
    v.push(ev(SH, 11, "syscall", "setuid", "setuid", None));
    v
}

fn learn(events: &[Event], base: Option<&Base>) -> (PolicyDoc, Vec<String>, RuleTable) {
    let mut l = Learner::default();
    for e in events {
        l.observe(e);
    }
    let learned = l.learn(&Options::new("web"), base).expect("learns");
    let text = serde_json::to_string_pretty(&learned.policy).unwrap();
    let table = ldguard_policy::compile_str(&text, "learned")
        .unwrap_or_else(|d| panic!("invalid:\n{}\n{text}", d.render(&text)));
    (learned.policy, learned.notes, table)
}

fn file(t: &RuleTable, program: &str, path: &str, access: Access) -> (Action, String) {
    decision(
        t,
        &Request {
            path: Some(path.as_bytes()),
            access,
            ..Request::new(Kind::File, Call::Openat, program.as_bytes())
        },
    )
}

fn decision(t: &RuleTable, req: &Request<'_>) -> (Action, String) {
    let d = t.decide(req);
    (
        d.action,
        d.rule.map_or(String::new(), |i| t.rule_name(i).to_owned()),
    )
}

fn net(
    t: &RuleTable,
    program: &str,
    direction: Direction,
    addr: &str,
    port: u16,
) -> (Action, String) {
    decision(
        t,
        &Request {
            direction,
            address: Some(addr.parse().unwrap()),
            port: Some(port),
            ..Request::new(Kind::Network, Call::Connect, program.as_bytes())
        },
    )
}

fn exec(t: &RuleTable, program: &str, path: &str) -> (Action, String) {
    decision(
        t,
        &Request {
            path: Some(path.as_bytes()),
            ..Request::new(Kind::Exec, Call::Execve, program.as_bytes())
        },
    )
}

#[test]
fn learned_policy_allows_what_was_seen_and_names_the_rule_that_denies_the_rest() {
    let (doc, notes, t) = learn(&workload(), None);
    assert_eq!(doc.mode.as_deref(), Some("permissive"));
    assert!(notes.is_empty(), "{notes:?}");
    let names: Vec<&str> = doc.rules.iter().map(|r| r.name.as_str()).collect();
    assert!(
        doc.rules.len() <= 20,
        "{} rules: {names:?}",
        doc.rules.len()
    );
    let allow = |(a, _): (Action, String)| a == Action::Allow;

    // Everything seen, including per-run names in a new run.
    for e in workload() {
        assert!(ldguard_learn::operation(&e).is_ok(), "{e:?}");
    }
    assert!(allow(file(
        &t,
        PY,
        "/usr/lib/python3.11/os.py",
        Access::Read
    )));
    // Folded: a module never opened while learning, in the same tree.
    assert!(allow(file(
        &t,
        PY,
        "/usr/lib/python3.11/zipfile.py",
        Access::Read
    )));
    assert!(
        allow(file(&t, PY, "/proc/99/status", Access::Read)),
        "pid generalised"
    );
    assert!(
        allow(file(&t, PY, "/tmp/tmpzz81_qwe", Access::Write)),
        "temp name generalised"
    );
    assert!(allow(file(
        &t,
        PY,
        "/srv/app/log/access.log",
        Access::Write
    )));
    assert!(allow(net(&t, PY, Direction::Listen, "127.0.0.1", 8000)));
    assert!(
        allow(net(&t, PY, Direction::Inbound, "::1", 51000)),
        "loopback peers, any port"
    );
    assert!(allow(net(&t, PY, Direction::Outbound, "10.1.2.3", 5432)));
    assert!(
        allow(net(&t, PY, Direction::Outbound, "127.0.0.1", 50123)),
        "ephemeral loopback"
    );
    assert!(allow(exec(&t, PY, "/usr/bin/dash")));
    assert!(allow(exec(&t, SH, "/usr/bin/gzip")));

    // Writes stay tighter than reads; /etc never folds.
    assert_eq!(
        file(&t, PY, "/etc/passwd", Access::Write),
        (Action::Deny, "unlearned-file".into())
    );
    assert_eq!(file(&t, PY, "/etc/shadow", Access::Read).0, Action::Deny);
    assert_eq!(
        file(&t, PY, "/srv/app/log/other.log", Access::Write).0,
        Action::Deny
    );
    // A write rule is scoped to the program that wrote.
    assert_eq!(
        file(&t, SH, "/srv/app/log/access.log", Access::Write).0,
        Action::Deny
    );
    // Exec is exact and per program.
    assert_eq!(
        exec(&t, PY, "/bin/sh"),
        (Action::Deny, "unlearned-exec".into())
    );
    assert_eq!(exec(&t, PY, "/usr/bin/gzip").0, Action::Deny);
    // A port never used, on a known address; a looked-up name does not
    // open its addresses' other ports.
    assert_eq!(
        net(&t, PY, Direction::Outbound, "10.1.2.3", 22),
        (Action::Deny, "unlearned-outbound".into())
    );
    let lookup = decision(
        &t,
        &Request {
            host: Some("db.internal"),
            ..Request::new(Kind::Network, Call::Getaddrinfo, PY.as_bytes())
        },
    );
    assert_eq!(lookup.0, Action::Allow);
    let by_name = decision(
        &t,
        &Request {
            host: Some("db.internal"),
            address: Some("10.9.9.9".parse().unwrap()),
            port: Some(443),
            ..Request::new(Kind::Network, Call::Connect, PY.as_bytes())
        },
    );
    assert_eq!(by_name, (Action::Deny, "unlearned-outbound".into()));
    assert_eq!(
        net(&t, PY, Direction::Listen, "0.0.0.0", 22),
        (Action::Deny, "unlearned-network".into())
    );
    // Syscall-kind calls per program.
    let setuid = |p: &str| decision(&t, &Request::new(Kind::Syscall, Call::Setuid, p.as_bytes()));
    assert_eq!(setuid(SH).0, Action::Allow);
    assert_eq!(setuid(PY), (Action::Deny, "unlearned-syscall".into()));
}

#[test]
fn descriptions_state_the_evidence() {
    let (doc, _, _) = learn(&workload(), None);
    let read_usr = doc
        .rules
        .iter()
        .find(|r| r.name == "read-usr")
        .expect("read-usr");
    let d = read_usr.description.as_deref().unwrap();
    assert!(d.contains("seen 6 times (6 distinct)"), "{d}");
    assert!(d.contains(PY), "{d}");
    assert!(d.contains("/usr/lib/python3.11/** (6 paths)"), "{d}");
    for r in &doc.rules {
        assert!(r.description.is_some(), "{} has no description", r.name);
    }
}

#[test]
fn skips_enforced_denials_and_reports_lost_events() {
    let mut events = workload();
    let mut denied = ev(PY, 10, "exec", "execve", "/bin/nc", None);
    denied.action = "deny".into();
    denied.enforced = true;
    events.push(denied);
    let mut dropped = ev(PY, 10, "status", "ldguard", "", None);
    dropped.target = None;
    dropped.dropped = Some(7);
    events.push(dropped);
    let mut full = ev(PY, 10, "status", "ldguard", "", None);
    full.target = None;
    full.message = "behavior: the per-process dedup set is full".into();
    events.push(full);
    let (_, notes, t) = learn(&events, None);
    assert!(
        notes
            .iter()
            .any(|n| n.starts_with(PY) && n.contains("may miss")),
        "{notes:?}"
    );
    assert_eq!(exec(&t, PY, "/bin/nc").0, Action::Deny);
    assert!(
        notes
            .iter()
            .any(|n| n.contains("skipped 1 operations blocked")),
        "{notes:?}"
    );
    assert!(
        notes.iter().any(|n| n.contains("dropped 7 events")),
        "{notes:?}"
    );
}

#[test]
fn base_rules_stay_first_and_explicit_denies_are_not_overridden() {
    let base_text = r#"{"apiVersion":"ldguard.policy/v1","name":"base","mode":"enforce",
      "log":["deny"],"defaults":{"file":"deny","syscall":"allow"},
      "rules":[
        {"name":"no-gzip","kind":"exec","path":"/usr/bin/gzip","action":"deny"},
        {"name":"app-reads","kind":"file","access":["read"],"path":["/srv/app/**"],"action":"allow"},
        {"name":"read-usr","kind":"file","access":["read"],"path":["/opt/**"],"action":"allow"},
        {"name":"no-exec","kind":"exec","path":"/**","action":"deny"}
      ]}"#;
    let base = Base::parse(base_text, "base.json").unwrap_or_else(|e| panic!("{e:?}"));
    let (doc, notes, t) = learn(&workload(), Some(&base));
    assert_eq!(doc.name, "web");
    assert_eq!(doc.mode.as_deref(), Some("permissive"));
    assert_eq!(doc.log, Some(vec!["deny".to_string()]), "base log kept");
    let names: Vec<&str> = doc.rules.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names[0], "no-gzip");
    let pos = |n: &str| {
        names
            .iter()
            .position(|x| *x == n)
            .unwrap_or_else(|| panic!("{n} in {names:?}"))
    };
    assert!(pos("exec-from-python3.11") < pos("no-exec"), "{names:?}");
    // Name clash with a base rule is resolved.
    assert!(names.contains(&"read-usr-2"), "{names:?}");
    // Defaults stay the base's, except exec and network which deny; a
    // catch-all is added where the default denies.
    let defaults = doc.defaults.as_ref().unwrap();
    assert_eq!(defaults["syscall"], "allow");
    assert_eq!(defaults["network"], "deny");
    assert!(!names.contains(&"unlearned-syscall"), "{names:?}");
    assert!(names.contains(&"unlearned-file"), "{names:?}");
    assert!(names.contains(&"unlearned-network"), "{names:?}");
    assert_eq!(
        exec(&t, SH, "/usr/bin/gzip"),
        (Action::Deny, "no-gzip".into())
    );
    assert!(
        notes.iter().any(|n| n.contains("rule `no-gzip`")),
        "{notes:?}"
    );
    assert!(
        notes.iter().any(|n| n.contains("already allowed")),
        "{notes:?}"
    );
    // Reads the base already allows are not learned again.
    assert!(doc
        .rules
        .iter()
        .filter(|r| r.name.starts_with("read-srv"))
        .all(|r| !r
            .path
            .as_ref()
            .unwrap()
            .iter()
            .any(|p| p.starts_with("/srv/app"))));
    assert_eq!(exec(&t, PY, "/usr/bin/dash").0, Action::Allow);
    assert_eq!(exec(&t, PY, "/bin/sh"), (Action::Deny, "no-exec".into()));
}

#[test]
fn an_invalid_base_is_reported_with_its_position() {
    let err = match Base::parse(
        r#"{"apiVersion":"ldguard.policy/v1","name":"b","mode":"enforse"}"#,
        "b.json",
    ) {
        Err(ldguard_learn::BaseError::Invalid(d)) => d.to_string(),
        other => panic!("{:?}", other.err()),
    };
    assert!(err.contains("b.json:1:"), "{err}");
}

#[test]
fn no_events_still_make_a_valid_deny_everything_policy() {
    let (doc, _, t) = learn(&[], None);
    assert_eq!(doc.rules.len(), 5);
    assert_eq!(
        exec(&t, PY, "/bin/true"),
        (Action::Deny, "unlearned-exec".into())
    );
}

#[test]
fn a_learned_policy_is_a_base_for_the_next_learning() {
    let (first, _, _) = learn(&workload(), None);
    let base_text = serde_json::to_string(&first).unwrap();
    let base = Base::parse(&base_text, "first.json").unwrap_or_else(|e| panic!("{e:?}"));
    let mut more = workload();
    more.push(ev(
        PY,
        12,
        "network",
        "connect",
        "10.1.2.3:6379",
        Some("outbound"),
    ));
    more.push(ev(PY, 12, "exec", "execve", "/usr/bin/git", None));
    more.push(ev(
        PY,
        12,
        "file",
        "openat",
        "/var/cache/app/x",
        Some("write"),
    ));
    let (doc, notes, t) = learn(&more, Some(&base));
    assert!(
        notes.iter().all(|n| !n.contains("stay denied")),
        "{notes:?}"
    );
    assert!(allow_of(net(&t, PY, Direction::Outbound, "10.1.2.3", 6379)));
    assert!(allow_of(exec(&t, PY, "/usr/bin/git")));
    assert!(allow_of(file(&t, PY, "/var/cache/app/x", Access::Write)));
    assert_eq!(
        net(&t, PY, Direction::Outbound, "10.1.2.3", 22),
        (Action::Deny, "unlearned-outbound".into())
    );
    // Only the three new operations were added.
    assert_eq!(
        doc.rules.len(),
        first.rules.len() + 3,
        "{:?}",
        doc.rules.iter().map(|r| &r.name).collect::<Vec<_>>()
    );
}

fn allow_of((action, _): (Action, String)) -> bool {
    action == Action::Allow
}
