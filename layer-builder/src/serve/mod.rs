//! `ldguard-layer serve`: the instrumenter service. Workers claim queued
//! jobs ("instrument HOST/REPO:TAG with policy P") from ldguard-server, pull
//! the image, add the ldguard layer with the server's address and the
//! policy's latest version baked in as the fallback, push `TAG-layered`
//! (base layers are not uploaded again) and report progress and the result.
//!
//! A claim is a lease the worker renews while it works: when a worker dies,
//! its job goes to another worker once the lease runs out.

pub mod client;
pub mod health;

use crate::error::{Error, Result};
use crate::image::reference::ImageRef;
use crate::instrument::{self, Options};
use crate::payload::runtime_config::PolicyOptions;
use crate::progress::Progress;
use crate::transport::net::NetOptions;
use crate::transport::vault::{KvVersion, VaultConfig};
use crate::transport::{open_destination, open_source, OpenOptions};
use clap::Parser;
use client::{Job, Report, ServerClient};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

/// Run the instrumenter service: claim instrumentation jobs from
/// ldguard-server, instrument the images and push `TAG-layered`.
#[derive(Debug, Parser)]
#[command(name = "ldguard-layer serve", version)]
pub struct ServeArgs {
    /// ldguard-server's URL: jobs come from it, and instrumented images
    /// fetch their policy from it.
    #[arg(long, value_name = "URL")]
    pub server: String,
    /// A file holding an instrumenter token (or an admin token) for --server.
    #[arg(
        long,
        value_name = "FILE",
        required_unless_present = "token_vault_path"
    )]
    pub token_file: Option<PathBuf>,
    /// Instead of --token-file: the Vault secret (in --vault-mount) whose
    /// key `token` holds the instrumenter token.
    #[arg(long, value_name = "PATH", conflicts_with = "token_file")]
    pub token_vault_path: Option<String>,
    /// The server URL written into images, when the containers reach the
    /// server by another address than this service [default: --server].
    #[arg(long, value_name = "URL")]
    pub image_server: Option<String>,
    /// The agent token's path inside the containers
    /// [default: /var/run/secrets/ldguard/token].
    #[arg(long, value_name = "PATH")]
    pub agent_token_file: Option<String>,
    /// Jobs run at once (each worker runs one at a time).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub workers: u32,
    /// How long a claimed job stays with a worker that stops reporting.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(5..=600))]
    pub lease_seconds: u64,
    /// Pause between two looks at an empty queue.
    #[arg(long, default_value_t = 5.0)]
    pub poll_seconds: f64,
    /// Name reported with claims [default: HOSTNAME-PID].
    #[arg(long)]
    pub worker_name: Option<String>,
    /// Serve /healthz and /readyz on this address (e.g. 0.0.0.0:8081).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// Plain HTTP to the registries (the registry hosts should be on this
    /// machine or a trusted network).
    #[arg(long)]
    pub insecure: bool,
    /// CA certificates (*.crt) for the registries, instead of certs.d.
    #[arg(long, value_name = "DIR")]
    pub cert_dir: Option<PathBuf>,
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub retry_times: u32,
    /// Directory holding <arch>-linux-<libc>/libldguard.so.
    #[arg(long, value_name = "DIR")]
    pub lib_dir: Option<PathBuf>,
    /// Vault's address: registry credentials come from its KV engine
    /// [default: VAULT_ADDR; without either, from auth files and credential helpers].
    #[arg(long, value_name = "URL")]
    pub vault_addr: Option<String>,
    /// A file holding the Vault token [default: VAULT_TOKEN].
    #[arg(long, value_name = "FILE")]
    pub vault_token_file: Option<PathBuf>,
    /// The KV secrets engine's mount.
    #[arg(long, default_value = "secret")]
    pub vault_mount: String,
    /// The KV engine's version: 1 or 2.
    #[arg(long, default_value = "2")]
    pub vault_kv: String,
    /// The secret's path under the mount; {registry} is the registry's HOST[:PORT].
    #[arg(long, default_value = "registries/{registry}")]
    pub vault_path: String,
    #[arg(long, default_value = "username")]
    pub vault_username_key: String,
    #[arg(long, default_value = "password")]
    pub vault_password_key: String,
    /// The secret's values are base64-encoded.
    #[arg(long)]
    pub vault_base64: bool,
}

/// Everything a worker needs, shared by all of them.
struct Service {
    server: ServerClient,
    image_server: String,
    agent_token_file: Option<String>,
    vault: Option<VaultConfig>,
    net: NetOptions,
    lib_dir: PathBuf,
    ready: Arc<AtomicBool>,
}

fn log(msg: &str) {
    eprintln!("ldguard-layer serve: {msg}");
}

