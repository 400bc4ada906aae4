//! The ldguard library to put into an image: found by the image's
//! `<arch>-linux-<libc>` in a library directory, and checked against the
//! image so that it is certain to load there. A preload that fails to load
//! (a newer GLIBC_x.y, a missing DT_NEEDED) breaks every program in the
//! container, so anything doubtful is refused.

use crate::error::{Error, Result};
use crate::inspect::elf::ElfInfo;
use crate::inspect::libc::{library_dirs, Libc, LibcKind};
use crate::inspect::rootfs::RootFs;
use std::path::{Path, PathBuf};

pub const LIB_FILE: &str = "libldguard.so";
/// The library's HTTPS client, shipped next to it when the variant's
/// directory has it (scripts/build-lib builds both). Without it the library
/// works, but cannot fetch an HTTPS policy or send events over HTTP.
pub const NET_LIB_FILE: &str = "libldguard_net.so";

/// The library directory: `--lib-dir`, then LDGUARD_LIB_DIR, then
/// `<exe dir>/../lib/ldguard` (an installed tool), `<exe dir>/../dist` (a
/// build in `target/<profile>/`, whose libraries scripts/build-lib writes to
/// `target/dist`), then `/usr/lib/ldguard` (a package). Nothing depends on
/// where the binary was built: a copied binary behaves the same.
pub fn resolve_lib_dir(explicit: Option<&Path>) -> Result<PathBuf> {
    if let Some(d) = explicit {
        return Ok(d.to_path_buf());
    }
    if let Some(d) = std::env::var_os("LDGUARD_LIB_DIR").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(d));
    }
    let mut candidates = Vec::new();
    if let Ok(exe) = std::env::current_exe() {
        if let Some(dir) = exe.parent() {
            candidates.push(dir.join("../lib/ldguard"));
            // target/debug/ldguard-layer or target/debug/deps/… → target/dist
            candidates.push(dir.join("../dist"));
            candidates.push(dir.join("../../dist"));
        }
    }
    candidates.push(PathBuf::from(SYSTEM_LIB_DIR));
    candidates
        .iter()
        .find(|c| c.is_dir())
        .map(|c| c.canonicalize().unwrap_or_else(|_| c.clone()))
        .ok_or_else(|| {
            Error::invalid(
                "library directory",
                format!(
                    "none found (looked in {}); build the libraries with scripts/build-lib or pass --lib-dir DIR / set LDGUARD_LIB_DIR",
                    candidates.iter().map(|c| c.display().to_string()).collect::<Vec<_>>().join(", ")
                ),
            )
        })
}

/// Where a distribution package puts `<arch>-linux-<libc>/libldguard.so`.
pub const SYSTEM_LIB_DIR: &str = "/usr/lib/ldguard";

#[derive(Debug, Clone)]
pub struct Library {
    /// e.g. `x86_64-linux-gnu`.
    pub variant: String,
    pub path: PathBuf,
    pub bytes: Vec<u8>,
    pub info: ElfInfo,
    /// `NET_LIB_FILE` from the same directory, vetted like the library.
    pub net: Option<Vec<u8>>,
}

pub fn variant_name(arch: &str, libc: LibcKind) -> String {
    format!("{arch}-linux-{}", libc.dir_name())
}

