//! Command line: `ldguard-layer SRC [DST] …` and `ldguard-layer install …`.

pub mod docs;

use crate::error::{Error, Result};
use crate::image::reference::ImageRef;
use crate::image::Family;
use crate::instrument::{self, Options};
use crate::payload::install::{install, InstallOptions};
use crate::payload::runtime_config::PolicyOptions;
use crate::progress::Progress;
use crate::report::Summary;
use crate::transport::auth::{parse_creds, Credentials};
use crate::transport::net::NetOptions;
use crate::transport::{open_destination, open_source, OpenOptions};
use clap::{Args, Parser, ValueEnum};
use std::ffi::OsString;
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

#[derive(Debug, Args, Clone)]
pub struct PolicyArgs {
    /// Policy: a file (JSON, or YAML named .yaml/.yml; validated and baked
    /// in as JSON at /etc/ldguard/policy.json) or an http(s):// URL the
    /// library fetches.
    #[arg(long, value_name = "FILE|URL")]
    pub policy: Option<String>,
    /// With a URL --policy: a file baked in as the fallback until the first fetch.
    #[arg(long, value_name = "FILE")]
    pub baked_policy: Option<String>,
    /// Event sink: file:/PATH, stderr, none or an http(s):// URL
    /// [default: file:/var/log/ldguard/events.jsonl].
    #[arg(long, value_name = "SINK")]
    pub events: Option<String>,
    /// What the library does while it has no policy: allow or deny [default: allow].
    #[arg(long, value_name = "ACTION")]
    pub on_no_policy: Option<String>,
    /// How often the policy is re-fetched [default: 30].
    #[arg(long, value_name = "SECONDS")]
    pub refresh_seconds: Option<u64>,
    /// Let LDGUARD_* variables override the baked config (test images only:
    /// it lets a process inside the container switch ldguard off).
    #[arg(long)]
    pub allow_env_override: bool,
    /// Directory holding <arch>-linux-<libc>/libldguard.so
    /// [default: LDGUARD_LIB_DIR, <exe dir>/../lib/ldguard, <exe dir>/../dist, /usr/lib/ldguard].
    #[arg(long, value_name = "DIR")]
    pub lib_dir: Option<PathBuf>,
    /// ldguard-server URL: the library fetches its policy for this image
    /// from it and posts its events there.
    #[arg(long, value_name = "URL")]
    pub server: Option<String>,
    /// With --server: the agent token's path inside the container
    /// [default: /var/run/secrets/ldguard/token].
    #[arg(long, value_name = "PATH")]
    pub agent_token_file: Option<String>,
    /// Image name recorded in the runtime config and events [default: the source's name].
    #[arg(long, value_name = "NAME")]
    pub image_name: Option<String>,
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
}

impl PolicyArgs {
    fn options(&self) -> PolicyOptions {
        PolicyOptions {
            policy: self.policy.clone(),
            baked_policy: self.baked_policy.clone(),
            events: self.events.clone(),
            refresh_seconds: self.refresh_seconds,
            on_no_policy: self.on_no_policy.clone(),
            allow_env_override: self.allow_env_override,
            server: self.server.clone(),
            agent_token_file: self.agent_token_file.clone(),
        }
    }
}

