//! The builder proper: reads an image (or each image of an index), finds
//! its libc and a library that loads there, and produces the image with the
//! ldguard layer on top (replacing an earlier one).

use crate::error::{Error, Result};
use crate::image::digest::{unwrap_io, HashingReader};
use crate::image::{
    canonical_json, layer_compression, read_blob, Compression, Family, ImageOut, LayerOut, Output,
    RawManifest, Source,
};
use crate::inspect::libc::{self, Libc, LibcKind};
use crate::inspect::rootfs::{RootFs, ScanDepth};
use crate::payload::layer::{self, LayerInputs};
use crate::payload::library::{self, Library};
use crate::payload::runtime_config::{ImageIdentity, PolicyOptions, LIBRARY_PATH};
use crate::report::{BackstopReport, CheckReport, LayerReport, LibcReport, PlatformReport};
use oci_spec::image::{
    Arch, Descriptor, ImageConfiguration, ImageIndex, ImageManifest, ImageManifestBuilder,
    MediaType, Os, Platform, PlatformBuilder,
};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::io::{BufReader, Read};
use std::path::PathBuf;
use std::sync::Arc;

pub const LABEL_INSTRUMENTED: &str = "io.ldguard.instrumented";
pub const LABEL_VERSION: &str = "io.ldguard.version";
/// The diff_id of the ldguard layer: how a re-run finds the layer to replace.
pub const LABEL_LAYER: &str = "io.ldguard.layer";
pub const LABEL_LIBRARY: &str = "io.ldguard.library";
pub const LABEL_BASE_DIGEST: &str = "org.opencontainers.image.base.digest";
pub const LABEL_BASE_NAME: &str = "org.opencontainers.image.base.name";
pub const HISTORY_PREFIX: &str = "ldguard-layer";

#[derive(Debug, Clone)]
pub struct Options {
    pub lib_dir: PathBuf,
    pub policy: PolicyOptions,
    /// `OS/ARCH[/VARIANT]`; None or "all" means every platform.
    pub platform: Option<String>,
    /// The family a destination requires (an OCI layout holds OCI
    /// manifests); None keeps the source's.
    pub family: Option<Family>,
    /// Overrides the image name recorded in the runtime config.
    pub image_name: Option<String>,
    pub progress: crate::progress::Progress,
}

/// What one platform image is made of, and whether it can be served.
struct Analysis {
    raw: RawManifest,
    manifest: ImageManifest,
    config: Value,
    diff_ids: Vec<String>,
    labels: HashMap<String, String>,
    platform: String,
    platform_spec: Platform,
    ldguard_index: Option<usize>,
    rootfs: RootFs,
    libc: Option<Libc>,
    library: Result<Library>,
}

fn platform_string(os: &str, arch: &str, variant: Option<&str>) -> String {
    match variant {
        Some(v) if !v.is_empty() => format!("{os}/{arch}/{v}"),
        _ => format!("{os}/{arch}"),
    }
}

fn platform_matches(want: &str, have: &str) -> bool {
    // linux/arm64 matches linux/arm64/v8.
    have == want || have.starts_with(&format!("{want}/"))
}

fn scan_layer(
    src: &mut dyn Source,
    rootfs: &mut RootFs,
    index: usize,
    desc: &Descriptor,
    diff_id: &str,
    depth: ScanDepth,
    progress: crate::progress::Progress,
) -> Result<()> {
    let place = format!("{} layer {}", src.describe(), desc.digest());
    let compression = layer_compression(&place, desc.media_type().as_ref())?;
    let label = format!(
        "reading {}",
        crate::transport::oci::short(desc.digest().as_ref())
    );
    let raw = progress.wrap(label, desc.size(), src.blob(desc)?);
    let mut buf = BufReader::new(raw);
    let mut hashed: HashingReader<Box<dyn Read + '_>> = match compression {
        Compression::Gzip => {
            HashingReader::new(Box::new(flate2::bufread::MultiGzDecoder::new(&mut buf)))
        }
        Compression::None => HashingReader::new(Box::new(&mut buf)),
    };
    rootfs.apply_layer(index, &mut hashed, depth, &place)?;
    // Read to the end: the digest and the diff_id are only known there.
    std::io::copy(&mut hashed, &mut std::io::sink())
        .map_err(|e| unwrap_io(&place, "reading the layer", e))?;
    let (got, _) = hashed.finish();
    if got.to_string() != diff_id {
        return Err(Error::Corrupt {
            place,
            expected: diff_id.to_string(),
            detail: format!("the layer uncompresses to {got}, not the config's diff_id"),
        });
    }
    Ok(())
}