/// Picks and vets the library for an image. `image` names the image in
/// errors; `config_arch` is the architecture the image config declares.
pub fn select(
    lib_dir: &Path,
    image: &str,
    rootfs: &RootFs,
    libc: Option<&Libc>,
    config_arch: &str,
) -> Result<Library> {
    let arch = crate::inspect::elf::arch_from_oci(config_arch)
        .ok_or_else(|| Error::refused(image, format!("architecture '{config_arch}' is not supported (supported: amd64, arm64, 386, arm, ppc64le, s390x, riscv64)")))?;
    let libc = libc.ok_or_else(|| {
        Error::refused(
            image,
            format!("no C library for {arch} found in the image (a static or distroless image?): a preloaded library cannot work there"),
        )
    })?;
    if libc.arch != Some(arch) {
        return Err(Error::refused(
            image,
            format!(
                "the config says {config_arch} but {} is built for {}",
                libc.path,
                libc.arch.unwrap_or("an unknown machine")
            ),
        ));
    }
    let variant = variant_name(arch, libc.kind);
    let path = newer_glibc_build(&lib_dir.join(&variant), libc)
        .unwrap_or_else(|| lib_dir.join(&variant).join(LIB_FILE));
    let bytes = std::fs::read(&path).map_err(|e| {
        Error::refused(
            image,
            format!(
                "it needs the {variant} build of {LIB_FILE}, and {} cannot be read ({e}); build it with scripts/build-lib or point --lib-dir at a directory holding {variant}/{LIB_FILE}",
                path.display()
            ),
        )
    })?;
    let info = ElfInfo::parse(&bytes).map_err(|e| Error::invalid(path.display().to_string(), e))?;
    check_loads(image, &path, &info, libc, rootfs)?;
    // One client for every glibc baseline: it is loaded rarely, and its
    // NEEDED entries exist (as stubs from 2.34 on) in every glibc image.
    let net_path = lib_dir.join(&variant).join(NET_LIB_FILE);
    let net = match std::fs::read(&net_path) {
        Ok(net) => {
            let net_info = ElfInfo::parse(&net)
                .map_err(|e| Error::invalid(net_path.display().to_string(), e))?;
            check_loads(image, &net_path, &net_info, libc, rootfs)?;
            Some(net)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => {
            return Err(Error::refused(
                image,
                format!("{} cannot be read ({e})", net_path.display()),
            ))
        }
    };
    Ok(Library {
        variant,
        path,
        bytes,
        info,
        net,
    })
}

/// glibc baselines newer than 2.17 that scripts/build-lib also builds
/// for, in `<variant>/glibc-<version>/libldguard.so`. From 2.34 on,
/// `pthread_create` and `dlsym` are in libc itself, so that build has no
/// NEEDED `libpthread.so.0` or `libdl.so.2`, whose loading costs every
/// process about 25,000 instructions (BENCHMARKS.md §8).
pub const NEWER_GLIBC_BUILDS: &[&str] = &["2.34"];

/// The build for the newest baseline in [`NEWER_GLIBC_BUILDS`] that the
/// image's glibc has, when the library directory holds it.
fn newer_glibc_build(variant_dir: &Path, libc: &Libc) -> Option<PathBuf> {
    if libc.kind != LibcKind::Glibc {
        return None;
    }
    let have = libc.version.as_ref()?;
    NEWER_GLIBC_BUILDS
        .iter()
        .rev()
        .filter(|v| crate::inspect::elf::Version::parse(v).is_some_and(|v| &v <= have))
        .map(|v| variant_dir.join(format!("glibc-{v}")).join(LIB_FILE))
        .find(|p| p.is_file())
}

/// Refuses a library the image's loader would not load.
pub fn check_loads(
    image: &str,
    path: &Path,
    info: &ElfInfo,
    libc: &Libc,
    rootfs: &RootFs,
) -> Result<()> {
    let lib = path.display();
    if info.machine != libc.machine || info.is_64 != libc.is_64 {
        return Err(Error::refused(
            image,
            format!(
                "{lib} is built for {} but the image's libc {} is {}",
                info.arch().unwrap_or("another machine"),
                libc.path,
                libc.arch.unwrap_or("unknown")
            ),
        ));
    }
    if info.e_type != goblin::elf::header::ET_DYN {
        return Err(Error::refused(
            image,
            format!("{lib} is not a shared object"),
        ));
    }
    match libc.kind {
        LibcKind::Glibc => {
            if info.needed.iter().any(|n| n == "libc.so") {
                return Err(Error::refused(
                    image,
                    format!(
                        "{lib} is a musl build (it needs libc.so) but the image uses glibc {}",
                        libc.path
                    ),
                ));
            }
            if let Some(need) = &info.glibc_needed {
                let have = libc.version.as_ref().ok_or_else(|| {
                    Error::refused(image, format!("the glibc version of {} cannot be read, so it is unknown whether {lib} (needs GLIBC_{need}) loads", libc.path))
                })?;
                if need > have {
                    return Err(Error::refused(
                        image,
                        format!("{lib} needs GLIBC_{need} but the image has glibc {have}; build the library against an older glibc baseline (scripts/build-lib uses 2.17)"),
                    ));
                }
            }
        }
        LibcKind::Musl => {
            if info.glibc_needed.is_some() || info.needed.iter().any(|n| n == "libc.so.6") {
                return Err(Error::refused(
                    image,
                    format!(
                        "{lib} is a glibc build but the image uses musl ({})",
                        libc.path
                    ),
                ));
            }
        }
    }
    let dirs = library_dirs(rootfs, libc.arch);
    for needed in &info.needed {
        let provided_by_loader = libc.kind == LibcKind::Musl && needed == "libc.so";
        let found = needed.contains('/') && rootfs.resolve(needed).is_some()
            || dirs
                .iter()
                .any(|d| rootfs.resolve(&format!("{d}/{needed}")).is_some());
        if !provided_by_loader && !found {
            return Err(Error::refused(
                image,
                format!("{lib} needs {needed}, which is not in the image's library directories ({}); add it to the image or build the library without it", dirs.iter().map(|d| format!("/{d}")).collect::<Vec<_>>().join(", ")),
            ));
        }
    }
    Ok(())
}
