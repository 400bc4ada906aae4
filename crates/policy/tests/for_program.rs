//! `compile_str_for_program` (what the preload library compiles at start-up)
//! must decide exactly as `compile_str(..).for_program(..)`.

use ldguard_policy::{
    compile_str, compile_str_for_program, Access, Call, Direction, Kind, Protocol, Request,
};

fn bench_policy() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../policies/bench-100.json");
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn requests(program: &[u8]) -> Vec<Request<'_>> {
    let file = |path: &'static str, access| Request {
        path: Some(path.as_bytes()),
        access,
        ..Request::new(Kind::File, Call::Openat, program)
    };
    let exec = |path: &'static str| Request {
        path: Some(path.as_bytes()),
        ..Request::new(Kind::Exec, Call::Execve, program)
    };
    let net = |addr: &str, port, protocol, direction| Request {
        address: Some(addr.parse().unwrap()),
        port: Some(port),
        protocol: Some(protocol),
        direction,
        ..Request::new(Kind::Network, Call::Connect, program)
    };
    vec![
        file("/etc/shadow", Access::Read),
        file("/etc/passwd", Access::Read),
        file("/root/.bashrc", Access::Read),
        file("/home/app/.ssh/id_ed25519", Access::Read),
        file("/srv/app/data/upload.bin", Access::Write),
        file("/srv/app/code.py", Access::Write),
        file("/tmp/x", Access::Write),
        file("/work/project/.aws/credentials", Access::Read),
        exec("/bin/sh"),
        exec("/usr/bin/curl"),
        exec("/tmp/payload"),
        exec("/usr/local/bin/tool"),
        exec("/bin/true"),
        net("169.254.169.254", 80, Protocol::Tcp, Direction::Outbound),
        net("10.20.0.5", 5432, Protocol::Tcp, Direction::Outbound),
        net("10.20.0.5", 22, Protocol::Tcp, Direction::Outbound),
        net("127.0.0.1", 53, Protocol::Udp, Direction::Outbound),
        net("8.8.8.8", 5000, Protocol::Udp, Direction::Outbound),
        net("127.0.0.1", 8080, Protocol::Tcp, Direction::Listen),
        net("127.0.0.1", 9090, Protocol::Tcp, Direction::Listen),
        Request::new(Kind::Syscall, Call::Ptrace, program),
    ]
}

#[test]
fn agrees_with_for_program_on_the_bench_policy() {
    let text = bench_policy();
    let generic = compile_str(&text, "bench-100.json").unwrap();
    for program in [
        &b"/usr/sbin/nginx"[..],
        b"/usr/bin/python3.11",
        b"/opt/app/bin/server",
        b"/bin/other",
    ] {
        let direct = compile_str_for_program(&text, "bench-100.json", program).unwrap();
        let specialised = generic.for_program(program);
        assert_eq!(direct.program(), Some(program));
        assert_eq!(direct.rule_count(), generic.rule_count());
        for req in requests(program) {
            assert_eq!(
                direct.decide(&req),
                specialised.decide(&req),
                "{} disagrees on {req:?}",
                String::from_utf8_lossy(program)
            );
            assert_eq!(direct.decide(&req), generic.decide(&req));
        }
        for kind in [Kind::File, Kind::Exec, Kind::Network] {
            for access in [Access::Read, Access::Write] {
                assert_eq!(
                    direct.needs_resolution(kind, access),
                    specialised.needs_resolution(kind, access)
                );
            }
        }
    }
}

#[test]
fn program_rules_apply_only_to_their_program() {
    let text = bench_policy();
    let sh = |program| Request {
        path: Some(&b"/bin/sh"[..]),
        ..Request::new(Kind::Exec, Call::Execve, program)
    };
    let nginx = compile_str_for_program(&text, "b", b"/usr/sbin/nginx").unwrap();
    let other = compile_str_for_program(&text, "b", b"/bin/other").unwrap();
    assert!(nginx.decide(&sh(b"/usr/sbin/nginx")).action.blocks());
    assert!(!other.decide(&sh(b"/bin/other")).action.blocks());
}

#[test]
fn invalid_text_reports_diagnostics() {
    let err = compile_str_for_program("{", "broken.json", b"/bin/x").unwrap_err();
    assert!(err.to_string().contains("broken.json"), "{err}");
}
