//! Start-up from a compiled table: the first process that parses a policy
//! leaves its table in the cache directory, later processes use it, a table
//! baked next to the policy is used by the first process too, and every
//! kind of missing, damaged or mismatched table falls back to parsing:
//! the program still starts and the policy in force is the right one.

mod common;

use std::path::{Path, PathBuf};

use common::{policy, scratch, Run};
use ldguard::load::table_file::LIBRARY_VERSION;
use ldguard_policy::{compile_str, compile_str_for_program, flat};
use serde_json::json;

/// `/bin/cat`, as the library sees it (`/proc/self/exe`).
fn cat() -> Vec<u8> {
    std::fs::canonicalize("/bin/cat")
        .unwrap()
        .into_os_string()
        .into_encoded_bytes()
}

struct Setup {
    dir: PathBuf,
    secret: String,
    policy_path: PathBuf,
    cache: PathBuf,
    deny_text: String,
    allow_text: String,
}

fn setup(name: &str) -> Setup {
    let dir = scratch(name);
    let secret = dir.join("secret");
    std::fs::write(&secret, "s3cret\n").unwrap();
    let secret = secret.to_str().unwrap().to_owned();
    let deny = policy(
        "enforce",
        &["deny"],
        json!([{"name": "no-secret", "kind": "file", "access": ["read"],
                "path": [&secret], "action": "deny"}]),
    );
    let allow = policy(
        "enforce",
        &["deny"],
        json!([{"name": "other", "kind": "file", "access": ["read"],
                "path": ["/nonexistent/**"], "action": "deny"}]),
    );
    let deny_text = serde_json::to_string_pretty(&deny).unwrap();
    let allow_text = serde_json::to_string_pretty(&allow).unwrap();
    let policy_path = dir.join("policy.json");
    std::fs::write(&policy_path, &deny_text).unwrap();
    let cache = dir.join("cache");
    Setup {
        dir,
        secret,
        policy_path,
        cache,
        deny_text,
        allow_text,
    }
}

impl Setup {
    /// Runs `cat secret` under the library; true when the read was denied.
    fn denied(&self) -> bool {
        let out = Run::new(&self.dir, Some(json!({})))
            .env("LDGUARD_POLICY", self.policy_path.to_str().unwrap())
            .env("LDGUARD_CACHE_DIR", self.cache.to_str().unwrap())
            .cmd(&["/bin/cat", &self.secret]);
        match out.code() {
            0 => {
                assert_eq!(out.stdout, "s3cret\n");
                false
            }
            1 => {
                assert!(out.stderr.contains("Permission denied"), "{}", out.stderr);
                let e = out.one_event();
                assert_eq!(e.rule.as_deref(), Some("no-secret"));
                true
            }
            other => panic!("cat exited {other}: {}", out.stderr),
        }
    }

    /// The one table file in the cache directory.
    fn table(&self) -> PathBuf {
        let dir = self.cache.join("tables");
        let files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(files.len(), 1, "{files:?}");
        files[0].clone()
    }

    fn table_is_good(&self) -> bool {
        let bytes: &'static [u8] =
            Box::leak(std::fs::read(self.table()).unwrap().into_boxed_slice());
        ldguard::load::table_file::check(bytes, self.deny_text.as_bytes(), &cat()).is_ok()
    }

    /// A table of the allow-everything policy that claims to be the deny
    /// policy's: when a process uses it, the secret is readable. Used only
    /// to show which table a process took.
    fn forged(&self, program: Option<&[u8]>, version: &str) -> Vec<u8> {
        let table = match program {
            Some(p) => compile_str_for_program(&self.allow_text, "x", p).unwrap(),
            None => compile_str(&self.allow_text, "x").unwrap(),
        };
        flat::encode(&table, &self.deny_text, [0; 32], version)
    }
}

