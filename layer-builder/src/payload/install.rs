//! `ldguard-layer install`: the same files as the layer, written into a
//! root filesystem from inside a Dockerfile `RUN` step.

use crate::error::{Error, Result};
use crate::inspect::libc::LibcKind;
use crate::inspect::rootfs::{RootFs, ScanDepth};
use crate::payload::layer::{install_into, LayerInputs};
use crate::payload::runtime_config::{ImageIdentity, PolicyOptions, LIBRARY_PATH};
use crate::report::{LibcReport, PlatformReport};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(Debug, Clone)]
pub struct InstallOptions {
    pub root: PathBuf,
    pub lib_dir: PathBuf,
    pub policy: PolicyOptions,
    pub image_name: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InstallReport {
    pub root: String,
    pub platform: PlatformReport,
    pub written: Vec<String>,
    /// For musl: the Dockerfile line the user must add.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_step: Option<String>,
}

/// Runs a trivial program with the new library preloaded; glibc reports a
/// library it cannot load on stderr and carries on, so stderr is checked.
fn trial_load(root: &Path, lib: &Path) -> Result<()> {
    let sh = root.join("bin/sh");
    let out = Command::new(&sh)
        .args(["-c", ":"])
        .env("LD_PRELOAD", lib)
        .output()
        .map_err(|e| Error::io(&sh, "running a trial program", e))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() || stderr.contains("ld.so") || stderr.contains("Error relocating") {
        return Err(Error::refused(
            root.display().to_string(),
            format!(
                "a trial run of /bin/sh with {} preloaded failed ({}): {}",
                lib.display(),
                out.status,
                stderr.trim()
            ),
        ));
    }
    Ok(())
}

pub fn install(o: &InstallOptions) -> Result<InstallReport> {
    o.policy.validate()?;
    let rootfs = RootFs::from_dir(&o.root, ScanDepth::Loader)?;
    let here = std::env::consts::ARCH;
    let libc = crate::inspect::libc::detect(&rootfs, Some(here))
        .or_else(|| crate::inspect::libc::detect(&rootfs, None));
    let oci_arch = libc
        .as_ref()
        .and_then(|l| l.arch)
        .and_then(crate::inspect::elf::oci_from_arch)
        .unwrap_or("unknown");
    let image = o.root.display().to_string();
    let library =
        crate::payload::library::select(&o.lib_dir, &image, &rootfs, libc.as_ref(), oci_arch)?;
    let libc = libc.expect("a selected library implies a libc");
    let baked = o.policy.load_baked()?;
    let identity = o.image_name.clone().map(|name| ImageIdentity {
        name,
        base_digest: None,
    });
    let runtime = o.policy.runtime_config(baked.is_some(), identity);
    let runtime_bytes = runtime.to_bytes();
    let inputs = LayerInputs {
        rootfs: &rootfs,
        libc: libc.kind,
        library: &library.bytes,
        net_library: library.net.as_deref(),
        runtime_config: &runtime_bytes,
        policy: baked.as_ref().map(|b| b.bytes.as_slice()),
        events_dir: runtime.events_dir(),
    };
    let installed_lib = o.root.join(LIBRARY_PATH);
    let live_root = o.root.canonicalize().is_ok_and(|r| r == Path::new("/"));
    let written = install_into(&o.root, &inputs, |written| {
        if live_root && libc.kind == LibcKind::Glibc {
            if let Err(e) = trial_load(&o.root, &installed_lib) {
                for p in written {
                    let _ = std::fs::remove_file(o.root.join(p.trim_start_matches('/')));
                }
                return Err(e);
            }
        }
        Ok(())
    })?;
    let next_step = (libc.kind == LibcKind::Musl).then(|| format!("musl ignores /etc/ld.so.preload: add `ENV LD_PRELOAD=/{LIBRARY_PATH}` to the Dockerfile after this step"));
    Ok(InstallReport {
        root: image,
        platform: PlatformReport {
            platform: format!("linux/{oci_arch}"),
            libc: Some(LibcReport {
                kind: libc.kind,
                version: libc.version.as_ref().map(|v| v.to_string()),
                path: libc.path.clone(),
            }),
            library: Some(library.variant.clone()),
            library_needs_glibc: library.info.glibc_needed.as_ref().map(|v| v.to_string()),
            instrumentable: true,
            ..Default::default()
        },
        written,
        next_step,
    })
}