/// Instrument a container image with ldguard as one reproducible layer.
///
/// SRC and DST: oci:DIR[:TAG], docker-archive:FILE[:NAME:TAG],
/// docker://HOST/REPO:TAG. DST defaults to SRC with the tag suffixed.
/// Inside a Dockerfile, use `ldguard-layer install` instead.
#[derive(Debug, Parser)]
#[command(
    name = "ldguard-layer",
    version,
    after_help = "ldguard-layer install --help: install into a root filesystem (Dockerfile RUN step)\n\
                  ldguard-layer serve --help: the instrumenter service\n\
                  ldguard-layer completions SHELL: shell completions; ldguard-layer man [DIR]: man pages"
)]
pub struct BuildArgs {
    /// The image to instrument.
    pub src: String,
    /// Where to write the result [default: SRC with the tag suffixed].
    pub dst: Option<String>,
    /// all, or OS/ARCH[/VARIANT] to instrument one platform of an index.
    #[arg(long, value_name = "all|OS/ARCH")]
    pub platform: Option<String>,
    #[arg(long, default_value = "-layered")]
    pub suffix: String,
    /// Write nothing; report libc, architecture, whether the image can be
    /// instrumented and its static executables. Exits 3 when it cannot.
    #[arg(long)]
    pub check: bool,
    /// Plain HTTP to the registry (any host; warns unless it is on this machine).
    #[arg(long)]
    pub insecure: bool,
    /// CA certificates (*.crt) for the registry, instead of
    /// /etc/containers/certs.d/HOST[:PORT]/ (as skopeo's --cert-dir).
    #[arg(long, value_name = "DIR")]
    pub cert_dir: Option<PathBuf>,
    /// A file holding USER:PASSWORD for the registry [default: LDGUARD_LAYER_CREDS,
    /// then auth files and credential helpers].
    #[arg(long, value_name = "FILE")]
    pub creds_file: Option<PathBuf>,
    /// Retries after a connection failure, a timeout or a 429/5xx answer,
    /// with exponential backoff (0.5 s doubling, at most 8 s).
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub retry_times: u32,
    /// No progress output.
    #[arg(long, short)]
    pub quiet: bool,
    #[command(flatten)]
    pub common: PolicyArgs,
}

/// Install ldguard into a root filesystem (for a Dockerfile RUN step).
#[derive(Debug, Parser)]
#[command(name = "ldguard-layer install", version)]
pub struct InstallArgs {
    /// The root filesystem to install into.
    #[arg(long, default_value = "/")]
    pub root: PathBuf,
    #[command(flatten)]
    pub common: PolicyArgs,
}

fn print_json<T: serde::Serialize>(v: &T) {
    println!(
        "{}",
        serde_json::to_string_pretty(v).expect("reports serialize")
    );
}

pub fn main(mut args: Vec<OsString>) -> i32 {
    // `help` and `help install`, as git and podman accept them.
    if args.get(1).is_some_and(|a| a == "help") {
        args.remove(1);
        args.push("--help".into());
    }
    if let Some(code) = crate::cli::docs::dispatch(&args) {
        return code;
    }
    let is_install = args.get(1).is_some_and(|a| a == "install");
    let result = if args.get(1).is_some_and(|a| a == "serve") {
        let mut rest = vec![OsString::from("ldguard-layer serve")];
        rest.extend(args.into_iter().skip(2));
        match crate::serve::ServeArgs::try_parse_from(rest) {
            Ok(a) => crate::serve::run(&a),
            Err(e) => e.exit(),
        }
    } else if is_install {
        let mut rest = vec![OsString::from("ldguard-layer install")];
        rest.extend(args.into_iter().skip(2));
        match InstallArgs::try_parse_from(rest) {
            Ok(a) => run_install(&a),
            Err(e) => e.exit(),
        }
    } else {
        match BuildArgs::try_parse_from(args) {
            Ok(a) => run_build(&a),
            Err(e) => e.exit(),
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("ldguard-layer: {e}");
            e.exit_code()
        }
    }
}

fn run_install(a: &InstallArgs) -> Result<i32> {
    let o = InstallOptions {
        root: a.root.clone(),
        lib_dir: crate::payload::library::resolve_lib_dir(a.common.lib_dir.as_deref())?,
        policy: a.common.options(),
        image_name: a.common.image_name.clone(),
    };
    let r = install(&o)?;
    match a.common.format {
        Format::Json => print_json(&r),
        Format::Text => {
            println!(
                "installed ldguard ({}) into {}",
                r.platform.library.as_deref().unwrap_or("?"),
                r.root
            );
            for w in &r.written {
                println!("  {w}");
            }
            if let Some(n) = &r.next_step {
                println!("next: {n}");
            }
        }
    }
    Ok(0)
}