fn write(path: &Path, bytes: &[u8]) {
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn the_first_process_writes_the_table_and_the_next_ones_use_it() {
    let s = setup("table-reuse");
    assert!(s.denied(), "parsed policy denies");
    assert!(s.table_is_good(), "the first process left a valid table");
    // Prove the second process takes the table rather than parsing: a
    // forged table (allow policy, deny policy's text) is obeyed.
    write(&s.table(), &s.forged(Some(&cat()), LIBRARY_VERSION));
    assert!(!s.denied(), "the cached table was used");
}

#[test]
fn every_bad_table_falls_back_to_parsing() {
    let s = setup("table-damage");
    assert!(s.denied());
    let table = s.table();
    let good = std::fs::read(&table).unwrap();
    let mut cases: Vec<(&str, Option<Vec<u8>>)> = vec![
        ("missing", None),
        ("empty", Some(Vec::new())),
        ("truncated header", Some(good[..60].to_vec())),
        ("truncated payload", Some(good[..good.len() / 2].to_vec())),
        ("one byte short", Some(good[..good.len() - 1].to_vec())),
    ];
    let mut magic = good.clone();
    magic[..8].copy_from_slice(b"NOTTABLE");
    cases.push(("wrong magic", Some(magic)));
    for at in [20, 100, 200, good.len() / 3, good.len() - 5] {
        let mut b = good.clone();
        b[at] ^= 0x10;
        cases.push(("flipped byte", Some(b)));
    }
    // Forged tables that would allow the read, each with one thing wrong.
    cases.push((
        "other library version",
        Some(s.forged(Some(&cat()), "ldguard 0.0.0-other")),
    ));
    cases.push((
        "other program",
        Some(s.forged(Some(b"/usr/bin/head"), LIBRARY_VERSION)),
    ));
    let allow_table = compile_str_for_program(&s.allow_text, "x", &cat()).unwrap();
    cases.push((
        "other policy",
        Some(flat::encode(
            &allow_table,
            &s.allow_text,
            [0; 32],
            LIBRARY_VERSION,
        )),
    ));
    for (what, bytes) in cases {
        match &bytes {
            None => std::fs::remove_file(&table).unwrap(),
            Some(b) => write(&table, b),
        }
        assert!(s.denied(), "{what}: the parsed policy must be in force");
        assert!(
            s.table_is_good(),
            "{what}: the process rewrote a valid table"
        );
    }
}

#[test]
fn a_changed_policy_is_never_paired_with_the_old_table() {
    let s = setup("table-policy-change");
    assert!(s.denied());
    std::fs::write(&s.policy_path, &s.allow_text).unwrap();
    assert!(!s.denied(), "the new policy is in force");
    std::fs::write(&s.policy_path, &s.deny_text).unwrap();
    assert!(s.denied(), "and the old one again");
}

#[test]
fn a_baked_generic_table_is_used_without_a_cache() {
    let s = setup("table-baked");
    // A cache directory that cannot be created: no cached table, none written.
    write(&s.cache, b"not a directory");
    let baked = PathBuf::from(format!(
        "{}{}",
        s.policy_path.display(),
        ldguard::load::table_file::BAKED_SUFFIX
    ));
    write(&baked, &s.forged(None, LIBRARY_VERSION));
    assert!(!s.denied(), "the baked (generic) table was used");
    // Damaged: back to parsing.
    let mut b = std::fs::read(&baked).unwrap();
    let n = b.len();
    b[n / 4] ^= 1;
    write(&baked, &b);
    assert!(s.denied());
    // Writable by others: not trusted.
    write(&baked, &s.forged(None, LIBRARY_VERSION));
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&baked, std::fs::Permissions::from_mode(0o666)).unwrap();
    assert!(s.denied(), "a world-writable table is not used");
}

#[test]
fn a_used_baked_table_is_cached_with_the_policy_identity() {
    let s = setup("table-baked-cached");
    let baked = PathBuf::from(format!(
        "{}{}",
        s.policy_path.display(),
        ldguard::load::table_file::BAKED_SUFFIX
    ));
    write(&baked, &s.forged(None, LIBRARY_VERSION));
    assert!(!s.denied(), "the baked (generic) table was used");
    // Its copy in the cache, for /bin/cat, with the policy's identity.
    let cached = std::fs::read(s.table()).unwrap();
    let id = flat::recorded_identity(&cached).expect("an identity");
    use std::os::unix::fs::MetadataExt;
    let st = std::fs::metadata(&s.policy_path).unwrap();
    assert_eq!(
        (id.dev, id.ino, id.size, id.ctime_sec, id.ctime_nsec),
        (st.dev(), st.ino(), st.size(), st.ctime(), st.ctime_nsec())
    );
    let bytes: &'static [u8] = Box::leak(cached.into_boxed_slice());
    ldguard::load::table_file::check(bytes, s.deny_text.as_bytes(), &cat()).unwrap();
    // The next process takes the cached copy: the baked table gone, the
    // forged table is still the one in force (a parse would deny).
    std::fs::remove_file(&baked).unwrap();
    assert!(!s.denied(), "the cached copy of the baked table was used");
}

#[test]
fn a_baked_table_of_another_policy_is_not_cached() {
    let s = setup("table-baked-other");
    let baked = PathBuf::from(format!(
        "{}{}",
        s.policy_path.display(),
        ldguard::load::table_file::BAKED_SUFFIX
    ));
    let table = compile_str(&s.allow_text, "x").unwrap();
    write(
        &baked,
        &flat::encode(&table, &s.allow_text, [0; 32], LIBRARY_VERSION),
    );
    assert!(s.denied(), "parsed");
    // The parse's own table is the one cached.
    assert!(s.table_is_good());
}
