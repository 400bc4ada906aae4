//! Property test: the compiled, indexed [`RuleTable`] decides exactly like a
//! deliberately naive evaluator that walks the rules in order and matches
//! globs by recursion over split segments.

use std::net::IpAddr;

use ldguard_policy::{
    compile_str, Access, Action, Call, Decision, Direction, Kind, Protocol, Request, Severity,
};
use proptest::prelude::*;
use serde_json::{json, Value};

// ---------------------------------------------------------------------------
// The generated policy, kept in test-side types the reference evaluates.

#[derive(Clone, Debug)]
struct RuleSpec {
    kind: Kind,
    action: Action,
    enabled: bool,
    severity: Option<Severity>,
    errno: Option<(&'static str, i32)>,
    program: Option<Vec<&'static str>>,
    path: Option<Vec<String>>,
    access: Option<Vec<Access>>,
    direction: Option<Vec<Direction>>,
    address: Option<Vec<&'static str>>,
    port: Option<Vec<&'static str>>,
    protocol: Option<Vec<Protocol>>,
    unix: Option<Vec<&'static str>>,
    host: Option<Vec<&'static str>>,
    call: Option<Vec<Call>>,
}

#[derive(Clone, Debug)]
struct PolicySpec {
    defaults: [Action; 4],
    log: Vec<&'static str>,
    ignore: Vec<Call>,
    rules: Vec<RuleSpec>,
}

fn names<T: Copy>(v: &[T], f: fn(T) -> &'static str) -> Vec<&'static str> {
    v.iter().map(|&x| f(x)).collect()
}

impl PolicySpec {
    fn to_json(&self) -> Value {
        let rules: Vec<Value> = self
            .rules
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let mut o = serde_json::Map::new();
                o.insert("name".into(), json!(format!("r{i}")));
                o.insert("kind".into(), json!(r.kind.as_str()));
                o.insert("action".into(), json!(r.action.as_str()));
                o.insert("enabled".into(), json!(r.enabled));
                if let Some(s) = r.severity {
                    o.insert("severity".into(), json!(s.as_str()));
                }
                if let Some((e, _)) = r.errno {
                    o.insert("errno".into(), json!(e));
                }
                let mut put = |k: &str, v: Option<Value>| {
                    if let Some(v) = v {
                        o.insert(k.into(), v);
                    }
                };
                put("program", r.program.as_ref().map(|v| json!(v)));
                put("path", r.path.as_ref().map(|v| json!(v)));
                put(
                    "access",
                    r.access.as_ref().map(|v| json!(names(v, Access::as_str))),
                );
                put(
                    "direction",
                    r.direction
                        .as_ref()
                        .map(|v| json!(names(v, Direction::as_str))),
                );
                put("address", r.address.as_ref().map(|v| json!(v)));
                put("port", r.port.as_ref().map(|v| json!(v)));
                put(
                    "protocol",
                    r.protocol
                        .as_ref()
                        .map(|v| json!(names(v, Protocol::as_str))),
                );
                put("unix", r.unix.as_ref().map(|v| json!(v)));
                put("host", r.host.as_ref().map(|v| json!(v)));
                put("call", r.call.as_ref().map(|v| json!(names(v, Call::name))));
                Value::Object(o)
            })
            .collect();
        let mut doc = json!({
            "apiVersion": "ldguard.policy/v1",
            "name": "generated",
            "log": self.log,
            "defaults": {
                "file": self.defaults[0].as_str(), "exec": self.defaults[1].as_str(),
                "network": self.defaults[2].as_str(), "syscall": self.defaults[3].as_str()
            },
            "ignore": names(&self.ignore, Call::name),
        });
        if !rules.is_empty() {
            doc["rules"] = Value::Array(rules);
        }
        doc
    }
}

// ---------------------------------------------------------------------------
// The naive reference.

fn segments(s: &[u8], sep: u8) -> Vec<Vec<u8>> {
    if s == [sep] {
        return vec![Vec::new()];
    }
    s.split(|&b| b == sep).map(<[u8]>::to_vec).collect()
}

/// `*` any run, `?` one character (ASCII and `é` are all the tests use).
fn seg_match(p: &[char], t: &[char]) -> bool {
    match (p.first(), t.first()) {
        (None, None) => true,
        (Some('*'), _) => seg_match(&p[1..], t) || (!t.is_empty() && seg_match(p, &t[1..])),
        (Some('?'), Some(_)) => seg_match(&p[1..], &t[1..]),
        (Some(a), Some(b)) if a == b => seg_match(&p[1..], &t[1..]),
        _ => false,
    }
}

