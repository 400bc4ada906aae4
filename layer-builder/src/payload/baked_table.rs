//! The compiled table of a baked policy, written next to it
//! (`/etc/ldguard/policy.json.table`) so that even the first process of a
//! container takes its rule table without parsing the policy. The table is
//! generic (the builder cannot know which programs will run); the library
//! checks that it was compiled from exactly the baked text, for its own
//! version, and otherwise parses the policy as before.

use sha2::Digest as _;

/// Must equal the library's (`ldguard::load::table_file::LIBRARY_VERSION`): both
/// crates take the workspace version.
pub const LIBRARY_VERSION: &str = concat!("ldguard ", env!("CARGO_PKG_VERSION"));

/// Suffix the library looks for next to a policy file.
pub const SUFFIX: &str = ".table";

/// The table file for `policy`, or `None` when it does not compile (the
/// policy was validated before; nothing is baked for an invalid one).
pub fn encode(policy: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(policy).ok()?;
    let table = ldguard_policy::compile_str(text, "baked policy").ok()?;
    let sha: [u8; 32] = sha2::Sha256::digest(policy).into();
    Some(ldguard_policy::flat::encode(
        &table,
        text,
        sha,
        LIBRARY_VERSION,
    ))
}

#[cfg(test)]
mod tests {
    use ldguard_policy::flat::{decode, Expect};

    #[test]
    fn the_table_decodes_for_any_program_and_only_for_its_text() {
        let text = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../policies/web-nginx.json"
        ))
        .unwrap();
        let bytes: &'static [u8] = Box::leak(super::encode(&text).unwrap().into_boxed_slice());
        for program in [&b"/usr/sbin/nginx"[..], b"/bin/sh"] {
            let expect = Expect {
                library_version: super::LIBRARY_VERSION,
                program,
                policy_text: &text,
            };
            let d = decode(bytes, &expect).unwrap();
            assert_eq!(d.table.program(), None);
        }
        let other = Expect {
            library_version: super::LIBRARY_VERSION,
            program: b"/bin/sh",
            policy_text: b"{}",
        };
        assert!(decode(bytes, &other).is_err());
        assert!(super::encode(b"{not a policy").is_none());
    }
}