fn run_build(a: &BuildArgs) -> Result<i32> {
    let src_ref = ImageRef::parse(&a.src)?;
    let policy = a.common.options();
    policy.validate()?;
    if let Some(p) = a.platform.as_deref().filter(|p| *p != "all") {
        let parts = p.split('/').count();
        if !(2..=3).contains(&parts) || p.split('/').any(str::is_empty) {
            return Err(Error::invalid(
                "--platform",
                format!("'{p}' is not all or OS/ARCH[/VARIANT] (e.g. linux/amd64)"),
            ));
        }
    }
    let open = OpenOptions {
        net: NetOptions {
            insecure: a.insecure,
            cert_dir: a.cert_dir.clone(),
            retry_times: a.retry_times,
            creds: registry_creds(a.creds_file.as_deref())?,
        },
        progress: Progress::new(a.quiet || a.common.format == Format::Json),
    };
    let lib_dir = crate::payload::library::resolve_lib_dir(a.common.lib_dir.as_deref());
    let mut src = open_source(&src_ref, &open)?;
    let mut opts = Options {
        // --check reports a missing library directory per platform instead of failing.
        lib_dir: lib_dir
            .as_ref()
            .cloned()
            .unwrap_or_else(|_| PathBuf::from("(no library directory)")),
        policy,
        platform: a.platform.clone(),
        family: None,
        image_name: a.common.image_name.clone(),
        progress: open.progress,
    };
    if a.check {
        if a.dst.is_some() {
            return Err(Error::invalid("--check", "writes nothing; drop DST"));
        }
        let report = instrument::check(src.as_mut(), &opts)?;
        match a.common.format {
            Format::Json => print_json(&report),
            Format::Text => print!("{}", report.to_text()),
        }
        return Ok(if report.platforms.iter().all(|p| p.instrumentable) {
            0
        } else {
            3
        });
    }
    lib_dir?;
    if opts.policy.policy.is_some() || opts.policy.baked_policy.is_some() {
        opts.policy.load_baked()?;
    }
    let dst_ref = match &a.dst {
        Some(d) => ImageRef::parse(d)?,
        None => {
            let resolved = resolved_name(&src_ref, src.as_ref());
            src_ref.default_destination(&a.suffix, resolved.as_deref())?
        }
    };
    opts.family = match dst_ref {
        ImageRef::Oci { .. } => Some(Family::Oci),
        ImageRef::DockerArchive { .. } => Some(Family::Docker),
        ImageRef::Registry(_) => None,
    };
    let mut dst = open_destination(&dst_ref, &open)?;
    let out = instrument::instrument(src.as_mut(), &opts)?;
    dst.write(&out, src.as_mut(), &open.progress)?;
    let images = out.images();
    let summary = Summary {
        source: src.describe(),
        destination: dst.describe(),
        digest: out.root().digest.to_string(),
        media_type: out.root().media_type.clone(),
        base_digest: images
            .first()
            .and_then(|i| serde_json::from_slice::<serde_json::Value>(&i.config).ok())
            .and_then(|c| {
                c["config"]["Labels"][instrument::LABEL_BASE_DIGEST]
                    .as_str()
                    .map(str::to_string)
            })
            .unwrap_or_default(),
        total_size: images
            .iter()
            .map(|i| i.config.len() as u64 + i.layers.iter().map(|l| l.desc.size()).sum::<u64>())
            .sum(),
        platforms: images.iter().map(|i| i.report.clone()).collect(),
    };
    match a.common.format {
        Format::Json => print_json(&summary),
        Format::Text => print!("{}", summary.to_text()),
    }
    Ok(0)
}

/// `--creds-file`, else `LDGUARD_LAYER_CREDS`; `None` leaves it to the auth
/// files and credential helpers.
fn registry_creds(file: Option<&std::path::Path>) -> Result<Option<Credentials>> {
    if let Some(f) = file {
        let text = std::fs::read_to_string(f).map_err(|e| Error::io(f, "reading", e))?;
        return parse_creds(&text, &f.display().to_string()).map(Some);
    }
    match std::env::var("LDGUARD_LAYER_CREDS") {
        Ok(v) if !v.is_empty() => parse_creds(&v, "LDGUARD_LAYER_CREDS").map(Some),
        _ => Ok(None),
    }
}

/// The tag or name a reference without one turned out to have.
fn resolved_name(r: &ImageRef, src: &dyn crate::image::Source) -> Option<String> {
    match r {
        ImageRef::Oci { tag: None, .. } => src
            .image_name()
            .rsplit_once(':')
            .map(|(_, t)| t.to_string()),
        ImageRef::DockerArchive { name: None, .. } => {
            Some(src.image_name()).filter(|n| n.contains(':'))
        }
        _ => None,
    }
}
