//! Turning observed paths into path globs: names that change from run to
//! run are generalised, and directories with many siblings are folded.

use std::collections::BTreeMap;

/// Directories whose entries are per-run temporary names.
const TEMP_ROOTS: [&str; 4] = ["/tmp", "/var/tmp", "/dev/shm", "/run/user"];

/// Rewrites the parts of `path` that differ between runs of the same
/// workload into `*`: process and thread ids under `/proc`, descriptor
/// numbers, pseudo-terminal numbers, and random temporary names
/// (`mktemp`'s `tmp.Xq3…`, Python's `tmpk3j_2x9a`, numbered spool files).
/// Characters a glob cannot hold literally (`[]{}`) become `?`.
pub fn generalise(path: &str) -> String {
    let mut segs: Vec<String> = path
        .split('/')
        .skip(1)
        .map(|s| s.replace(['[', ']', '{', '}'], "?"))
        .collect();
    let numeric = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    match segs.first().map(String::as_str) {
        Some("proc") => {
            // /proc/<pid>, /proc/<pid>/task/<tid>, /proc/self/task/<tid>,
            // /proc/*/fd/<n>, /proc/*/fdinfo/<n>
            for i in 1..segs.len() {
                let prev = segs[i - 1].as_str();
                let variable = i == 1 || matches!(prev, "task" | "fd" | "fdinfo" | "map_files");
                if variable && numeric(&segs[i]) {
                    segs[i] = "*".into();
                }
            }
        }
        Some("dev")
            if matches!(segs.get(1).map(String::as_str), Some("pts" | "fd"))
                && segs.len() > 2
                && numeric(&segs[2]) =>
        {
            segs[2] = "*".into();
        }
        _ => {}
    }
    if let Some(root) = TEMP_ROOTS
        .iter()
        .find(|r| path.starts_with(*r) && path.as_bytes().get(r.len()) == Some(&b'/'))
    {
        let depth = root.matches('/').count();
        // /run/user/<uid>: the uid is part of the root.
        let first = if *root == "/run/user" {
            depth + 1
        } else {
            depth
        };
        for (i, seg) in segs.iter_mut().enumerate().skip(first) {
            if let Some(g) = temp_name(seg, i == first) {
                *seg = g;
            }
        }
    }
    format!("/{}", segs.join("/"))
}

/// The glob for a temporary name, if `seg` looks like one. `top`: the
/// entry directly in the temp directory, where programs put their
/// `mkstemp`/`mkdtemp` names.
fn temp_name(seg: &str, top: bool) -> Option<String> {
    let random = |s: &str| {
        let b = s.as_bytes();
        b.len() >= 6
            && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
            && (b.iter().any(u8::is_ascii_digit) as u8
                + b.iter().any(u8::is_ascii_uppercase) as u8
                + b.iter().any(u8::is_ascii_lowercase) as u8
                >= 2)
    };
    if seg.len() >= 3 && seg.bytes().all(|b| b.is_ascii_digit()) {
        return Some("*".into());
    }
    // PREFIX.RANDOM, PREFIX-RANDOM, PREFIX_RANDOM (mktemp, systemd, nginx).
    if let Some(at) = seg.rfind(['.', '-', '_']) {
        let (prefix, tail) = (&seg[..=at], &seg[at + 1..]);
        if random(tail) {
            return Some(format!("{prefix}*"));
        }
    }
    if top {
        // Python's tempfile: `tmp` + 8 characters, letters only at times.
        if let Some(rest) = seg.strip_prefix("tmp") {
            if rest.len() >= 6
                && rest
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || b"_.-".contains(&c))
            {
                return Some("tmp*".into());
            }
        }
    }
    (top && seg.len() >= 8 && random(seg)).then(|| "*".into())
}

/// How observed paths fold into globs.
#[derive(Clone, Copy, Debug)]
pub struct Fold {
    /// A directory with at least this many distinct entries seen becomes
    /// `dir/**` (or `dir/*` when `subtree` is false and no entry has
    /// entries of its own).
    pub siblings: usize,
    /// Directories at fewer segments than this never fold (`/etc/**`
    /// would be far more than a workload needs).
    pub min_depth: usize,
    /// Whether a folded directory covers its whole subtree even when the
    /// entries seen were all plain files.
    pub subtree: bool,
    /// Top-level directories under which nothing folds.
    pub never_under: &'static [&'static str],
}

/// Paths that folded into one glob, with how many there were.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Folded {
    pub glob: String,
    /// The observed (generalised) paths the glob covers.
    pub covers: Vec<String>,
}

#[derive(Default)]
struct Node {
    seen: bool,
    children: BTreeMap<String, Node>,
}

/// Folds `paths` (absolute, generalised) into globs; each input path is
/// covered by exactly one output glob.
pub fn fold<'a>(paths: impl IntoIterator<Item = &'a str>, rule: Fold) -> Vec<Folded> {
    let mut root = Node::default();
    for p in paths {
        let mut n = &mut root;
        for seg in p.split('/').skip(1).filter(|s| !s.is_empty()) {
            n = n.children.entry(seg.to_owned()).or_default();
        }
        n.seen = true;
    }
    let mut out = Vec::new();
    walk(&root, String::new(), 0, rule, &mut out);
    out
}