pub fn run(a: &ServeArgs) -> Result<i32> {
    if !crate::payload::runtime_config::is_url(&a.server) {
        return Err(Error::invalid("--server", "expected an http(s):// URL"));
    }
    let vault_addr = a
        .vault_addr
        .clone()
        .or_else(|| std::env::var("VAULT_ADDR").ok());
    let vault = match &vault_addr {
        Some(addr) if !addr.is_empty() => Some(VaultConfig {
            addr: addr.clone(),
            token: VaultConfig::token_from(a.vault_token_file.as_deref())?,
            mount: a.vault_mount.clone(),
            kv: KvVersion::parse(&a.vault_kv)?,
            path: a.vault_path.clone(),
            username_key: a.vault_username_key.clone(),
            password_key: a.vault_password_key.clone(),
            base64: a.vault_base64,
        }),
        _ => None,
    };
    let token = match (&a.token_file, &a.token_vault_path) {
        (Some(f), _) => std::fs::read_to_string(f)
            .map_err(|e| Error::io(f, "reading the token", e))?
            .trim()
            .to_string(),
        (None, Some(path)) => vault
            .as_ref()
            .ok_or_else(|| {
                Error::invalid(
                    "--token-vault-path",
                    "needs Vault: pass --vault-addr (or set VAULT_ADDR)",
                )
            })?
            .read_value(path, "token")?
            .trim()
            .to_string(),
        (None, None) => unreachable!("clap requires one of them"),
    };
    if token.is_empty() {
        return Err(Error::invalid(
            "the instrumenter token",
            "is empty: write it to --token-file (or the Vault secret's key token)",
        ));
    }
    let lib_dir = crate::payload::library::resolve_lib_dir(a.lib_dir.as_deref())?;
    let image_server = a.image_server.clone().unwrap_or_else(|| a.server.clone());
    // The image options are checked once, before any job is claimed.
    PolicyOptions {
        server: Some(image_server.clone()),
        agent_token_file: a.agent_token_file.clone(),
        ..Default::default()
    }
    .validate()?;
    if !(a.poll_seconds > 0.0 && a.poll_seconds <= 3600.0) {
        return Err(Error::invalid("--poll-seconds", "give 0 < SECONDS <= 3600"));
    }
    let worker = a.worker_name.clone().unwrap_or_else(|| {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "instrumenter".into());
        format!("{host}-{}", std::process::id())
    });
    let ready = Arc::new(AtomicBool::new(false));
    if let Some(addr) = &a.listen {
        let listener = std::net::TcpListener::bind(addr)
            .map_err(|e| Error::invalid("--listen", format!("cannot listen on {addr}: {e}")))?;
        let local = listener
            .local_addr()
            .map_err(|e| Error::invalid("--listen", e.to_string()))?;
        health::spawn(listener, ready.clone());
        // Tests and scripts wait for this line to learn the port.
        println!("listening on http://{local}");
    }
    let service = Arc::new(Service {
        server: ServerClient::new(&a.server, token, worker.clone(), a.lease_seconds),
        image_server,
        agent_token_file: a.agent_token_file.clone(),
        vault,
        net: NetOptions {
            insecure: a.insecure,
            cert_dir: a.cert_dir.clone(),
            retry_times: a.retry_times,
            creds: None,
        },
        lib_dir,
        ready,
    });
    ready_check(&service);
    log(&format!(
        "{worker}: {} worker(s) taking jobs from {}",
        a.workers, a.server
    ));
    let poll = Duration::from_secs_f64(a.poll_seconds);
    let handles: Vec<_> = (0..a.workers)
        .map(|n| {
            let service = service.clone();
            std::thread::spawn(move || worker_loop(&service, n, poll))
        })
        .collect();
    for h in handles {
        let _ = h.join();
    }
    Ok(0)
}

fn ready_check(s: &Service) {
    s.ready.store(s.server.ready(), Ordering::Relaxed);
}

fn worker_loop(s: &Service, n: u32, poll: Duration) {
    loop {
        match s.server.claim() {
            Ok(Some(job)) => {
                s.ready.store(true, Ordering::Relaxed);
                log(&format!(
                    "worker {n}: job {} (attempt {}): {} with policy {}",
                    job.id, job.attempts, job.image, job.policy
                ));
                run_job(s, &job);
            }
            Ok(None) => {
                s.ready.store(true, Ordering::Relaxed);
                std::thread::sleep(poll);
            }
            Err(e) => {
                s.ready.store(false, Ordering::Relaxed);
                log(&format!("worker {n}: cannot claim a job: {e}"));
                std::thread::sleep(poll.max(Duration::from_secs(2)));
            }
        }
    }
}