fn analyze(
    src: &mut dyn Source,
    raw: RawManifest,
    opts: &Options,
    depth: ScanDepth,
) -> Result<Analysis> {
    let place = src.describe();
    let manifest = raw.parse_manifest(&place)?;
    let config_bytes = read_blob(src, manifest.config())?;
    let typed: ImageConfiguration = serde_json::from_slice(&config_bytes).map_err(|e| {
        Error::invalid(
            format!("{place} config {}", manifest.config().digest()),
            format!("malformed image config: {e}"),
        )
    })?;
    let config: Value = serde_json::from_slice(&config_bytes).expect("parsed above");
    let diff_ids = typed.rootfs().diff_ids().clone();
    if diff_ids.len() != manifest.layers().len() {
        return Err(Error::invalid(
            &place,
            format!(
                "the manifest has {} layers but the config lists {} diff_ids",
                manifest.layers().len(),
                diff_ids.len()
            ),
        ));
    }
    let labels = typed.labels_of_config().cloned().unwrap_or_default();
    let ldguard_index = labels
        .get(LABEL_LAYER)
        .and_then(|d| diff_ids.iter().position(|x| x == d));
    let arch = typed.architecture().to_string();
    let os = typed.os().to_string();
    let platform = platform_string(&os, &arch, typed.variant().as_deref());
    let mut pb = PlatformBuilder::default()
        .architecture(typed.architecture().clone())
        .os(typed.os().clone());
    if let Some(v) = typed.variant() {
        pb = pb.variant(v.clone());
    }
    let platform_spec = pb
        .build()
        .map_err(|e| Error::invalid(&place, e.to_string()))?;

    let mut rootfs = RootFs::new();
    for (i, desc) in manifest.layers().iter().enumerate() {
        if Some(i) == ldguard_index {
            continue;
        }
        scan_layer(
            src,
            &mut rootfs,
            i,
            desc,
            &diff_ids[i],
            depth,
            opts.progress,
        )?;
    }
    let want = crate::inspect::elf::arch_from_oci(&arch);
    let libc = libc::detect(&rootfs, want);
    let image = format!("{place} ({platform})");
    let library = if os != "linux" {
        Err(Error::refused(
            &image,
            format!("the image's OS is {os}; ldguard is for Linux images"),
        ))
    } else {
        library::select(&opts.lib_dir, &image, &rootfs, libc.as_ref(), &arch)
    };
    Ok(Analysis {
        raw,
        manifest,
        config,
        diff_ids,
        labels,
        platform,
        platform_spec,
        ldguard_index,
        rootfs,
        libc,
        library,
    })
}

fn report_of(a: &Analysis) -> PlatformReport {
    let variant = a
        .libc
        .as_ref()
        .and_then(|l| l.arch.map(|arch| library::variant_name(arch, l.kind)));
    PlatformReport {
        platform: a.platform.clone(),
        libc: a.libc.as_ref().map(|l| LibcReport {
            kind: l.kind,
            version: l.version.as_ref().map(|v| v.to_string()),
            path: l.path.clone(),
        }),
        library: variant,
        library_needs_glibc: a
            .library
            .as_ref()
            .ok()
            .and_then(|l| l.info.glibc_needed.as_ref().map(|v| v.to_string())),
        instrumentable: a.library.is_ok(),
        reason: a.library.as_ref().err().map(|e| e.to_string()),
        already_instrumented: a.ldguard_index.is_some(),
        ..Default::default()
    }
}

