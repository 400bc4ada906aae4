//! Image documents shared by every transport: media types of the two
//! families, manifests as bytes plus parsed form, and what the builder
//! produces for a destination to write.

pub mod digest;
pub mod reference;

use crate::error::{Error, Result};
use crate::image::digest::sha256_digest;
use oci_spec::image::{Descriptor, Digest, ImageIndex, ImageManifest, MediaType, Platform};
use std::io::Read;
use std::sync::Arc;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER_TAR: &str = "application/vnd.docker.image.rootfs.diff.tar";
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/// Media-type family: the builder writes what the base used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Oci,
    Docker,
}

impl Family {
    pub fn manifest(self) -> &'static str {
        match self {
            Family::Oci => OCI_MANIFEST,
            Family::Docker => DOCKER_MANIFEST,
        }
    }
    pub fn index(self) -> &'static str {
        match self {
            Family::Oci => OCI_INDEX,
            Family::Docker => DOCKER_LIST,
        }
    }
    pub fn config(self) -> &'static str {
        match self {
            Family::Oci => OCI_CONFIG,
            Family::Docker => DOCKER_CONFIG,
        }
    }
    pub fn layer(self, gzip: bool) -> &'static str {
        match (self, gzip) {
            (Family::Oci, true) => OCI_LAYER_GZIP,
            (Family::Oci, false) => OCI_LAYER_TAR,
            (Family::Docker, true) => DOCKER_LAYER_GZIP,
            (Family::Docker, false) => DOCKER_LAYER_TAR,
        }
    }
}

/// How a layer blob is compressed, from its media type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
}

pub fn layer_compression(place: &str, media_type: &str) -> Result<Compression> {
    match media_type {
        OCI_LAYER_GZIP | DOCKER_LAYER_GZIP | "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
        | "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip" => Ok(Compression::Gzip),
        OCI_LAYER_TAR | DOCKER_LAYER_TAR => Ok(Compression::None),
        m if m.ends_with("+zstd") || m.ends_with(".zstd") => Err(Error::invalid(
            place,
            format!("layer media type {m}: zstd layers are not supported; convert the image to gzip layers (e.g. skopeo copy --dest-compress-format gzip)"),
        )),
        m => Err(Error::invalid(place, format!("unsupported layer media type {m}"))),
    }
}

/// A manifest or index as fetched: the exact bytes (their digest is the
/// image's identity) and the media type it was served with.
#[derive(Debug, Clone)]
pub struct RawManifest {
    pub bytes: Vec<u8>,
    pub media_type: String,
    pub digest: Digest,
}

impl RawManifest {
    pub fn new(bytes: Vec<u8>, media_type: Option<String>) -> RawManifest {
        let digest = sha256_digest(&bytes);
        // The document's own mediaType wins over a transport's guess.
        let inner = serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| {
                v.get("mediaType")
                    .and_then(|m| m.as_str())
                    .map(str::to_string)
            });
        let media_type = inner.or(media_type).unwrap_or_else(|| {
            let is_index = serde_json::from_slice::<serde_json::Value>(&bytes)
                .is_ok_and(|v| v.get("manifests").is_some());
            if is_index { OCI_INDEX } else { OCI_MANIFEST }.to_string()
        });
        RawManifest {
            bytes,
            media_type,
            digest,
        }
    }

    pub fn is_index(&self) -> bool {
        self.media_type == OCI_INDEX || self.media_type == DOCKER_LIST
    }

    pub fn family(&self) -> Family {
        match self.media_type.as_str() {
            DOCKER_MANIFEST | DOCKER_LIST => Family::Docker,
            _ => Family::Oci,
        }
    }

    pub fn parse_manifest(&self, place: &str) -> Result<ImageManifest> {
        if !matches!(self.media_type.as_str(), OCI_MANIFEST | DOCKER_MANIFEST) {
            return Err(Error::invalid(
                place,
                format!("manifest media type {} is not supported (OCI image manifest or Docker schema 2 only)", self.media_type),
            ));
        }
        serde_json::from_slice(&self.bytes)
            .map_err(|e| Error::invalid(place, format!("malformed image manifest: {e}")))
    }

    pub fn parse_index(&self, place: &str) -> Result<ImageIndex> {
        serde_json::from_slice(&self.bytes)
            .map_err(|e| Error::invalid(place, format!("malformed image index: {e}")))
    }
}