fn segs_match(p: &[Vec<u8>], t: &[Vec<u8>]) -> bool {
    match p.first() {
        None => t.is_empty(),
        Some(s) if s == b"**" => (0..=t.len()).any(|k| segs_match(&p[1..], &t[k..])),
        Some(s) => {
            let chars = |b: &[u8]| String::from_utf8_lossy(b).chars().collect::<Vec<char>>();
            !t.is_empty() && seg_match(&chars(s), &chars(&t[0])) && segs_match(&p[1..], &t[1..])
        }
    }
}

fn glob(pattern: &str, text: &[u8]) -> bool {
    segs_match(&segments(pattern.as_bytes(), b'/'), &segments(text, b'/'))
}

fn host_glob(pattern: &str, host: &str) -> bool {
    let host = host.to_ascii_lowercase();
    let host = host.strip_suffix('.').unwrap_or(&host);
    segs_match(
        &segments(pattern.to_ascii_lowercase().as_bytes(), b'.'),
        &segments(host.as_bytes(), b'.'),
    )
}

fn as_v4(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => {
            let s = v6.segments();
            if s[..5] == [0; 5] && s[5] == 0xffff {
                IpAddr::V4(std::net::Ipv4Addr::new(
                    (s[6] >> 8) as u8,
                    s[6] as u8,
                    (s[7] >> 8) as u8,
                    s[7] as u8,
                ))
            } else {
                addr
            }
        }
        v4 => v4,
    }
}

fn cidr(text: &str, addr: IpAddr) -> bool {
    let (a, len) = match text.split_once('/') {
        Some((a, l)) => (
            a.parse::<IpAddr>().unwrap(),
            Some(l.parse::<u32>().unwrap()),
        ),
        None => (text.parse::<IpAddr>().unwrap(), None),
    };
    let (net, addr) = (as_v4(a), as_v4(addr));
    // A mapped rule network loses 96 bits of prefix with its v6 form.
    let len = match (a, net) {
        (IpAddr::V6(_), IpAddr::V4(_)) => len.map(|l| l - 96),
        _ => len,
    };
    let bits = |ip: IpAddr| -> Vec<bool> {
        let bytes = match ip {
            IpAddr::V4(v) => v.octets().to_vec(),
            IpAddr::V6(v) => v.octets().to_vec(),
        };
        bytes
            .iter()
            .flat_map(|b| (0..8).rev().map(move |i| b >> i & 1 == 1))
            .collect()
    };
    let (nb, ab) = (bits(net), bits(addr));
    nb.len() == ab.len() && (0..len.unwrap_or(nb.len() as u32) as usize).all(|i| nb[i] == ab[i])
}

fn port(text: &str, p: u16) -> bool {
    let (lo, hi) = text.split_once('-').unwrap_or((text, text));
    lo.parse::<u16>().unwrap() <= p && p <= hi.parse::<u16>().unwrap()
}

fn list<T>(m: &Option<Vec<T>>, f: impl Fn(&T) -> bool) -> bool {
    m.as_ref().is_none_or(|v| v.iter().any(f))
}

fn needs<T, U: Copy>(m: &Option<Vec<T>>, v: Option<U>, f: impl Fn(&T, U) -> bool) -> bool {
    match m {
        None => true,
        Some(items) => v.is_some_and(|v| items.iter().any(|i| f(i, v))),
    }
}

fn rule_matches(r: &RuleSpec, q: &Request<'_>) -> bool {
    if !r.enabled || r.kind != q.kind || !list(&r.program, |g| glob(g, q.program)) {
        return false;
    }
    match r.kind {
        Kind::File | Kind::Exec => {
            list(&r.path, |g| {
                q.path.is_some_and(|p| glob(g, p)) || q.resolved_path.is_some_and(|p| glob(g, p))
            }) && (r.kind == Kind::Exec || list(&r.access, |a| *a == q.access))
        }
        Kind::Network => {
            list(&r.direction, |d| *d == q.direction)
                && needs(&r.address, q.address, |c, a| cidr(c, a))
                && needs(&r.port, q.port, |t, p| port(t, p))
                && needs(&r.protocol, q.protocol, |a, b| *a == b)
                && needs(&r.unix, q.unix, |g, u| glob(g, u))
                && needs(&r.host, q.host, |g, h| host_glob(g, h))
        }
        Kind::Syscall => list(&r.call, |c| *c == q.call),
    }
}