/// Docker and OCI layer types map one to one.
fn layer_type_for(family: Family, media_type: &str) -> String {
    use crate::image::*;
    match media_type {
        OCI_LAYER_GZIP | DOCKER_LAYER_GZIP => family.layer(true).to_string(),
        OCI_LAYER_TAR | DOCKER_LAYER_TAR => family.layer(false).to_string(),
        other => other.to_string(),
    }
}

fn build_image(
    src: &mut dyn Source,
    a: Analysis,
    opts: &Options,
    family: Family,
) -> Result<ImageOut> {
    let mut report = report_of(&a);
    let Analysis {
        raw,
        manifest,
        mut config,
        diff_ids,
        labels,
        platform_spec,
        ldguard_index,
        rootfs,
        libc,
        library,
        ..
    } = a;
    let library = library?;
    let libc = libc.expect("a selected library implies a libc");

    let reinstrument = ldguard_index.is_some();
    let base_digest = labels
        .get(LABEL_BASE_DIGEST)
        .filter(|_| reinstrument)
        .cloned()
        .unwrap_or_else(|| raw.digest.to_string());
    let base_name = labels
        .get(LABEL_BASE_NAME)
        .filter(|_| reinstrument)
        .cloned()
        .unwrap_or_else(|| src.image_name());
    let image_name = opts.image_name.clone().unwrap_or_else(|| base_name.clone());

    let baked = opts.policy.load_baked()?;
    let runtime = opts.policy.runtime_config(
        baked.is_some(),
        Some(ImageIdentity {
            name: image_name,
            base_digest: Some(base_digest.clone()),
        }),
    );
    let runtime_bytes = runtime.to_bytes();
    let built = layer::build(&LayerInputs {
        rootfs: &rootfs,
        libc: libc.kind,
        library: &library.bytes,
        net_library: library.net.as_deref(),
        runtime_config: &runtime_bytes,
        policy: baked.as_ref().map(|b| b.bytes.as_slice()),
        events_dir: runtime.events_dir(),
    })?;

    // Layers: the base's, minus an earlier ldguard layer, plus the new one.
    let mut layers = Vec::new();
    let mut new_diff_ids = Vec::new();
    for (i, d) in manifest.layers().iter().enumerate() {
        if Some(i) == ldguard_index {
            continue;
        }
        let mut d = d.clone();
        d.set_media_type(MediaType::from(
            layer_type_for(family, d.media_type().as_ref()).as_str(),
        ));
        let diff_id = crate::image::digest::parse_digest("diff_id", &diff_ids[i])?;
        new_diff_ids.push(diff_ids[i].clone());
        layers.push(LayerOut {
            desc: d,
            diff_id,
            data: None,
        });
    }
    let gzip = Arc::new(built.gzip);
    layers.push(LayerOut {
        desc: Descriptor::new(
            MediaType::from(family.layer(true)),
            gzip.len() as u64,
            built.digest.clone(),
        ),
        diff_id: built.diff_id.clone(),
        data: Some(gzip.clone()),
    });
    new_diff_ids.push(built.diff_id.to_string());

    edit_config(
        &mut config,
        EditConfig {
            diff_ids: new_diff_ids,
            removed_layer: ldguard_index,
            layer_diff_id: built.diff_id.to_string(),
            library: &library,
            musl: libc.kind == LibcKind::Musl,
            base_digest: &base_digest,
            base_name: &base_name,
        },
    );
    let config_bytes = canonical_json(&config);
    let config_desc = crate::image::descriptor(family.config(), &config_bytes);

    let mut b = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::from(family.manifest()))
        .config(config_desc.clone())
        .layers(layers.iter().map(|l| l.desc.clone()).collect::<Vec<_>>());
    if family == Family::Oci {
        let mut ann = manifest.annotations().clone().unwrap_or_default();
        ann.insert(LABEL_BASE_DIGEST.to_string(), base_digest.clone());
        ann.insert(LABEL_BASE_NAME.to_string(), base_name.clone());
        b = b.annotations(ann);
    }
    let m = b
        .build()
        .map_err(|e| Error::invalid("manifest", e.to_string()))?;
    let bytes = canonical_json(&m);
    let manifest_out = RawManifest::new(bytes, Some(family.manifest().to_string()));
    report.layer = Some(LayerReport {
        digest: built.digest.to_string(),
        diff_id: built.diff_id.to_string(),
        size: gzip.len() as u64,
        uncompressed_size: built.uncompressed_size,
    });
    report.manifest_digest = Some(manifest_out.digest.to_string());
    Ok(ImageOut {
        manifest: manifest_out,
        config: config_bytes,
        config_desc,
        layers,
        platform: Some(platform_spec),
        report,
    })
}

