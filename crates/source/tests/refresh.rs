//! The refresh state machine against a real HTTPS server on loopback with a CA
//! made for the test.

use ldguard_source::testing::{PolicyServer, TestCa};
use ldguard_source::{Location, Origin, RefreshOutcome, Source, SourceConfig, SourceError, Token};
use std::path::Path;
use std::time::Duration;

const GOOD: &str = r#"{"name":"p1","mode":"permissive"}"#;
const GOOD2: &str = r#"{"name":"p2","mode":"enforce"}"#;

/// Stands in for the policy compiler: accepts JSON objects with a name.
fn validate(text: &str) -> Result<String, String> {
    let v: serde_json::Value = serde_json::from_str(text).map_err(|e| format!("1:1: {e}"))?;
    v.get("name")
        .and_then(|n| n.as_str())
        .map(str::to_string)
        .ok_or_else(|| "no name".to_string())
}

struct Fixture {
    ca: TestCa,
    server: PolicyServer,
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new(body: &str, token: Option<&str>) -> Fixture {
        let ca = TestCa::new();
        let server = PolicyServer::start(&ca, body, token);
        let dir = tempfile::tempdir().unwrap();
        ca.write_ca(&dir.path().join("ca.pem"));
        std::fs::write(dir.path().join("token"), "").unwrap();
        Fixture { ca, server, dir }
    }

    fn config(&self, refresh: Duration) -> SourceConfig {
        let mut config = SourceConfig::new(Location::parse(&self.server.url()).unwrap());
        config.cache_dir = Some(self.dir.path().join("cache"));
        config.ca_file = Some(self.dir.path().join("ca.pem"));
        config.token = Token::File(self.dir.path().join("token"));
        config.set_refresh(refresh);
        config
    }

    fn set_token(&self, token: &str) {
        std::fs::write(self.dir.path().join("token"), token).unwrap();
    }
}

fn updated(outcome: RefreshOutcome<String>) -> (String, Origin) {
    match outcome {
        RefreshOutcome::Updated(u) => (u.value, u.origin),
        other => panic!("expected Updated, got {other:?}"),
    }
}

#[test]
fn fetches_over_verified_tls_then_uses_etag() {
    let fx = Fixture::new(GOOD, Some("t0k"));
    fx.set_token("t0k\n");
    let source = Source::new(fx.config(Duration::from_millis(300)));
    assert!(
        source.shared_cache().is_some(),
        "{:?}",
        source.cache_error()
    );

    let (name, origin) = updated(source.refresh(validate));
    assert_eq!(name, "p1");
    assert_eq!(origin, Origin::Server(fx.server.url()));
    // Within the interval nothing is asked.
    assert!(matches!(
        source.refresh(validate),
        RefreshOutcome::Unchanged
    ));
    assert_eq!(fx.server.counts().requests, 1);

    std::thread::sleep(Duration::from_millis(350));
    assert!(matches!(
        source.refresh(validate),
        RefreshOutcome::NotModified
    ));
    let counts = fx.server.counts();
    assert_eq!(
        (counts.requests, counts.full, counts.not_modified),
        (2, 1, 1)
    );
    assert_eq!(source.stats().parses, 1, "a 304 must not re-parse");

    fx.server.set_body(GOOD2.as_bytes());
    std::thread::sleep(Duration::from_millis(350));
    assert_eq!(updated(source.refresh(validate)).0, "p2");
    assert_eq!(source.stats().parses, 2);
}

#[test]
fn without_the_ca_the_server_is_not_trusted() {
    let fx = Fixture::new(GOOD, None);
    let mut config = fx.config(Duration::from_secs(30));
    config.ca_file = None;
    let source = Source::new(config);
    match source.refresh(validate) {
        RefreshOutcome::Failed(SourceError::Transport { reason, .. }) => {
            assert!(reason.to_lowercase().contains("certificate"), "{reason}")
        }
        other => panic!("expected a TLS failure, got {other:?}"),
    }
}