fn reference(p: &PolicySpec, q: &Request<'_>) -> Decision {
    let logs = |a: Action| {
        let class = match a {
            Action::Allow => "allow",
            Action::Audit => "audit",
            Action::Deny | Action::Kill => "deny",
        };
        p.log.contains(&class) && !p.ignore.contains(&q.call)
    };
    let default_errno = match q.kind {
        Kind::File | Kind::Exec => 13,
        _ => 1,
    };
    let blocks = |a: Action| matches!(a, Action::Deny | Action::Kill);
    for (i, r) in p.rules.iter().enumerate() {
        if rule_matches(r, q) {
            return Decision {
                action: r.action,
                rule: Some(i as u32),
                severity: r.severity.unwrap_or(Severity::Medium),
                errno: if blocks(r.action) {
                    r.errno.map_or(default_errno, |e| e.1)
                } else {
                    0
                },
                log: logs(r.action),
            };
        }
    }
    let a = p.defaults[q.kind as usize];
    Decision {
        action: a,
        rule: None,
        severity: if blocks(a) {
            Severity::Medium
        } else {
            Severity::Info
        },
        errno: if blocks(a) { default_errno } else { 0 },
        log: logs(a),
    }
}

// ---------------------------------------------------------------------------
// Generators.

const SEGS: &[&str] = &["a", "b", "etc", "bin", "sh", "bash", "x.y", "é"];
const GLOB_SEGS: &[&str] = &[
    "a", "b", "etc", "bin", "sh", "*", "?", "**", "*sh", "a*", "?a", "*.*", "é", "x.y",
];
const PROGRAMS: &[&str] = &["/usr/bin/python3", "/bin/sh", "/usr/sbin/nginx", "/opt/app"];
const PROGRAM_GLOBS: &[&str] = &[
    "/usr/bin/*",
    "/bin/sh",
    "**/nginx",
    "/usr/**",
    "/opt/app",
    "/**",
];
const CIDRS: &[&str] = &[
    "10.0.0.0/8",
    "10.1.0.0/16",
    "10.1.2.3",
    "169.254.169.254/32",
    "::ffff:10.0.0.0/104",
    "::ffff:169.254.169.254",
    "fd00::/8",
    "fd00:ec2::254/128",
    "::/0",
    "0.0.0.0/0",
    "192.168.0.0/24",
    "2001:db8::/32",
];
const ADDRS: &[&str] = &[
    "10.1.2.3",
    "10.2.0.1",
    "169.254.169.254",
    "::ffff:169.254.169.254",
    "::ffff:10.1.2.3",
    "192.168.0.7",
    "fd00:ec2::254",
    "fd12::1",
    "2001:db8::5",
    "8.8.8.8",
    "::1",
];
const PORTS: &[&str] = &["80", "443", "1-1024", "8000-9000", "0-65535", "22", "65535"];
const REQ_PORTS: &[u16] = &[0, 22, 80, 443, 1024, 1025, 8080, 9000, 9001, 65535];
const UNIX_GLOBS: &[&str] = &["/var/run/*.sock", "/run/**", "@x*", "/var/run/docker.sock"];
const UNIX_PATHS: &[&str] = &["/var/run/docker.sock", "/run/a/b.sock", "@xyz", "/tmp/s"];
const HOST_GLOBS: &[&str] = &[
    "*.example.com",
    "**.example.com",
    "api.example.com",
    "EXAMPLE.com",
    "a?i.*.com",
];
const HOSTS: &[&str] = &[
    "api.example.com",
    "example.com",
    "a.b.example.com",
    "API.EXAMPLE.COM.",
    "evil.net",
];

fn pick<T: Clone + std::fmt::Debug + 'static>(items: &'static [T]) -> impl Strategy<Value = T> {
    proptest::sample::select(items)
}

fn some_of<T: Clone + std::fmt::Debug + 'static>(
    items: &'static [T],
) -> impl Strategy<Value = Option<Vec<T>>> {
    proptest::option::weighted(0.5, proptest::collection::vec(pick(items), 1..3))
}

