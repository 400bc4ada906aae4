//! The flat form of a compiled table: every way a file can be wrong is
//! refused (or, when the damage keeps the checksum right, never panics),
//! and a good one decides exactly like the table it was written from.

use ldguard_policy::flat::{self, Expect, FlatError};
use ldguard_policy::{compile_str, compile_str_for_program, Access, Call, Kind, Request};

const PROGRAM: &[u8] = b"/usr/sbin/nginx";

fn bench_text() -> String {
    std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../policies/bench-100.json"
    ))
    .unwrap()
}

fn leak(bytes: Vec<u8>) -> &'static [u8] {
    Box::leak(bytes.into_boxed_slice())
}

fn expect(text: &str) -> Expect<'_> {
    Expect {
        library_version: "ldguard 1",
        program: PROGRAM,
        policy_text: text.as_bytes(),
    }
}

fn good(text: &str) -> Vec<u8> {
    let table = compile_str_for_program(text, "p.json", PROGRAM).unwrap();
    flat::encode(&table, text, [1; 32], "ldguard 1")
}

/// Requests from every policy's cases file would be nicer; these cover
/// each kind and the rule families of bench-100.
fn requests() -> Vec<Request<'static>> {
    let mut out = Vec::new();
    for path in [
        &b"/etc/shadow"[..],
        b"/etc/passwd",
        b"/tmp/x",
        b"/var/log/app/a.log",
        b"/root/.ssh/id_rsa",
        b"/home/u/.aws/credentials",
        b"/usr/bin/gcc",
        b"/bin/sh",
        b"/usr/lib/x.so",
        b"/",
    ] {
        for access in [Access::Read, Access::Write] {
            out.push(Request {
                path: Some(path),
                access,
                ..Request::new(Kind::File, Call::Open, PROGRAM)
            });
        }
        out.push(Request {
            path: Some(path),
            ..Request::new(Kind::Exec, Call::Execve, PROGRAM)
        });
    }
    for (addr, port) in [
        ("169.254.169.254", 80),
        ("10.0.0.1", 5432),
        ("8.8.8.8", 53),
        ("::1", 22),
    ] {
        out.push(Request {
            address: Some(addr.parse().unwrap()),
            port: Some(port),
            ..Request::new(Kind::Network, Call::Connect, PROGRAM)
        });
    }
    for call in [Call::Ptrace, Call::Mount, Call::Setuid] {
        out.push(Request::new(Kind::Syscall, call, PROGRAM));
    }
    out
}

#[test]
fn every_policy_round_trips_and_decides_the_same() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../policies");
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let generic = compile_str(&text, "p.json").unwrap();
        for table in [generic.clone(), generic.for_program(PROGRAM)] {
            let bytes = leak(flat::encode(&table, &text, [9; 32], "ldguard 1"));
            let d = flat::decode(bytes, &expect(&text)).unwrap();
            assert_eq!(d.policy_sha256, [9; 32]);
            let t = d.table;
            assert_eq!(t.name(), table.name());
            assert_eq!(t.mode(), table.mode());
            assert_eq!(t.log_classes(), table.log_classes());
            assert_eq!(t.backstop(), table.backstop());
            assert_eq!(t.rule_count(), table.rule_count());
            assert_eq!(t.program(), table.program());
            for i in 0..table.rule_count() as u32 {
                assert_eq!(t.rule_name(i), table.rule_name(i));
            }
            for q in requests() {
                assert_eq!(t.decide(&q), table.decide(&q), "{path:?} {q:?}");
            }
            // The document itself is parsed only on demand, and is the same.
            assert_eq!(format!("{:?}", t.policy()), format!("{:?}", table.policy()));
        }
        seen += 1;
    }
    assert!(seen >= 5, "policies/ holds the example policies");
}