fn walk(node: &Node, path: String, depth: usize, rule: Fold, out: &mut Vec<Folded>) {
    let protected = path
        .split('/')
        .nth(1)
        .is_some_and(|top| rule.never_under.contains(&top));
    // A per-run temporary directory (already generalised to `tmp.*`)
    // belongs to the workload as a whole.
    let run_temp = !node.children.is_empty() && is_run_temp(&path);
    if run_temp || depth >= rule.min_depth && !protected && node.children.len() >= rule.siblings {
        let flat = node.children.values().all(|c| c.children.is_empty());
        let one_level = flat && !rule.subtree && !run_temp;
        let glob = if one_level {
            format!("{path}/*")
        } else {
            format!("{path}/**")
        };
        let mut covers = Vec::new();
        collect(node, &path, &mut covers);
        // `dir/*` does not cover the directory itself.
        if node.seen && one_level {
            out.push(Folded {
                glob: path.clone(),
                covers: vec![path.clone()],
            });
            covers.retain(|c| *c != path);
        }
        out.push(Folded { glob, covers });
        return;
    }
    if node.seen {
        let p = if path.is_empty() {
            "/".to_owned()
        } else {
            path.clone()
        };
        out.push(Folded {
            glob: p.clone(),
            covers: vec![p],
        });
    }
    for (name, child) in &node.children {
        walk(child, format!("{path}/{name}"), depth + 1, rule, out);
    }
}

/// Whether `path` is a generalised name directly in a temp directory.
fn is_run_temp(path: &str) -> bool {
    path.rsplit_once('/').is_some_and(|(dir, name)| {
        name.contains('*')
            && (TEMP_ROOTS.contains(&dir)
                || dir
                    .strip_prefix("/run/user/")
                    .is_some_and(|uid| uid.bytes().all(|b| b.is_ascii_digit())))
    })
}

fn collect(node: &Node, path: &str, out: &mut Vec<String>) {
    if node.seen {
        out.push(path.to_owned());
    }
    for (name, child) in &node.children {
        collect(child, &format!("{path}/{name}"), out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generalises_per_run_names() {
        for (given, want) in [
            ("/proc/1234/status", "/proc/*/status"),
            ("/proc/self/task/77/comm", "/proc/self/task/*/comm"),
            ("/proc/12/fd/3", "/proc/*/fd/*"),
            (
                "/proc/sys/net/core/somaxconn",
                "/proc/sys/net/core/somaxconn",
            ),
            ("/dev/pts/3", "/dev/pts/*"),
            ("/tmp/tmp.Xq3kZ9aB1c/out/a.txt", "/tmp/tmp.*/out/a.txt"),
            ("/tmp/tmpk3j_2x9a", "/tmp/tmp*"),
            ("/tmp/tmpabcdefgh/x", "/tmp/tmp*/x"),
            ("/tmp/work-7f3a9c21/x", "/tmp/work-*/x"),
            (
                "/tmp/app/client_body_temp/0000000001",
                "/tmp/app/client_body_temp/*",
            ),
            ("/tmp/readme.txt", "/tmp/readme.txt"),
            ("/tmp/nginx", "/tmp/nginx"),
            ("/run/user/1000/tmp.AbC123xyz", "/run/user/1000/tmp.*"),
            ("/etc/tmp.Xq3kZ9aB1c", "/etc/tmp.Xq3kZ9aB1c"),
            ("/srv/a[1]", "/srv/a?1?"),
        ] {
            assert_eq!(generalise(given), want, "{given}");
        }
    }

    const READS: Fold = Fold {
        siblings: 3,
        min_depth: 2,
        subtree: true,
        never_under: &[],
    };

    fn globs(paths: &[&str], rule: Fold) -> Vec<String> {
        fold(paths.iter().copied(), rule)
            .into_iter()
            .map(|f| f.glob)
            .collect()
    }

    #[test]
    fn folds_directories_with_many_entries_but_not_shallow_ones() {
        let paths = [
            "/usr/lib/py/os.py",
            "/usr/lib/py/re.py",
            "/usr/lib/py/enc/utf8.py",
            "/usr/lib/py",
            "/etc/hosts",
            "/etc/passwd",
            "/etc/group",
            "/etc/ssl/certs/a.pem",
        ];
        assert_eq!(
            globs(&paths, READS),
            [
                "/etc/group",
                "/etc/hosts",
                "/etc/passwd",
                "/etc/ssl/certs/a.pem",
                "/usr/lib/py/**"
            ]
        );
        let folded = fold(paths.iter().copied(), READS);
        let py = folded.iter().find(|f| f.glob == "/usr/lib/py/**").unwrap();
        assert_eq!(py.covers.len(), 4, "{py:?}");
    }

    #[test]
    fn tighter_folds_keep_one_level_and_protected_trees() {
        let writes = Fold {
            siblings: 3,
            min_depth: 2,
            subtree: false,
            never_under: &["etc"],
        };
        let paths = [
            "/srv/out/a",
            "/srv/out/b",
            "/srv/out/c",
            "/srv/out",
            "/etc/x/1",
            "/etc/x/2",
            "/etc/x/3",
        ];
        assert_eq!(
            globs(&paths, writes),
            ["/etc/x/1", "/etc/x/2", "/etc/x/3", "/srv/out", "/srv/out/*"]
        );
        // A per-run temporary directory folds whatever it holds.
        let temp = ["/tmp/tmp.*/a", "/tmp/tmp.*", "/tmp/keep/a"];
        assert_eq!(globs(&temp, writes), ["/tmp/keep/a", "/tmp/tmp.*/**"]);
        // A tree of entries folds to the whole subtree.
        let nested = ["/srv/out/a/1", "/srv/out/b", "/srv/out/c"];
        assert_eq!(globs(&nested, writes), ["/srv/out/**"]);
    }
}
