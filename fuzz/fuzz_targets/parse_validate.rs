//! Parse, validate and compile arbitrary text; render every diagnostic;
//! decide a few requests with whatever compiles. Nothing may panic.

#![no_main]

use ldguard_policy::{check_str, compile_document, Access, Call, Kind, Request};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (policy, diags) = check_str(text, "fuzz.json");
    for d in diags.iter() {
        let _ = d.render(text);
        assert!(d.line >= 1 && d.col >= 1);
        assert!(d.span.0 <= d.span.1 && d.span.1 <= text.len());
    }
    let Some(policy) = policy else {
        assert!(diags.has_errors());
        return;
    };
    let table = compile_document(&policy);
    let paths: [&[u8]; 4] = [b"/", b"/etc/passwd", b"/usr/bin/sh", b"/a/b/c/d"];
    for program in [&b"/usr/sbin/nginx"[..], b"/bin/sh"] {
        let t = table.for_program(program);
        for p in paths {
            for (kind, call) in [(Kind::File, Call::Openat), (Kind::Exec, Call::Execve)] {
                for access in [Access::Read, Access::Write] {
                    let req = Request {
                        path: Some(p),
                        resolved_path: Some(b"/usr/bin/dash"),
                        access,
                        ..Request::new(kind, call, program)
                    };
                    assert_eq!(t.decide(&req), table.decide(&req));
                    let _ = t.needs_resolution(kind, access);
                }
            }
        }
        let net = Request {
            address: Some("169.254.169.254".parse().unwrap()),
            port: Some(80),
            host: Some("api.example.com"),
            ..Request::new(Kind::Network, Call::Connect, program)
        };
        assert_eq!(t.decide(&net), table.decide(&net));
        let sys = Request::new(Kind::Syscall, Call::Ptrace, program);
        assert_eq!(t.decide(&sys), table.decide(&sys));
    }
});