#[test]
fn mismatches_are_refused_with_their_reason() {
    let text = bench_text();
    let bytes = good(&text);
    let decode = |b: Vec<u8>, e: &Expect<'_>| flat::decode(leak(b), e).err();

    assert_eq!(decode(bytes.clone(), &expect(&text)), None);
    let other_library = Expect {
        library_version: "ldguard 2",
        ..expect(&text)
    };
    assert!(matches!(
        decode(bytes.clone(), &other_library),
        Some(FlatError::OtherLibrary(v)) if v == "ldguard 1"
    ));
    let other_program = Expect {
        program: b"/usr/bin/python3",
        ..expect(&text)
    };
    assert_eq!(
        decode(bytes.clone(), &other_program),
        Some(FlatError::OtherProgram)
    );
    let edited = text.replace("bench-100", "bench-101");
    assert_eq!(
        decode(bytes.clone(), &expect(&edited)),
        Some(FlatError::OtherPolicy)
    );
    let mut magic = bytes.clone();
    magic[0] = b'X';
    assert_eq!(decode(magic, &expect(&text)), Some(FlatError::BadMagic));
    let mut format = bytes.clone();
    format[8] = 99;
    assert_eq!(
        decode(format, &expect(&text)),
        Some(FlatError::OtherFormat(99))
    );
    for len in [0, 10, 111, 112, 500, bytes.len() / 2, bytes.len() - 1] {
        assert_eq!(
            decode(bytes[..len].to_vec(), &expect(&text)),
            Some(FlatError::Truncated),
            "truncated to {len}"
        );
    }
    let mut longer = bytes.clone();
    longer.push(b' ');
    assert_eq!(decode(longer, &expect(&text)), Some(FlatError::Truncated));

    // A generic table is accepted by any program.
    let generic = compile_str(&text, "p.json").unwrap();
    let g = flat::encode(&generic, &text, [1; 32], "ldguard 1");
    assert_eq!(decode(g, &other_program), None);
}

#[test]
fn every_flipped_byte_is_refused() {
    let text = bench_text();
    let bytes = good(&text);
    for at in 0..bytes.len() {
        let mut b = bytes.clone();
        b[at] ^= 0x10;
        let r = flat::decode(leak(b), &expect(&text));
        assert!(r.is_err(), "byte {at} flipped was accepted");
    }
}

/// Damage that keeps a valid checksum (a buggy writer, not a disk): decoding
/// refuses it or yields a table that answers every request without panicking.
#[test]
fn resealed_damage_never_panics() {
    let text = bench_text();
    let bytes = good(&text);
    let mut refused = 0;
    for at in (168..bytes.len() - text.len()).step_by(23) {
        for value in [0x00u8, 0xff, 0x7f, 0x80, 0x01] {
            let mut b = bytes.clone();
            if b[at] == value {
                continue;
            }
            b[at] = value;
            flat::reseal(&mut b);
            match flat::decode(leak(b), &expect(&text)) {
                Err(_) => refused += 1,
                Ok(d) => {
                    for q in requests() {
                        let _ = d.table.decide(&q);
                        if let Some(p) = q.path {
                            let _ = d.table.blocking_rule_under(p);
                        }
                    }
                    for i in 0..d.table.rule_count() as u32 + 2 {
                        let _ = d.table.rule_name(i);
                    }
                }
            }
        }
    }
    assert!(refused > 0);
}

/// The policy file's identity is given back to the reader exactly as
/// written, only when one was recorded, and is covered by the checksum;
/// the text is still handed over for comparison either way.
#[test]
fn the_policy_identity_is_recorded_and_sealed() {
    let text = bench_text();
    let table = compile_str_for_program(&text, "p.json", PROGRAM).unwrap();
    let id = flat::PolicyIdentity {
        dev: 0x801,
        ino: 1 << 40,
        size: text.len() as u64,
        mtime_sec: 1_700_000_000,
        mtime_nsec: 999_999_999,
        ctime_sec: -1,
        ctime_nsec: 1,
    };
    let with = flat::encode_with_identity(&table, &text, [1; 32], "ldguard 1", Some(&id));
    let without = good(&text);
    assert_eq!(with.len(), without.len());
    let seen = |bytes: Vec<u8>| {
        let mut seen = None;
        let r = flat::decode_for(leak(bytes), "ldguard 1", PROGRAM, &mut |t, i| {
            seen = Some(i.copied());
            t == text.as_bytes()
        });
        (r.is_ok(), seen)
    };
    assert_eq!(seen(with.clone()), (true, Some(Some(id))));
    assert_eq!(seen(without), (true, Some(None)));
    // Each byte of the identity is sealed: the table is refused even when
    // the reader takes the changed identity for its file's.
    for at in 112..168 {
        let mut b = with.clone();
        b[at] ^= 1;
        let r = flat::decode_for(leak(b), "ldguard 1", PROGRAM, &mut |_, _| true);
        assert_eq!(r.err(), Some(FlatError::Checksum), "identity byte {at}");
    }
    // A table of the previous format is refused.
    let mut old = with.clone();
    old[8..12].copy_from_slice(&4u32.to_le_bytes());
    flat::reseal(&mut old);
    assert_eq!(
        flat::decode(leak(old), &expect(&text)).err(),
        Some(FlatError::OtherFormat(4))
    );
}
