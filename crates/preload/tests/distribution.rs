//! Policy distribution end to end: real programs under the real library
//! (the preload tests' build, or `LDGUARD_TEST_LIB`), a real HTTPS policy server on loopback with
//! a CA made for the test, and the shared cache.
//!
//! Each test has its own directory, cache, server and config, passed with
//! `LDGUARD_CONFIG` (this machine has no `/etc/ldguard/config.json`, so the
//! environment is honoured); the refused-override test builds a system
//! config inside a private mount namespace instead.

mod common;

use common::library;
use ldguard_source::testing::{
    Handler, PolicyServer, Request, Response, Server, ServerConfig, TestCa,
};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A policy that denies reading `DIR/secret*`, in `mode`.
fn policy(mode: &str, dir: &Path) -> String {
    json!({
        "apiVersion": "ldguard.policy/v1",
        "name": format!("dist-{mode}"),
        "mode": mode,
        "log": ["deny", "audit"],
        "defaults": {"file": "allow", "exec": "allow", "network": "allow", "syscall": "allow"},
        "rules": [{
            "name": "no-secrets", "kind": "file", "access": ["read"],
            "path": [format!("{}/secret*", dir.display())], "action": "deny"
        }]
    })
    .to_string()
}

struct Fixture {
    dir: tempfile::TempDir,
    ca: TestCa,
    server: PolicyServer,
}

impl Fixture {
    fn new(mode: &str) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let ca = TestCa::new();
        ca.write_ca(&dir.path().join("ca.pem"));
        std::fs::write(dir.path().join("token"), "tok-1\n").unwrap();
        std::fs::write(dir.path().join("secret"), "s3cret\n").unwrap();
        let server = PolicyServer::start(&ca, &policy(mode, dir.path()), Some("tok-1"));
        Fixture { dir, ca, server }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn serve(&self, mode: &str) {
        self.server
            .set_body(policy(mode, self.dir.path()).as_bytes());
    }

    /// The config file: this server, the test CA and token, a private cache
    /// and events in a file; `extra` overrides or adds fields.
    fn config(&self, extra: Value) -> PathBuf {
        let mut config = json!({
            "policy": self.server.url(),
            "caFile": self.path("ca.pem"),
            "tokenFile": self.path("token"),
            "cacheDir": self.path("cache"),
            "refreshSeconds": 1,
            "events": format!("file:{}", self.path("events.jsonl").display()),
        });
        for (k, v) in extra.as_object().unwrap() {
            config[k] = v.clone();
        }
        let path = self.path("config.json");
        std::fs::write(&path, config.to_string()).unwrap();
        path
    }

    fn command(&self, script: &str) -> Command {
        let mut cmd = Command::new("/bin/bash");
        cmd.arg("-c").arg(script);
        for (k, _) in std::env::vars() {
            if k.starts_with("LDGUARD_") {
                cmd.env_remove(k);
            }
        }
        cmd.env("LD_PRELOAD", library())
            .env("LDGUARD_CONFIG", self.path("config.json"))
            .env("SECRET", self.path("secret"))
            .env("DIR", self.dir.path());
        cmd
    }

    fn events(&self) -> Vec<Value> {
        read_events(&self.path("events.jsonl"))
    }
}

fn read_events(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON event per line"))
        .collect()
}

fn status_messages(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .filter(|e| e["kind"] == "status")
        .map(|e| e["message"].as_str().unwrap_or_default().to_string())
        .collect()
}

const PROBE: &str = r#"for ((i = 0; i < 1200; i++)); do
    if read -r x < "$SECRET" 2>/dev/null; then echo ok; else echo denied; fi
    sleep 0.05
done"#;

/// A long-running bash that tries to read the secret every 50 ms and says
/// whether it could, with the time each answer arrived.
struct Prober {
    child: Child,
    lines: Receiver<(Instant, String)>,
}

impl Prober {
    fn start(fx: &Fixture) -> Prober {
        Prober::start_script(fx, PROBE)
    }