#[test]
fn wrong_token_is_reported_and_the_last_good_policy_kept() {
    let fx = Fixture::new(GOOD, Some("right"));
    fx.set_token("right");
    let refresh = Duration::from_millis(200);
    let source = Source::new(fx.config(refresh));
    assert_eq!(updated(source.refresh(validate)).0, "p1");

    fx.server.set_token(Some("rotated"));
    fx.server.set_body(GOOD2.as_bytes());
    std::thread::sleep(Duration::from_millis(250));
    match source.refresh(validate) {
        RefreshOutcome::Failed(e @ SourceError::Status { code: 401, .. }) => {
            let msg = e.to_string();
            assert!(msg.contains("HTTP 401") && msg.contains("token"), "{msg}");
        }
        other => panic!("expected 401, got {other:?}"),
    }
    // The cache still holds the last good policy for every other process.
    let other = Source::new(fx.config(refresh));
    assert_eq!(other.read_cache(validate).unwrap().unwrap().value, "p1");

    // The mounted secret rotates: the next attempt after the backoff reads it anew.
    fx.set_token("rotated");
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        match source.refresh(validate) {
            RefreshOutcome::Updated(u) => {
                assert_eq!(u.value, "p2");
                break;
            }
            RefreshOutcome::Unchanged => {}
            other => panic!("unexpected {other:?}"),
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no retry after the backoff"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn garbage_is_rejected_once_and_the_last_good_kept() {
    let fx = Fixture::new(GOOD, None);
    let source = Source::new(fx.config(Duration::from_millis(200)));
    assert_eq!(updated(source.refresh(validate)).0, "p1");

    fx.server.set_body(b"<html>502 bad gateway</html>");
    std::thread::sleep(Duration::from_millis(250));
    match source.refresh(validate) {
        RefreshOutcome::Failed(SourceError::Invalid { origin, message }) => {
            assert_eq!(origin, fx.server.url());
            assert!(message.starts_with("1:1"), "{message}");
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
    for _ in 0..3 {
        std::thread::sleep(Duration::from_millis(250));
        let outcome = source.refresh(validate);
        assert!(
            matches!(outcome, RefreshOutcome::NotModified),
            "{outcome:?}"
        );
    }
    let stats = source.stats();
    assert_eq!(
        (stats.rejected, stats.parses),
        (1, 2),
        "the bad answer is parsed once: {stats:?}"
    );
    assert!(fx.server.counts().not_modified >= 3);

    // Another process starting now still gets the last good policy from the cache.
    let fresh = Source::new(fx.config(Duration::from_millis(200)));
    assert_eq!(fresh.read_cache(validate).unwrap().unwrap().value, "p1");
}

#[test]
fn server_down_backs_off_and_cache_survives() {
    let mut fx = Fixture::new(GOOD, None);
    let refresh = Duration::from_millis(300);
    let source = Source::new(fx.config(refresh));
    assert_eq!(updated(source.refresh(validate)).0, "p1");
    fx.server.stop();
    std::thread::sleep(Duration::from_millis(350));
    let outcome = source.refresh(validate);
    assert!(
        matches!(&outcome, RefreshOutcome::Failed(SourceError::Transport { url, .. }) if *url == fx.server.url()),
        "{outcome:?}"
    );
    // Backoff: the next attempt is not before half an interval.
    assert!(matches!(
        source.refresh(validate),
        RefreshOutcome::Unchanged
    ));
    assert_eq!(source.stats().requests, 2);

    // A process starting while the server is down uses the cached policy.
    let starting = Source::new(fx.config(refresh));
    let cached = starting.read_cache(validate).unwrap().unwrap();
    assert_eq!((cached.value.as_str(), cached.fresh), ("p1", false));

    fx.server.restart();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !matches!(source.refresh(validate), RefreshOutcome::NotModified) {
        assert!(std::time::Instant::now() < deadline, "never recovered");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn other_processes_read_the_cache_and_never_wait_for_the_lock() {
    let fx = Fixture::new(GOOD, None);
    let refresh = Duration::from_millis(300);
    let first = Source::new(fx.config(refresh));
    assert_eq!(updated(first.refresh(validate)).0, "p1");

    let second = Source::new(fx.config(refresh));
    let (name, origin) = updated(second.refresh(validate));
    assert_eq!(name, "p1");
    assert!(matches!(origin, Origin::Cache(_)), "{origin:?}");
    assert_eq!(fx.server.counts().requests, 1);

    // Someone else is fetching (holds the lock): a due refresh returns at once.
    fx.server.set_body(GOOD2.as_bytes());
    std::thread::sleep(Duration::from_millis(350));
    let lock = hold_lock(&fx.dir.path().join("cache/fetch.lock"));
    let started = std::time::Instant::now();
    assert!(matches!(
        second.refresh(validate),
        RefreshOutcome::Unchanged
    ));
    assert!(started.elapsed() < Duration::from_millis(100));
    assert_eq!(fx.server.counts().requests, 1);
    drop(lock);
    assert_eq!(updated(second.refresh(validate)).0, "p2");
    // The first one picks it up from the cache without asking the server.
    assert_eq!(
        updated(first.refresh(validate)).1,
        Origin::Cache(fx.dir.path().join("cache"))
    );
    assert_eq!(fx.server.counts().requests, 2);
}

fn hold_lock(path: &Path) -> std::fs::File {
    use std::os::unix::io::AsRawFd;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    // SAFETY: the fd is valid for the lifetime of `file`; flock touches no memory.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    assert_eq!(rc, 0);
    file
}

#[test]
fn a_cache_entry_of_another_source_is_ignored() {
    let fx = Fixture::new(GOOD, None);
    let source = Source::new(fx.config(Duration::from_secs(30)));
    assert_eq!(updated(source.refresh(validate)).0, "p1");
    let mut config = fx.config(Duration::from_secs(30));
    config.location = Location::Http(format!("{}-other", fx.server.url()));
    assert!(Source::new(config).read_cache(validate).unwrap().is_none());
}

#[test]
fn file_sources_are_reread_when_they_change() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("policy.json");
    std::fs::write(&path, GOOD).unwrap();
    let source = Source::new(SourceConfig::new(Location::File(path.clone())));
    assert_eq!(updated(source.refresh(validate)).0, "p1");
    assert!(matches!(
        source.refresh(validate),
        RefreshOutcome::Unchanged
    ));
    std::fs::write(&path, "nope").unwrap();
    assert!(matches!(
        source.refresh(validate),
        RefreshOutcome::Failed(SourceError::Invalid { .. })
    ));
    assert!(
        matches!(source.refresh(validate), RefreshOutcome::Unchanged),
        "reported once"
    );
    std::fs::write(&path, GOOD2).unwrap();
    assert_eq!(updated(source.refresh(validate)).0, "p2");
}

/// Child mode of this test binary: one short "process" doing what the library
/// does at start-up: read the cache, then one refresh.
#[test]
fn child_entry() {
    let Ok(url) = std::env::var("LDGUARD_SOURCE_CHILD_URL") else {
        return;
    };
    let dir = std::env::var("LDGUARD_SOURCE_CHILD_DIR").unwrap();
    let mut config = SourceConfig::new(Location::Http(url));
    config.cache_dir = Some(Path::new(&dir).join("cache"));
    config.ca_file = Some(Path::new(&dir).join("ca.pem"));
    config.set_refresh(Duration::from_secs(20));
    let source = Source::new(config);
    let _ = source.read_cache(validate);
    let _ = source.refresh(validate);
}

#[test]
fn many_processes_cause_one_fetch_per_interval() {
    let fx = Fixture::new(GOOD, None);
    let exe = std::env::current_exe().unwrap();
    let spawn = || {
        std::process::Command::new(&exe)
            .args(["--exact", "child_entry", "--test-threads", "1", "-q"])
            .env("LDGUARD_SOURCE_CHILD_URL", fx.server.url())
            .env("LDGUARD_SOURCE_CHILD_DIR", fx.dir.path())
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    // 60 processes, 6 at a time, racing for the lock on an empty cache.
    for _ in 0..10 {
        let children: Vec<_> = (0..6).map(|_| spawn()).collect();
        for mut c in children {
            assert!(c.wait().unwrap().success());
        }
    }
    assert_eq!(fx.server.counts().requests, 1, "{:?}", fx.server.counts());
    let _ = &fx.ca;
}