/// Serialises an image document with sorted keys, so the same document
/// always has the same digest (oci-spec keeps annotations in a HashMap).
pub fn canonical_json<T: serde::Serialize>(doc: &T) -> Vec<u8> {
    let v = serde_json::to_value(doc).expect("image documents serialize");
    serde_json::to_vec(&sort_keys(v)).expect("values serialize")
}

fn sort_keys(v: serde_json::Value) -> serde_json::Value {
    match v {
        serde_json::Value::Object(m) => {
            let mut entries: Vec<(String, serde_json::Value)> = m.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            serde_json::Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k, sort_keys(v)))
                    .collect(),
            )
        }
        serde_json::Value::Array(a) => {
            serde_json::Value::Array(a.into_iter().map(sort_keys).collect())
        }
        other => other,
    }
}

pub fn descriptor(media_type: &str, data: &[u8]) -> Descriptor {
    Descriptor::new(
        MediaType::from(media_type),
        data.len() as u64,
        sha256_digest(data),
    )
}

/// Where an image's content comes from.
pub trait Source {
    /// The reference as the user wrote it, for messages.
    fn describe(&self) -> String;
    /// A human name for the image (`shop/web:1.4`), recorded in the config.
    fn image_name(&self) -> String;
    /// The manifest or index the reference points at.
    fn root(&mut self) -> Result<RawManifest>;
    /// A manifest an index refers to, verified against its descriptor.
    fn manifest(&mut self, desc: &Descriptor) -> Result<RawManifest>;
    /// A blob's content; reading it to the end fails if it does not match
    /// the descriptor.
    fn blob(&mut self, desc: &Descriptor) -> Result<Box<dyn Read + '_>>;
    /// A registry source, for cross-repository mounts.
    fn registry(&self) -> Option<&crate::image::reference::RegistryRef> {
        None
    }
}

pub fn read_blob(src: &mut dyn Source, desc: &Descriptor) -> Result<Vec<u8>> {
    let place = src.describe();
    let mut r = src.blob(desc)?;
    let mut v = Vec::new();
    r.read_to_end(&mut v)
        .map_err(|e| crate::image::digest::unwrap_io(&place, "reading a blob", e))?;
    Ok(v)
}

/// A layer of an output image: reused from the source, or made here.
#[derive(Debug, Clone)]
pub struct LayerOut {
    pub desc: Descriptor,
    pub diff_id: Digest,
    pub data: Option<Arc<Vec<u8>>>,
}

#[derive(Debug, Clone)]
pub struct ImageOut {
    pub manifest: RawManifest,
    pub config: Vec<u8>,
    pub config_desc: Descriptor,
    pub layers: Vec<LayerOut>,
    pub platform: Option<Platform>,
    pub report: crate::report::PlatformReport,
}

#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)] // one per run
pub enum Output {
    Image(ImageOut),
    Index {
        index: RawManifest,
        images: Vec<ImageOut>,
    },
}

impl Output {
    pub fn root(&self) -> &RawManifest {
        match self {
            Output::Image(i) => &i.manifest,
            Output::Index { index, .. } => index,
        }
    }
    pub fn images(&self) -> Vec<&ImageOut> {
        match self {
            Output::Image(i) => vec![i],
            Output::Index { images, .. } => images.iter().collect(),
        }
    }
}

/// Where the result goes. Writes leave nothing half-written: blobs first
/// (each to a temporary name, then renamed), the tag or index last.
pub trait Destination {
    fn describe(&self) -> String;
    fn write(
        &mut self,
        out: &Output,
        src: &mut dyn Source,
        progress: &crate::progress::Progress,
    ) -> Result<()>;
}