    fn start_script(fx: &Fixture, script: &str) -> Prober {
        let mut child = fx.command(script).stdout(Stdio::piped()).spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send((Instant::now(), line)).is_err() {
                    break;
                }
            }
        });
        Prober { child, lines }
    }

    /// Waits for `want`, dropping other lines; returns when it came.
    fn wait_for(&self, want: &str, limit: Duration) -> Instant {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok((at, line)) if line == want => return at,
                Ok(_) => {}
                Err(_) => panic!("no {want:?} from the prober within {limit:?}"),
            }
        }
    }

    /// Every answer from now for `span`.
    fn answers_for(&self, span: Duration) -> Vec<String> {
        while self.lines.try_recv().is_ok() {}
        let deadline = Instant::now() + span;
        let mut out = Vec::new();
        while let Ok((_, line)) = self
            .lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            out.push(line);
        }
        out
    }

    fn pid(&self) -> u64 {
        u64::from(self.child.id())
    }
}

impl Drop for Prober {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_until(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

const INTERVAL: Duration = Duration::from_secs(1);
/// Scheduling slack on top of one refresh interval (a 2-core shared machine).
const SLACK: Duration = Duration::from_millis(2500);

#[test]
fn permissive_to_enforce_and_back_without_restart() {
    let fx = Fixture::new("permissive");
    fx.config(json!({}));
    let prober = Prober::start(&fx);
    // Permissive: the read succeeds and is reported as a would-be deny.
    wait_until(Duration::from_secs(10), "a permissive deny event", || {
        fx.events().iter().any(|e| {
            e["rule"] == "no-secrets"
                && e["enforced"] == false
                && e["pid"].as_u64() == Some(prober.pid())
        })
    });
    assert!(prober
        .answers_for(Duration::from_millis(300))
        .iter()
        .all(|l| l == "ok"));

    fx.serve("enforce");
    let flipped = Instant::now();
    let denied = prober.wait_for("denied", INTERVAL + SLACK + SLACK);
    let to_enforce = denied - flipped;

    fx.serve("permissive");
    let flipped = Instant::now();
    let allowed = prober.wait_for("ok", INTERVAL + SLACK + SLACK);
    let to_permissive = allowed - flipped;
    eprintln!(
        "mode change picked up after {to_enforce:?} (enforce) and {to_permissive:?} (permissive)"
    );
    assert!(to_enforce <= INTERVAL + SLACK, "{to_enforce:?}");
    assert!(to_permissive <= INTERVAL + SLACK, "{to_permissive:?}");

    // Unchanged policy for a few intervals: only 304s, no new table.
    std::thread::sleep(3 * INTERVAL);
    let pid = prober.pid();
    drop(prober);
    let counts = fx.server.counts();
    eprintln!("server counts: {counts:?}");
    assert_eq!(
        counts.full, 3,
        "one full answer per policy version: {counts:?}"
    );
    assert!(counts.not_modified >= 2, "{counts:?}");
    let events = fx.events();
    // The prober's own denials, permissive then enforced: the same process
    // (no restart). Other processes (each `sleep`) and status notes, which
    // are never enforced, are not the prober's decisions.
    let prober_denials = |enforced: bool| {
        events
            .iter()
            .filter(|e| {
                e["kind"] != "status"
                    && e["rule"] == "no-secrets"
                    && e["pid"].as_u64() == Some(pid)
                    && e["enforced"] == enforced
            })
            .count()
    };
    assert!(
        prober_denials(false) > 0 && prober_denials(true) > 0,
        "the prober ({pid}) denied permissively, then enforced: {} events",
        events.len()
    );
    let swaps = status_messages(&events)
        .into_iter()
        .filter(|m| m.contains("now in force"))
        .count();
    assert!(
        swaps >= 2,
        "each change installed once per process: {swaps}"
    );
}

#[test]
fn a_forked_child_restarts_its_refresher() {
    let fx = Fixture::new("permissive");
    fx.config(json!({}));
    // The loop runs in a subshell: a fork of bash that never execs, so only
    // a refresher restarted after the fork can bring it the new mode.
    let prober = Prober::start_script(&fx, &format!("sleep 2; ( {PROBE} )"));
    prober.wait_for("ok", Duration::from_secs(10));
    fx.serve("enforce");
    let flipped = Instant::now();
    let denied = prober.wait_for("denied", INTERVAL + SLACK + SLACK);
    eprintln!(
        "forked child picked up enforce after {:?}",
        denied - flipped
    );
}

#[test]
fn server_down_at_start_uses_baked_then_cached_policy() {
    let mut fx = Fixture::new("enforce");
    std::fs::write(fx.path("baked.json"), policy("enforce", fx.dir.path())).unwrap();
    fx.server.stop();
    fx.config(json!({"bakedPolicy": fx.path("baked.json")}));
    // `exit $?` keeps bash from exec'ing its last command: the library waits
    // for a first fetch in flight at exit, not at execve, so an exec'd-away
    // fetch would leave only its claim (no lastError, no cached policy).
    let out = fx.command(r#"cat "$SECRET"; exit $?"#).output().unwrap();
    assert!(!out.status.success(), "baked enforce policy must deny");
    assert!(String::from_utf8_lossy(&out.stderr).contains("Permission denied"));

    // That failed attempt backs off the whole container for up to one interval.
    let meta: Value =
        serde_json::from_str(&std::fs::read_to_string(fx.path("cache/cache.json")).unwrap())
            .unwrap();
    assert!(
        meta["meta"]["lastError"]
            .as_str()
            .unwrap()
            .contains("cannot reach policy server"),
        "{meta}"
    );
    let retry_at = meta["meta"]["retryAtMs"].as_u64().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    assert!(
        retry_at <= now + 1000,
        "the first backoff is at most one interval"
    );
    std::thread::sleep(Duration::from_millis(retry_at.saturating_sub(now) + 50));

    // Fill the cache while the server is up, then take it away: the cache wins.
    fx.server.restart();
    fx.config(json!({}));
    let out = fx.command("/bin/true; exit $?").output().unwrap();
    assert!(out.status.success());
    assert!(
        fx.path("cache/cache.json").exists(),
        "the one short process fetched and cached"
    );
    fx.server.stop();
    let out = fx.command(r#"cat "$SECRET""#).output().unwrap();
    assert!(!out.status.success(), "cached enforce policy must deny");
    assert_eq!(fx.server.counts().requests, 1);
}

/// The lines of `/proc/<pid>/maps` that name a file of ours.
fn ldguard_mappings(maps: &str) -> Vec<&str> {
    maps.lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .filter(|f| f.contains("libldguard"))
        .collect()
}

#[test]
fn only_a_process_that_fetches_maps_the_https_client() {
    let fx = Fixture::new("enforce");
    // Long enough that no process started during the test finds the cache due.
    fx.config(json!({"refreshSeconds": 60}));
    // The first process finds no cache, so it fetches: it loads the client.
    let prober = Prober::start(&fx);
    prober.wait_for("denied", INTERVAL + SLACK);
    let maps = std::fs::read_to_string(format!("/proc/{}/maps", prober.pid())).unwrap();
    let mapped = ldguard_mappings(&maps);
    assert!(
        mapped.iter().any(|f| f.ends_with("/libldguard_net.so")),
        "the fetching process maps the HTTPS client: {mapped:?}"
    );
    // A process that lives past its first refresh but finds the cache
    // fresh never sends a request, so it never maps the client.
    let out = fx
        .command(r#"sleep 1.5; cat "/proc/$$/maps"; cat "$SECRET"; exit 0"#)
        .output()
        .unwrap();
    let maps = String::from_utf8_lossy(&out.stdout);
    let mapped = ldguard_mappings(&maps);
    assert!(
        mapped.iter().any(|f| f.ends_with("/libldguard.so")),
        "{maps}"
    );
    assert!(
        !mapped.iter().any(|f| f.ends_with("/libldguard_net.so")),
        "a process that did not fetch maps the HTTPS client: {mapped:?}"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Permission denied"),
        "the cached policy is in force"
    );
    assert_eq!(fx.server.counts().requests, 1);
}

#[test]
fn without_the_https_client_the_baked_policy_stays_and_the_reason_is_recorded() {
    let fx = Fixture::new("permissive");
    // The library alone, as in an image built without libldguard_net.so.
    let alone = fx.path("alone");
    std::fs::create_dir(&alone).unwrap();
    std::fs::copy(library(), alone.join("libldguard.so")).unwrap();
    std::fs::write(fx.path("baked.json"), policy("enforce", fx.dir.path())).unwrap();
    fx.config(json!({"bakedPolicy": fx.path("baked.json")}));
    let out = fx
        .command(r#"cat "$SECRET"; exit $?"#)
        .env("LD_PRELOAD", alone.join("libldguard.so"))
        .output()
        .unwrap();
    assert!(!out.status.success(), "the baked enforce policy denies");
    assert!(String::from_utf8_lossy(&out.stderr).contains("Permission denied"));
    let meta: Value =
        serde_json::from_str(&std::fs::read_to_string(fx.path("cache/cache.json")).unwrap())
            .unwrap();
    let error = meta["meta"]["lastError"].as_str().unwrap_or_default();
    assert!(
        error.contains("libldguard_net.so") && error.contains("cannot be used"),
        "{meta}"
    );
    assert_eq!(fx.server.counts().requests, 0, "nothing was sent");
}

/// `libldguard.so` and `libldguard_net.so` copied into `DIR/name`, the
/// client with `net_mode`.
fn copied_pair(fx: &Fixture, name: &str, net_mode: u32) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let dir = fx.path(name);
    std::fs::create_dir(&dir).unwrap();
    std::fs::copy(library(), dir.join("libldguard.so")).unwrap();
    let net = dir.join("libldguard_net.so");
    std::fs::copy(library().with_file_name("libldguard_net.so"), &net).unwrap();
    std::fs::set_permissions(&net, std::fs::Permissions::from_mode(net_mode)).unwrap();
    dir
}

/// Runs one short process with `preload` and returns the cache's `lastError`.
fn last_error_with(fx: &Fixture, preload: &str, cwd: &Path) -> String {
    let out = fx
        .command(r#"cat "$SECRET"; exit $?"#)
        .env("LD_PRELOAD", preload)
        .current_dir(cwd)
        .output()
        .unwrap();
    assert!(!out.status.success(), "the baked enforce policy denies");
    let meta: Value =
        serde_json::from_str(&std::fs::read_to_string(fx.path("cache/cache.json")).unwrap())
            .unwrap();
    meta["meta"]["lastError"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn the_https_client_is_loaded_only_from_a_trusted_place() {
    let fx = Fixture::new("permissive");
    std::fs::write(fx.path("baked.json"), policy("enforce", fx.dir.path())).unwrap();
    fx.config(json!({"bakedPolicy": fx.path("baked.json")}));

    // A client anyone in its group could have replaced is not loaded.
    let writable = copied_pair(&fx, "writable", 0o775);
    let error = last_error_with(
        &fx,
        writable.join("libldguard.so").to_str().unwrap(),
        fx.dir.path(),
    );
    assert!(error.contains("writable by group or others"), "{error}");
    assert_eq!(fx.server.counts().requests, 0);

    // A library loaded by a relative path does not look for the client:
    // the working directory would choose the code.
    std::fs::remove_dir_all(fx.path("cache")).unwrap();
    let relative = copied_pair(&fx, "relative", 0o755);
    let error = last_error_with(&fx, "./libldguard.so", &relative);
    assert!(error.contains("not by an absolute path"), "{error}");
    assert_eq!(fx.server.counts().requests, 0);

    // The same files, trusted and loaded by an absolute path, fetch.
    std::fs::remove_dir_all(fx.path("cache")).unwrap();
    let out = fx
        .command("/bin/true; exit $?")
        .env("LD_PRELOAD", relative.join("libldguard.so"))
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(fx.server.counts().requests, 1);
}

#[test]
fn garbage_from_the_server_keeps_the_last_good_policy_and_is_reported_once() {
    let fx = Fixture::new("enforce");
    fx.config(json!({}));
    let prober = Prober::start(&fx);
    prober.wait_for("denied", Duration::from_secs(10));
    fx.server
        .set_body(b"{\"apiVersion\": \"ldguard.policy/v1\", \"mode\": \"off\"");
    std::thread::sleep(4 * INTERVAL);
    let answers = prober.answers_for(Duration::from_millis(500));
    assert!(
        !answers.is_empty() && answers.iter().all(|l| l == "denied"),
        "{answers:?}"
    );
    drop(prober);
    let rejected: Vec<String> = status_messages(&fx.events())
        .into_iter()
        .filter(|m| m.contains("rejected"))
        .collect();
    assert_eq!(rejected.len(), 1, "{rejected:#?}");
    assert!(
        rejected[0].contains(&fx.server.url()) && rejected[0].contains("keeping"),
        "{}",
        rejected[0]
    );
    assert!(
        fx.server.counts().not_modified >= 1,
        "the bad answer is not fetched again"
    );
}

#[test]
fn wrong_token_is_reported_and_the_last_good_policy_kept() {
    let fx = Fixture::new("enforce");
    fx.config(json!({}));
    let prober = Prober::start(&fx);
    prober.wait_for("denied", Duration::from_secs(10));
    fx.server.set_token(Some("tok-2"));
    fx.serve("permissive");
    wait_until(Duration::from_secs(6), "a 401 status event", || {
        status_messages(&fx.events())
            .iter()
            .any(|m| m.contains("HTTP 401") && m.contains("token"))
    });
    let answers = prober.answers_for(Duration::from_millis(500));
    assert!(
        answers.iter().all(|l| l == "denied"),
        "last good (enforce) kept: {answers:?}"
    );
    // The mounted secret rotates: picked up at the next attempt, no restart.
    std::fs::write(fx.path("token"), "tok-2").unwrap();
    prober.wait_for("ok", Duration::from_secs(15));
}

#[test]
fn three_hundred_short_processes_fetch_at_most_twice() {
    let fx = Fixture::new("enforce");
    fx.config(json!({"refreshSeconds": 30}));
    let started = Instant::now();
    let out = fx
        .command("for ((i = 0; i < 300; i++)); do /bin/true; done")
        .output()
        .unwrap();
    let took = started.elapsed();
    assert!(out.status.success());
    let counts = fx.server.counts();
    eprintln!("300 processes in {took:?}: {counts:?}");
    assert!(took < Duration::from_secs(30), "all within one interval");
    assert!(counts.requests >= 1 && counts.requests <= 2, "{counts:?}");
    // And they all ran under the served policy.
    let out = fx.command(r#"cat "$SECRET""#).output().unwrap();
    assert!(!out.status.success());
}

/// Runs `script` with `/etc` overlaid so that `/etc/ldguard/config.json` is
/// `config`, in a private mount namespace: the host's /etc is untouched.
fn with_system_config(fx: &Fixture, config: Value, script: &str) -> std::process::Output {
    let upper = fx.path("etc-upper");
    let work = fx.path("etc-work");
    std::fs::create_dir_all(upper.join("ldguard")).unwrap();
    std::fs::create_dir_all(&work).unwrap();
    std::fs::write(upper.join("ldguard/config.json"), config.to_string()).unwrap();
    let outer = format!(
        "mount -t overlay overlay -o lowerdir=/etc,upperdir={},workdir={} /etc && {script}",
        upper.display(),
        work.display()
    );
    let mut cmd = Command::new("unshare");
    cmd.args([
        "--mount",
        "--propagation",
        "private",
        "/bin/bash",
        "-c",
        &outer,
    ]);
    for (k, _) in std::env::vars() {
        if k.starts_with("LDGUARD_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("LIB", library())
        .env("SECRET", fx.path("secret"))
        .env("DIR", fx.dir.path())
        .output()
        .unwrap()
}

#[test]
fn overrides_are_refused_in_an_instrumented_configuration() {
    let fx = Fixture::new("enforce");
    std::fs::write(fx.path("enforce.json"), policy("enforce", fx.dir.path())).unwrap();
    std::fs::write(fx.path("allow.json"), policy("disabled", fx.dir.path())).unwrap();
    std::fs::write(
        fx.path("override.json"),
        json!({"policy": fx.path("allow.json")}).to_string(),
    )
    .unwrap();
    let events = fx.path("events.jsonl");
    let system =
        json!({"policy": fx.path("enforce.json"), "events": format!("file:{}", events.display())});
    let attack = r#"env LD_PRELOAD="$LIB" LDGUARD_MODE=disabled LDGUARD_POLICY="$DIR/allow.json" \
        LDGUARD_CONFIG="$DIR/override.json" LDGUARD_EVENTS=none LDGUARD_TOKEN=x cat "$SECRET""#;
    let out = with_system_config(&fx, system.clone(), attack);
    assert!(
        !out.status.success(),
        "the overrides must not switch enforcement off"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("Permission denied"));
    let notes = status_messages(&read_events(&events));
    assert!(
        notes
            .iter()
            .any(|m| m
                .contains("ignored LDGUARD_CONFIG, LDGUARD_POLICY, LDGUARD_EVENTS, LDGUARD_MODE")),
        "{notes:#?}"
    );

    // The same overrides are honoured when the image allows them.
    let mut open = system;
    open["allowEnvOverride"] = json!(true);
    let out = with_system_config(&fx, open, attack);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// An HTTPS event collector that records every POSTed batch.
struct Collector {
    posts: Arc<Mutex<Vec<Request>>>,
    tls: Arc<ServerConfig>,
    server: Option<Server>,
    port: u16,
}

impl Collector {
    fn start(ca: &TestCa) -> Collector {
        let mut c = Collector {
            posts: Arc::default(),
            tls: ca.server_config.clone(),
            server: None,
            port: 0,
        };
        c.restart();
        c
    }

    fn restart(&mut self) {
        let posts = self.posts.clone();
        let handler: Handler = Arc::new(move |req: &Request| {
            posts.lock().unwrap().push(req.clone());
            Response::new(200, "")
        });
        let server = Server::start_on(self.port, Some(self.tls.clone()), handler);
        self.port = server.port();
        self.server = Some(server);
    }

    fn stop(&mut self) {
        self.server.take();
    }

    fn url(&self) -> String {
        format!("https://127.0.0.1:{}/v1/events", self.port)
    }

    fn events(&self) -> Vec<Value> {
        let posts = self.posts.lock().unwrap();
        posts
            .iter()
            .flat_map(|r| {
                assert_eq!(r.header("Authorization"), Some("Bearer tok-1"));
                serde_json::from_slice::<Vec<Value>>(&r.body).expect("a JSON array per POST")
            })
            .collect()
    }
}

/// The sequence numbers of `secret-N` deny events of `pid`, in arrival order.
fn sequence(events: &[Value], pid: u64) -> Vec<u64> {
    events
        .iter()
        .filter(|e| e["pid"].as_u64() == Some(pid) && e["rule"] == "no-secrets")
        .filter_map(|e| e["target"].as_str()?.rsplit_once("secret-")?.1.parse().ok())
        .collect()
}

fn dropped(events: &[Value], pid: u64) -> u64 {
    events
        .iter()
        .filter(|e| e["pid"].as_u64() == Some(pid))
        .filter_map(|e| e["dropped"].as_u64())
        .sum()
}

const TOTAL: u64 = 15_000;

#[test]
fn http_sink_delivers_every_event_in_order_and_counts_drops() {
    let fx = Fixture::new("permissive");
    let mut collector = Collector::start(&fx.ca);
    std::fs::write(fx.path("baked.json"), policy("permissive", fx.dir.path())).unwrap();
    fx.config(
        json!({"policy": null, "bakedPolicy": fx.path("baked.json"), "events": collector.url()}),
    );

    // Collector up all along: every event arrives, in order.
    let out = fx
        .command(r#"for ((i = 1; i <= 300; i++)); do { read -r x < "$DIR/secret-$i"; } 2>/dev/null; done; echo $$"#)
        .output()
        .unwrap();
    let pid: u64 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    let events = collector.events();
    assert_eq!(sequence(&events, pid), (1..=300).collect::<Vec<_>>());
    assert_eq!(dropped(&events, pid), 0);

    // Collector stopped mid-run, for longer than the sink's buffer (10 000
    // events) lasts, then back before the program exits: what arrives is in
    // order, and what does not is counted.
    collector.posts.lock().unwrap().clear();
    let script = r#"echo $$
        for ((i = 1; i <= TOTAL; i++)); do
            { read -r x < "$DIR/secret-$i"; } 2>/dev/null
            if ((i == 200)); then
                : > "$DIR/phase1"; while [ ! -e "$DIR/phase2" ]; do sleep 0.05; done
            fi
        done
        : > "$DIR/phase3"; while [ ! -e "$DIR/phase4" ]; do sleep 0.05; done"#
        .replace("TOTAL", &TOTAL.to_string());
    let mut child = fx.command(&script).stdout(Stdio::piped()).spawn().unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let pid: u64 = first.trim().parse().unwrap();
    wait_until(Duration::from_secs(20), "phase1", || {
        fx.path("phase1").exists()
    });
    std::thread::sleep(Duration::from_millis(300));
    collector.stop();
    std::fs::write(fx.path("phase2"), "").unwrap();
    wait_until(Duration::from_secs(120), "phase3", || {
        fx.path("phase3").exists()
    });
    collector.restart();
    // The sink now holds a full buffer (10 000 events) to post. At exit the
    // program waits for delivery only for a bounded time (2 s, so that a
    // slow collector cannot hold it up); on a loaded 2-core machine posting
    // the whole backlog can take longer, and what is left at exit is lost
    // uncounted. This half is about the outage, so the program stays up
    // until the collector has everything (the first half covers the exit).
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let events = collector.events();
        let (delivered, lost) = (sequence(&events, pid).len() as u64, dropped(&events, pid));
        if delivered + lost == TOTAL {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "backlog not delivered after the collector came back: \
             {delivered} delivered + {lost} reported dropped != {TOTAL}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    std::fs::write(fx.path("phase4"), "").unwrap();
    assert!(child.wait().unwrap().success());

    let events = collector.events();
    let seq = sequence(&events, pid);
    let lost = dropped(&events, pid);
    eprintln!(
        "collector down mid-run: {} events delivered, {lost} reported dropped",
        seq.len()
    );
    assert!(
        seq.windows(2).all(|w| w[0] < w[1]),
        "in order, no duplicates"
    );
    assert_eq!(
        seq.len() as u64 + lost,
        TOTAL,
        "every event delivered or counted"
    );
    assert!(lost > 0, "the outage was long enough to drop something");
    assert_eq!(seq.first(), Some(&1));
}

/// A vfork child (python's subprocess) whose exec is denied, in a process
/// that has sent no event yet, so has no event pipeline the child could
/// use (and a vfork child must not start a thread): with an HTTP sink its
/// deny record reaches the collector through the parent, not the
/// program's stderr.
#[test]
fn a_vfork_childs_deny_reaches_the_http_collector() {
    let fx = Fixture::new("enforce");
    let collector = Collector::start(&fx.ca);
    let baked = json!({
        "apiVersion": "ldguard.policy/v1", "name": "no-id", "mode": "enforce",
        "log": ["deny"],
        "defaults": {"file": "allow", "exec": "allow", "network": "allow", "syscall": "allow"},
        "rules": [{"name": "no-id", "kind": "exec", "path": ["/usr/bin/id"], "action": "deny"}]
    });
    std::fs::write(fx.path("baked.json"), baked.to_string()).unwrap();
    fx.config(
        json!({"policy": null, "bakedPolicy": fx.path("baked.json"), "events": collector.url()}),
    );
    let out = fx
        .command(
            r#"exec python3 -c '
import os, subprocess
try:
    subprocess.run(["/usr/bin/id"])
    print("ran")
except PermissionError:
    print("denied", os.getpid())
'"#,
        )
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let parent: u64 = stdout
        .strip_prefix("denied ")
        .unwrap_or_else(|| panic!("the exec must be denied: {stdout} {stderr}"))
        .trim()
        .parse()
        .unwrap();
    assert!(
        !stderr.contains("no-id"),
        "the event went to the program's stderr: {stderr}"
    );
    let events = collector.events();
    let denied: Vec<&Value> = events.iter().filter(|e| e["rule"] == "no-id").collect();
    assert_eq!(denied.len(), 1, "{events:#?}");
    assert_eq!(denied[0]["action"], "deny");
    assert_eq!(denied[0]["target"], "/usr/bin/id");
    assert_eq!(
        denied[0]["ppid"].as_u64(),
        Some(parent),
        "made in the child: {:#?}",
        denied[0]
    );
}
