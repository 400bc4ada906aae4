//! `decide()` timings for 10, 100 and 1000 rules, path and network cases.
//!
//! Run with `cargo bench -p ldguard-policy`. Each case runs 101 short rounds of
//! `ITERS` calls and reports the minimum and median ns per call; the
//! minimum is the figure least disturbed by the other tenant of the box.
//! 100 rules means `policies/bench-100.json`, a realistic policy; 10 and
//! 1000 rules are generated with a similar mix of kinds (`synthetic`), and
//! a synthetic 100 is reported too for the scaling curve.

use std::hint::black_box;
use std::time::Instant;

use ldguard_policy::{compile_str, Access, Call, Direction, Kind, Protocol, Request, RuleTable};
use serde_json::{json, Value};

const ITERS: u32 = 20_000;
const ROUNDS: usize = 101;
const BENCH_100: &str = include_str!("../../../policies/bench-100.json");
const NGINX: &[u8] = b"/usr/sbin/nginx";

fn synthetic(n: usize) -> String {
    let rules: Vec<Value> = (0..n)
        .map(|i| {
            let name = format!("rule-{i}");
            match i % 10 {
                0..=4 => json!({"name": name, "kind": "file", "access": [if i % 2 == 0 { "write" } else { "read" }],
                    "path": [format!("/srv/app{i}/data/**"), format!("/var/lib/svc{i}/*.db")], "action": "deny"}),
                5 | 6 => json!({"name": name, "kind": "exec",
                    "path": [format!("/opt/tool{i}/bin/*"), format!("/usr/local/bin/tool{i}")], "action": "deny"}),
                7 | 8 => json!({"name": name, "kind": "network", "direction": "outbound",
                    "address": [format!("10.{}.{}.0/24", i / 256, i % 256)], "port": [(1000 + i).to_string()], "action": "deny"}),
                _ => {
                    let call = ["ptrace", "mount", "bpf", "keyctl"][i % 4];
                    json!({"name": name, "kind": "syscall", "call": [call], "action": "deny"})
                }
            }
        })
        .collect();
    let doc = json!({"apiVersion": "ldguard.policy/v1", "name": format!("synthetic-{n}"), "rules": rules});
    serde_json::to_string(&doc).unwrap()
}

fn measure(table: &RuleTable, req: &Request<'_>) -> (f64, f64) {
    let mut per_call: Vec<f64> = Vec::with_capacity(ROUNDS);
    for _ in 0..3 {
        black_box(table.decide(black_box(req)));
    }
    for _ in 0..ROUNDS {
        let start = Instant::now();
        for _ in 0..ITERS {
            black_box(table.decide(black_box(req)));
        }
        per_call.push(start.elapsed().as_nanos() as f64 / ITERS as f64);
    }
    per_call.sort_by(f64::total_cmp);
    (per_call[0], per_call[ROUNDS / 2])
}

struct Case<'a> {
    name: &'static str,
    req: Request<'a>,
}

fn cases(synthetic_hit: &'static [u8]) -> Vec<Case<'static>> {
    let file = Request::new(Kind::File, Call::Openat, NGINX);
    let net = Request {
        protocol: Some(Protocol::Tcp),
        direction: Direction::Outbound,
        ..Request::new(Kind::Network, Call::Connect, NGINX)
    };
    vec![
        Case {
            name: "path, no rule matches (shared library read)",
            req: Request {
                path: Some(b"/usr/lib/x86_64-linux-gnu/libssl.so.3"),
                ..file
            },
        },
        Case {
            name: "path, a write rule matches",
            req: Request {
                path: Some(synthetic_hit),
                access: Access::Write,
                ..file
            },
        },
        Case {
            name: "exec, path and resolved path",
            req: Request {
                path: Some(b"/bin/sh"),
                resolved_path: Some(b"/usr/bin/dash"),
                ..Request::new(Kind::Exec, Call::Execve, NGINX)
            },
        },
        Case {
            name: "network, no rule matches (public HTTPS)",
            req: Request {
                address: Some("93.184.216.34".parse().unwrap()),
                port: Some(443),
                ..net
            },
        },
        Case {
            name: "network, a deny rule matches",
            req: Request {
                address: Some("169.254.169.254".parse().unwrap()),
                port: Some(80),
                ..net
            },
        },
        Case {
            name: "syscall",
            req: Request::new(Kind::Syscall, Call::Ptrace, NGINX),
        },
    ]
}

fn main() {
    // `cargo test` runs benches with `--bench` absent: do a quick smoke run.
    let quick = !std::env::args().any(|a| a == "--bench");
    // `cargo bench -p ldguard-policy -- FILTER` runs only matching cases.
    let filter: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with("--"));
    let tables: Vec<(String, RuleTable, &'static [u8])> = vec![
        (
            "synthetic 10".into(),
            compile_str(&synthetic(10), "s10").unwrap(),
            b"/srv/app4/data/x",
        ),
        (
            "bench-100.json".into(),
            compile_str(BENCH_100, "bench-100.json").unwrap(),
            b"/etc/passwd",
        ),
        (
            "synthetic 100".into(),
            compile_str(&synthetic(100), "s100").unwrap(),
            b"/srv/app50/data/x",
        ),
        (
            "synthetic 1000".into(),
            compile_str(&synthetic(1000), "s1000").unwrap(),
            b"/srv/app500/data/x",
        ),
    ];
    println!(
        "{:<16} {:<46} {:>9} {:>9}   {:>9}",
        "policy", "case", "min ns", "median ns", "generic"
    );
    for (name, table, hit) in &tables {
        let specialised = table.for_program(NGINX);
        for case in cases(hit) {
            if filter
                .as_ref()
                .is_some_and(|f| !format!("{name} {}", case.name).contains(f.as_str()))
            {
                continue;
            }
            if quick {
                black_box(specialised.decide(&case.req));
                continue;
            }
            let (min, median) = measure(&specialised, &case.req);
            let (generic_min, _) = measure(table, &case.req);
            println!(
                "{name:<16} {:<46} {min:>9.1} {median:>9.1}   {generic_min:>9.1}",
                case.name
            );
        }
    }
    if !quick && filter.is_none() {
        println!(
            "\n{:<16} {:>12} {:>16}",
            "policy", "compile µs", "for_program µs"
        );
        let sources = [
            ("synthetic 10", synthetic(10)),
            ("bench-100.json", BENCH_100.to_string()),
            ("synthetic 100", synthetic(100)),
            ("synthetic 1000", synthetic(1000)),
        ];
        for (name, text) in &sources {
            let best = |f: &dyn Fn()| {
                (0..5)
                    .map(|_| {
                        let start = Instant::now();
                        f();
                        start.elapsed().as_secs_f64() * 1e6
                    })
                    .fold(f64::MAX, f64::min)
            };
            let table = compile_str(text, name).unwrap();
            let compile = best(&|| drop(black_box(compile_str(text, name).unwrap())));
            let specialise = best(&|| drop(black_box(table.for_program(NGINX))));
            println!("{name:<16} {compile:>12.0} {specialise:>16.0}");
        }
    }
    if !quick {
        println!("\nmin/median: table from for_program(nginx), as the preload library uses it;");
        println!("generic: the unspecialised table (min), which also checks `program` globs.");
    }
}