/// Runs one job, renewing its lease meanwhile, and reports how it ended.
fn run_job(s: &Service, job: &Job) {
    let (stage_tx, stage_rx) = mpsc::channel::<String>();
    let lost_flag = AtomicBool::new(false);
    let lost = &lost_flag;
    let outcome = std::thread::scope(|scope| {
        let heartbeat = scope.spawn(move || {
            let every = Duration::from_secs((s.server.lease_seconds / 3).max(1));
            let mut stage = "claimed".to_string();
            loop {
                match stage_rx.recv_timeout(every) {
                    Ok(next) => stage = next,
                    Err(mpsc::RecvTimeoutError::Timeout) => {}
                    Err(mpsc::RecvTimeoutError::Disconnected) => return,
                }
                match s.server.progress(job.id, &stage) {
                    Ok(Report::Accepted) => {}
                    Ok(Report::Lost(why)) => {
                        log(&format!("job {}: {why}", job.id));
                        lost.store(true, Ordering::Relaxed);
                    }
                    Err(e) => log(&format!("job {}: progress not reported: {e}", job.id)),
                }
            }
        });
        let outcome = instrument_job(s, job, &|stage: &str| {
            log(&format!("job {}: {stage}", job.id));
            let _ = stage_tx.send(stage.to_string());
        });
        drop(stage_tx);
        let _ = heartbeat.join();
        outcome
    });
    if lost_flag.load(Ordering::Relaxed) {
        log(&format!(
            "job {}: another worker holds it now; this result is dropped",
            job.id
        ));
        return;
    }
    let report = match &outcome {
        Ok((digest, destination)) => {
            log(&format!("job {}: pushed {destination} {digest}", job.id));
            s.server.succeeded(job.id, digest, destination)
        }
        Err(e) => {
            log(&format!("job {}: failed: {e}", job.id));
            s.server.failed(job.id, &e.to_string())
        }
    };
    match report {
        Ok(Report::Accepted) => {}
        Ok(Report::Lost(why)) => log(&format!("job {}: result not taken: {why}", job.id)),
        Err(e) => log(&format!("job {}: result not reported: {e}", job.id)),
    }
}

/// The registry options for one host, with its credentials from Vault.
fn open_options(s: &Service, host: &str, stage: &dyn Fn(&str)) -> Result<OpenOptions> {
    let mut net = s.net.clone();
    if let Some(v) = &s.vault {
        stage(&format!("reading the credentials for {host} from Vault"));
        net.creds = Some(v.registry_credentials(host)?);
    }
    Ok(OpenOptions {
        net,
        progress: Progress::disabled(),
    })
}

fn registry_ref(field: &str, text: &str) -> Result<ImageRef> {
    let r = ImageRef::parse(&format!(
        "docker://{}",
        text.strip_prefix("docker://").unwrap_or(text)
    ))?;
    match r {
        ImageRef::Registry(_) => Ok(r),
        _ => Err(Error::invalid(
            field,
            format!("'{text}' is not HOST/REPO:TAG"),
        )),
    }
}

/// Pull, instrument, push: the pushed digest and destination.
fn instrument_job(s: &Service, job: &Job, stage: &dyn Fn(&str)) -> Result<(String, String)> {
    let src_ref = registry_ref("image", &job.image)?;
    let dst_ref = match &job.destination {
        Some(d) => registry_ref("destination", d)?,
        None => src_ref.default_destination("-layered", None)?,
    };
    let (ImageRef::Registry(src_reg), ImageRef::Registry(dst_reg)) = (&src_ref, &dst_ref) else {
        unreachable!("registry_ref returns registry references");
    };
    stage(&format!(
        "fetching policy {} from ldguard-server",
        job.policy
    ));
    let (version, policy) = s.server.policy(&job.policy)?;
    let tmp = tempfile::tempdir()
        .map_err(|e| Error::io(std::env::temp_dir(), "creating a work directory", e))?;
    let policy_file = tmp.path().join("policy.json");
    std::fs::write(
        &policy_file,
        serde_json::to_vec_pretty(&policy).expect("JSON serializes"),
    )
    .map_err(|e| Error::io(&policy_file, "writing the policy", e))?;
    let src_open = open_options(s, &src_reg.host, stage)?;
    let dst_open = if dst_reg.host == src_reg.host {
        OpenOptions {
            net: src_open.net.clone(),
            progress: Progress::disabled(),
        }
    } else {
        open_options(s, &dst_reg.host, stage)?
    };
    let opts = Options {
        lib_dir: s.lib_dir.clone(),
        policy: PolicyOptions {
            // Baked in as the fallback; the library fetches the assigned
            // policy from the server.
            policy: Some(policy_file.display().to_string()),
            server: Some(s.image_server.clone()),
            agent_token_file: s.agent_token_file.clone(),
            ..Default::default()
        },
        platform: None,
        family: None,
        // The name assignments and agent tokens match: HOST/REPO:TAG.
        image_name: Some(
            job.image
                .strip_prefix("docker://")
                .unwrap_or(&job.image)
                .to_string(),
        ),
        progress: Progress::disabled(),
    };
    opts.policy.validate()?;
    opts.policy.load_baked()?;
    stage(&format!("pulling {src_ref}"));
    let mut src = open_source(&src_ref, &src_open)?;
    stage(&format!(
        "instrumenting with policy {} version {version}",
        job.policy
    ));
    let mut dst = open_destination(&dst_ref, &dst_open)?;
    let out = instrument::instrument(src.as_mut(), &opts)?;
    stage(&format!("pushing {dst_ref}"));
    dst.write(&out, src.as_mut(), &dst_open.progress)?;
    Ok((out.root().digest.to_string(), dst.describe()))
}