fn path_glob() -> impl Strategy<Value = String> {
    (
        prop::bool::weighted(0.15),
        proptest::collection::vec(pick(GLOB_SEGS), 1..5),
    )
        .prop_filter_map("invalid glob", |(rel, segs)| {
            let g = if rel {
                format!("**/{}", segs.join("/"))
            } else {
                format!("/{}", segs.join("/"))
            };
            // `**` must be a whole segment: the generator's segments already are,
            // but `**/**`-style runs are fine, so only the parser decides.
            ldguard_policy::glob::Glob::new(&g, ldguard_policy::glob::GlobStyle::Path)
                .ok()
                .map(|_| g)
        })
}

fn path() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(pick(SEGS), 0..5).prop_map(|s| {
        if s.is_empty() {
            b"/".to_vec()
        } else {
            format!("/{}", s.join("/")).into_bytes()
        }
    })
}

fn action() -> impl Strategy<Value = Action> {
    pick(Action::ALL)
}

fn syscalls() -> Vec<Call> {
    Call::ALL
        .iter()
        .copied()
        .filter(|c| c.kind() == Kind::Syscall)
        .collect()
}

fn rule() -> impl Strategy<Value = RuleSpec> {
    let common = (
        pick(Kind::ALL),
        action(),
        prop::bool::weighted(0.85),
        proptest::option::of(pick(Severity::ALL)),
        prop::bool::weighted(0.3),
        some_of(PROGRAM_GLOBS),
    );
    let matchers = (
        proptest::option::weighted(0.7, proptest::collection::vec(path_glob(), 1..3)),
        some_of(Access::ALL),
        some_of(Direction::ALL),
        some_of(CIDRS),
        some_of(PORTS),
        some_of(Protocol::ALL),
        proptest::option::weighted(0.2, proptest::collection::vec(pick(UNIX_GLOBS), 1..3)),
        proptest::option::weighted(0.3, proptest::collection::vec(pick(HOST_GLOBS), 1..3)),
        proptest::collection::vec(proptest::sample::select(syscalls()), 1..4),
    );
    (common, matchers).prop_map(|((kind, action, enabled, severity, errno, program), m)| {
        let (path, access, direction, address, port, protocol, unix, host, calls) = m;
        let mut r = RuleSpec {
            kind,
            action,
            enabled,
            severity,
            errno: (errno && action == Action::Deny).then_some(("ECONNREFUSED", 111)),
            program,
            path: None,
            access: None,
            direction: None,
            address: None,
            port: None,
            protocol: None,
            unix: None,
            host: None,
            call: None,
        };
        match kind {
            Kind::File => {
                r.path = path;
                r.access = access;
            }
            Kind::Exec => r.path = path,
            Kind::Network => {
                r.direction = direction;
                if unix.is_some() {
                    r.unix = unix;
                } else {
                    (r.address, r.port, r.protocol, r.host) = (address, port, protocol, host);
                }
            }
            Kind::Syscall => r.call = Some(calls),
        }
        let has_matcher = r.program.is_some()
            || r.path.is_some()
            || r.access.is_some()
            || r.direction.is_some()
            || r.address.is_some()
            || r.port.is_some()
            || r.protocol.is_some()
            || r.unix.is_some()
            || r.host.is_some()
            || r.call.is_some();
        if !has_matcher {
            r.program = Some(vec!["/**"]);
        }
        r
    })
}

fn policy() -> impl Strategy<Value = PolicySpec> {
    (
        [action(), action(), action(), action()],
        proptest::sample::subsequence(vec!["allow", "audit", "deny", "behavior"], 0..=4),
        proptest::collection::vec(pick(Call::ALL), 0..4),
        proptest::collection::vec(rule(), 0..24),
    )
        .prop_map(|(defaults, log, ignore, rules)| PolicySpec {
            defaults,
            log,
            ignore,
            rules,
        })
}

#[derive(Clone, Debug)]
struct Req {
    kind: Kind,
    call: Call,
    program: &'static str,
    path: Option<Vec<u8>>,
    resolved: Option<Vec<u8>>,
    access: Access,
    direction: Direction,
    address: Option<IpAddr>,
    port: Option<u16>,
    protocol: Option<Protocol>,
    unix: Option<&'static str>,
    host: Option<&'static str>,
}

impl Req {
    fn request(&self) -> Request<'_> {
        Request {
            path: self.path.as_deref(),
            resolved_path: self.resolved.as_deref(),
            access: self.access,
            direction: self.direction,
            address: self.address,
            port: self.port,
            protocol: self.protocol,
            unix: self.unix.map(str::as_bytes),
            host: self.host,
            ..Request::new(self.kind, self.call, self.program.as_bytes())
        }
    }
}