struct EditConfig<'a> {
    diff_ids: Vec<String>,
    removed_layer: Option<usize>,
    layer_diff_id: String,
    library: &'a Library,
    musl: bool,
    base_digest: &'a str,
    base_name: &'a str,
}

/// Changes only what instrumentation means: rootfs, history, labels, and
/// for musl the LD_PRELOAD variable. Unknown fields pass through untouched.
fn edit_config(config: &mut Value, e: EditConfig<'_>) {
    let obj = config
        .as_object_mut()
        .expect("an image config is an object");
    obj.insert(
        "rootfs".into(),
        json!({"type": "layers", "diff_ids": e.diff_ids}),
    );

    let created = obj.get("created").cloned();
    let history = obj.entry("history").or_insert_with(|| json!([]));
    if let Some(h) = history.as_array_mut() {
        let mut removed = false;
        if let Some(idx) = e.removed_layer {
            let mut layer_no = 0;
            let mut pos = None;
            for (i, entry) in h.iter().enumerate() {
                if entry.get("empty_layer").and_then(Value::as_bool) == Some(true) {
                    continue;
                }
                if layer_no == idx {
                    pos = Some(i);
                    break;
                }
                layer_no += 1;
            }
            if let Some(p) = pos.filter(|p| {
                h[*p]
                    .get("created_by")
                    .and_then(Value::as_str)
                    .is_some_and(|c| c.starts_with(HISTORY_PREFIX))
            }) {
                h.remove(p);
                removed = true;
            }
        }
        if e.removed_layer.is_some() && !removed {
            h.retain(|entry| {
                !entry
                    .get("created_by")
                    .and_then(Value::as_str)
                    .is_some_and(|c| c.starts_with(HISTORY_PREFIX))
            });
        }
        let mut entry = json!({
            "created_by": format!("{HISTORY_PREFIX} {}: /{LIBRARY_PATH} ({})", crate::VERSION, e.library.variant),
            "comment": "ldguard runtime security layer",
        });
        if let Some(c) = created {
            entry["created"] = c;
        }
        h.push(entry);
    }

    let cfg = obj.entry("config").or_insert_with(|| json!({}));
    if cfg.is_null() {
        *cfg = json!({});
    }
    let cfg = cfg.as_object_mut().expect("config.config is an object");
    let labels = cfg.entry("Labels").or_insert_with(|| json!({}));
    if labels.is_null() {
        *labels = json!({});
    }
    if let Some(l) = labels.as_object_mut() {
        l.insert(LABEL_INSTRUMENTED.into(), json!("true"));
        l.insert(LABEL_VERSION.into(), json!(crate::VERSION));
        l.insert(LABEL_LAYER.into(), json!(e.layer_diff_id));
        l.insert(LABEL_LIBRARY.into(), json!(e.library.variant));
        l.insert(LABEL_BASE_DIGEST.into(), json!(e.base_digest));
        l.insert(LABEL_BASE_NAME.into(), json!(e.base_name));
    }
    if e.musl {
        // musl ignores /etc/ld.so.preload: the variable is the only way in.
        let ours = format!("/{LIBRARY_PATH}");
        let env = cfg.entry("Env").or_insert_with(|| json!([]));
        if env.is_null() {
            *env = json!([]);
        }
        if let Some(list) = env.as_array_mut() {
            let existing = list
                .iter()
                .position(|v| v.as_str().is_some_and(|s| s.starts_with("LD_PRELOAD=")));
            match existing {
                Some(i) => {
                    let old = list[i]
                        .as_str()
                        .unwrap_or("LD_PRELOAD=")
                        .trim_start_matches("LD_PRELOAD=")
                        .to_string();
                    let rest: Vec<&str> = old
                        .split([':', ' '])
                        .filter(|p| !p.is_empty() && *p != ours)
                        .collect();
                    let mut all = vec![ours.as_str()];
                    all.extend(rest);
                    list[i] = json!(format!("LD_PRELOAD={}", all.join(":")));
                }
                None => list.push(json!(format!("LD_PRELOAD={ours}"))),
            }
        }
    }
}

