//! `decide` must not allocate: the preload library calls it from signal
//! handlers and from inside malloc's own callers. A counting global
//! allocator checks it over every request kind of the bench-100 policy.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use ldguard_policy::{compile_str, Access, Call, Direction, Kind, Protocol, Request};

struct Counting;

thread_local! {
    // `const` initialiser, no destructor: touching it never allocates.
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: forwards to the system allocator; only counts on the side.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` above.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn decide_allocates_nothing() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../policies/bench-100.json"
    ))
    .unwrap();
    let generic = compile_str(&text, "bench-100.json").unwrap();
    let nginx: &[u8] = b"/usr/sbin/nginx";
    let specialised = generic.for_program(nginx);
    let paths: [&[u8]; 6] = [
        b"/etc/passwd",
        b"/usr/lib/x86_64-linux-gnu/libc.so.6",
        b"/home/u/.aws/credentials",
        b"/home/u/.config/gcloud/x",
        b"/tmp/xmrig",
        b"/",
    ];
    let mut requests = Vec::new();
    for p in paths {
        for access in [Access::Read, Access::Write] {
            requests.push(Request {
                path: Some(p),
                resolved_path: Some(b"/usr/bin/dash"),
                access,
                ..Request::new(Kind::File, Call::Openat, nginx)
            });
        }
        requests.push(Request {
            path: Some(p),
            ..Request::new(Kind::Exec, Call::Execve, nginx)
        });
    }
    for (addr, port) in [
        ("169.254.169.254", 80),
        ("93.184.216.34", 443),
        ("::ffff:10.1.2.3", 5432),
        ("fd00:ec2::254", 80),
    ] {
        for direction in Direction::ALL {
            requests.push(Request {
                address: Some(addr.parse().unwrap()),
                port: Some(port),
                protocol: Some(Protocol::Tcp),
                host: Some("x.ngrok.io"),
                direction: *direction,
                ..Request::new(Kind::Network, Call::Connect, nginx)
            });
        }
    }
    requests.push(Request {
        unix: Some(b"/var/run/docker.sock"),
        ..Request::new(Kind::Network, Call::Connect, nginx)
    });
    for call in Call::ALL.iter().filter(|c| c.kind() == Kind::Syscall) {
        requests.push(Request::new(Kind::Syscall, *call, nginx));
    }
    let before = ALLOCATIONS.with(Cell::get);
    let mut denied = 0;
    for r in &requests {
        for t in [&generic, &specialised] {
            denied += usize::from(t.decide(r).action.blocks());
        }
    }
    let after = ALLOCATIONS.with(Cell::get);
    assert_eq!(after - before, 0, "decide allocated");
    assert!(
        denied > 10,
        "the requests should exercise matching rules too ({denied} denials)"
    );
}

#[test]
fn blocking_rule_under_allocates_nothing() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../policies/bench-100.json"
    ))
    .unwrap();
    let table = compile_str(&text, "bench-100.json").unwrap();
    let before = ALLOCATIONS.with(Cell::get);
    let mut found = 0;
    for dir in [&b"/"[..], b"/etc", b"/home/u", b"/usr/lib", b"/nonexistent"] {
        found += usize::from(table.blocking_rule_under(dir).is_some());
    }
    let after = ALLOCATIONS.with(Cell::get);
    assert_eq!(after - before, 0, "blocking_rule_under allocated");
    assert!(found > 0);
}