fn request() -> impl Strategy<Value = Req> {
    (
        pick(Call::ALL),
        pick(PROGRAMS),
        proptest::option::weighted(0.9, path()),
        proptest::option::weighted(0.3, path()),
        pick(Access::ALL),
        pick(Direction::ALL),
        (
            proptest::option::weighted(0.7, pick(ADDRS)),
            proptest::option::weighted(0.7, pick(REQ_PORTS)),
            proptest::option::of(pick(Protocol::ALL)),
            proptest::option::weighted(0.2, pick(UNIX_PATHS)),
            proptest::option::weighted(0.4, pick(HOSTS)),
        ),
    )
        .prop_map(
            |(
                call,
                program,
                path,
                resolved,
                access,
                direction,
                (address, port, protocol, unix, host),
            )| Req {
                kind: call.kind(),
                call,
                program,
                path,
                resolved,
                access,
                direction,
                address: address.map(|a| a.parse().unwrap()),
                port,
                protocol,
                unix,
                host,
            },
        )
}

/// `t` written to its flat form and read back, as a process would.
fn flat_round_trip(
    t: &ldguard_policy::RuleTable,
    text: &str,
    program: &[u8],
) -> ldguard_policy::RuleTable {
    use ldguard_policy::flat;
    let bytes: &'static [u8] = Box::leak(flat::encode(t, text, [7; 32], "test").into_boxed_slice());
    let expect = flat::Expect {
        library_version: "test",
        program,
        policy_text: text.as_bytes(),
    };
    let decoded = flat::decode(bytes, &expect).expect("a fresh table decodes");
    assert_eq!(decoded.policy_sha256, [7; 32]);
    decoded.table
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn compiled_table_agrees_with_the_reference(p in policy(), reqs in proptest::collection::vec(request(), 1..24)) {
        let text = serde_json::to_string_pretty(&p.to_json()).unwrap();
        let table = compile_str(&text, "generated.json").map_err(|d| TestCaseError::fail(format!("{d}\n{text}")))?;
        for r in &reqs {
            let q = r.request();
            let want = reference(&p, &q);
            prop_assert_eq!(table.decide(&q), want, "generic table, request {:?}\n{}", r, text);
            let specialised = table.for_program(q.program);
            prop_assert_eq!(specialised.decide(&q), want, "table for {}, request {:?}\n{}", r.program, r, text);
            // The flat form (what a process reads instead of parsing)
            // decides the same, generic and specialised.
            for t in [&table, &specialised] {
                let flat = flat_round_trip(t, &text, q.program);
                prop_assert_eq!(flat.decide(&q), want, "flat table, request {:?}\n{}", r, text);
                for kind in [Kind::File, Kind::Exec, Kind::Network] {
                    for access in [Access::Read, Access::Write] {
                        prop_assert_eq!(flat.needs_resolution(kind, access), t.needs_resolution(kind, access));
                    }
                }
                if let Some(path) = q.path {
                    prop_assert_eq!(flat.blocking_rule_under(path), t.blocking_rule_under(path));
                }
            }
        }
    }

    #[test]
    fn skipping_resolution_never_changes_an_observable_outcome(p in policy(), reqs in proptest::collection::vec(request(), 1..24)) {
        let text = serde_json::to_string_pretty(&p.to_json()).unwrap();
        let table = compile_str(&text, "generated.json").unwrap();
        for r in &reqs {
            let with = r.request();
            let kind = with.kind;
            for t in [table.clone(), table.for_program(with.program)] {
                if t.needs_resolution(kind, with.access) {
                    continue;
                }
                let without = Request { resolved_path: None, unix: None, ..with };
                let unix_less = Request { unix: None, ..with };
                let (a, b) = (t.decide(&unix_less), t.decide(&without));
                // For network the "resolution" is the socket path itself:
                // compare with and without the unix path only when it is
                // the thing that would have been resolved.
                let (a, b) = if kind == Kind::Network { (t.decide(&with), t.decide(&unix_less)) } else { (a, b) };
                prop_assert_eq!(a.action, b.action, "{:?}\n{}", r, text);
                prop_assert_eq!(a.log, b.log, "{:?}\n{}", r, text);
                if a.log {
                    prop_assert_eq!(a.rule, b.rule, "{:?}\n{}", r, text);
                }
            }
        }
    }
}