fn is_attestation(d: &Descriptor) -> bool {
    d.annotations()
        .as_ref()
        .is_some_and(|a| a.contains_key("vnd.docker.reference.type"))
        || d.platform().as_ref().is_some_and(|p| {
            p.os() == &Os::Other("unknown".into())
                || p.architecture() == &Arch::Other("unknown".into())
        })
}

fn desc_platform(d: &Descriptor) -> Option<String> {
    d.platform().as_ref().map(|p| {
        platform_string(
            &p.os().to_string(),
            &p.architecture().to_string(),
            p.variant().as_deref(),
        )
    })
}

fn wanted_platform(opts: &Options) -> Option<&str> {
    opts.platform.as_deref().filter(|p| *p != "all")
}

/// The platform images of an index the options select, with their names.
fn select_children(
    src: &dyn Source,
    index: &ImageIndex,
    opts: &Options,
) -> Result<Vec<(String, Descriptor)>> {
    let children: Vec<(String, Descriptor)> = index
        .manifests()
        .iter()
        .filter(|d| !is_attestation(d))
        .map(|d| {
            (
                desc_platform(d).unwrap_or_else(|| format!("manifest {}", d.digest())),
                d.clone(),
            )
        })
        .collect();
    let chosen: Vec<(String, Descriptor)> = match wanted_platform(opts) {
        Some(w) => children
            .iter()
            .filter(|(p, _)| platform_matches(w, p))
            .cloned()
            .collect(),
        None => children.clone(),
    };
    if chosen.is_empty() {
        let have: Vec<&str> = children.iter().map(|(p, _)| p.as_str()).collect();
        return Err(Error::invalid(
            src.describe(),
            format!(
                "no platform {} in the index (it has: {})",
                wanted_platform(opts).unwrap_or("at all"),
                have.join(", ")
            ),
        ));
    }
    Ok(chosen)
}

fn check_single_platform(src: &dyn Source, a: &Analysis, opts: &Options) -> Result<()> {
    if let Some(w) = wanted_platform(opts) {
        if !platform_matches(w, &a.platform) {
            return Err(Error::invalid(
                src.describe(),
                format!("the image is {}, not {w}", a.platform),
            ));
        }
    }
    Ok(())
}

/// Instruments the image SRC names. Nothing is written here.
pub fn instrument(src: &mut dyn Source, opts: &Options) -> Result<Output> {
    let root = src.root()?;
    if !root.is_index() {
        let family = opts.family.unwrap_or(root.family());
        let a = analyze(src, root, opts, ScanDepth::Loader)?;
        check_single_platform(src, &a, opts)?;
        return Ok(Output::Image(build_image(src, a, opts, family)?));
    }
    let index = root.parse_index(&src.describe())?;
    let family = opts.family.unwrap_or(root.family());
    let chosen = select_children(src, &index, opts)?;
    let mut images = Vec::new();
    for (name, d) in &chosen {
        let child = src.manifest(d)?;
        if child.is_index() {
            return Err(Error::invalid(
                src.describe(),
                format!("{name} is a nested index, which is not supported"),
            ));
        }
        let a = analyze(src, child, opts, ScanDepth::Loader)?;
        let img = build_image(src, a, opts, family).map_err(|e| match e {
            Error::Refused { image, reason } => Error::Refused {
                image: format!("{image}, platform {name}"),
                reason,
            },
            other => other,
        })?;
        images.push((d.clone(), img));
    }
    if wanted_platform(opts).is_some() && images.len() == 1 {
        let (_, img) = images.pop().expect("one image");
        return Ok(Output::Image(img));
    }
    let manifests: Vec<Descriptor> = images
        .iter()
        .map(|(old, img)| {
            let mut d = Descriptor::new(
                MediaType::from(family.manifest()),
                img.manifest.bytes.len() as u64,
                img.manifest.digest.clone(),
            );
            d.set_platform(old.platform().clone());
            if family == Family::Oci {
                d.set_annotations(old.annotations().clone());
            }
            d
        })
        .collect();
    let mut new_index = index.clone();
    new_index.set_media_type(Some(MediaType::from(family.index())));
    new_index.set_manifests(manifests);
    if family == Family::Docker {
        new_index.set_annotations(None);
    }
    let bytes = canonical_json(&new_index);
    Ok(Output::Index {
        index: RawManifest::new(bytes, Some(family.index().to_string())),
        images: images.into_iter().map(|(_, i)| i).collect(),
    })
}

/// `--check`: what each platform has and whether it can be instrumented.
pub fn check(src: &mut dyn Source, opts: &Options) -> Result<CheckReport> {
    let root = src.root()?;
    let mut platforms = Vec::new();
    let children: Vec<RawManifest> = if root.is_index() {
        let index = root.parse_index(&src.describe())?;
        let chosen = select_children(src, &index, opts)?;
        let mut v = Vec::new();
        for (_, d) in chosen {
            v.push(src.manifest(&d)?);
        }
        v
    } else {
        vec![root.clone()]
    };
    for child in children {
        let a = analyze(src, child, opts, ScanDepth::Executables)?;
        if !root.is_index() {
            check_single_platform(src, &a, opts)?;
        }
        let mut r = report_of(&a);
        r.static_executables = Some(a.rootfs.static_executables());
        r.backstop = backstop_report(src, &a, opts)?;
        platforms.push(r);
    }
    Ok(CheckReport {
        image: src.describe(),
        digest: root.digest.to_string(),
        platforms,
    })
}

/// `--check`: the policy that would be baked (`--policy FILE`), else the
/// one an instrumented image already bakes; when it asks for a kernel
/// backstop, the files whose privileges `no_new_privs` takes away.
fn backstop_report(
    src: &mut dyn Source,
    a: &Analysis,
    opts: &Options,
) -> Result<Option<BackstopReport>> {
    let (text, source) = match opts.policy.load_baked()? {
        Some(baked) => {
            let file = opts
                .policy
                .baked_policy
                .as_ref()
                .or(opts.policy.policy.as_ref())
                .cloned()
                .unwrap_or_default();
            (baked.bytes, format!("--policy {file}"))
        }
        None => match baked_in_image(src, a)? {
            Some(bytes) => (
                bytes,
                format!(
                    "/{} of the image",
                    crate::payload::runtime_config::POLICY_PATH
                ),
            ),
            None => return Ok(None),
        },
    };
    let place = source.clone();
    let text = String::from_utf8_lossy(&text);
    let (policy, diags) = ldguard_policy::check_str(&text, &place);
    let Some(policy) = policy else {
        return Err(Error::invalid(
            place,
            format!(
                "the baked policy does not validate:\n{}",
                diags.render(&text)
            ),
        ));
    };
    if !policy.backstop.is_some_and(|b| b.any()) {
        return Ok(None);
    }
    Ok(Some(BackstopReport {
        installed: policy.mode == ldguard_policy::Mode::Enforce,
        mode: policy.mode.to_string(),
        policy: policy.name,
        source,
        privileged_files: a.rootfs.privileged_files(),
    }))
}

/// The policy file in the image's ldguard layer, if it has one.
fn baked_in_image(src: &mut dyn Source, a: &Analysis) -> Result<Option<Vec<u8>>> {
    let Some(i) = a.ldguard_index else {
        return Ok(None);
    };
    let mut layer = RootFs::new();
    scan_layer(
        src,
        &mut layer,
        i,
        &a.manifest.layers()[i],
        &a.diff_ids[i],
        ScanDepth::Loader,
        crate::progress::Progress::new(true),
    )?;
    Ok(layer
        .read(crate::payload::runtime_config::POLICY_PATH)
        .map(|(_, data)| data.to_vec()))
}
