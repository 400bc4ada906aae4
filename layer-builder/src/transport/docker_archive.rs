//! `docker save` archives (`docker-archive:FILE[:NAME:TAG]`): manifest.json
//! lists each image's config and layer files. The source side presents an
//! archive as a Docker schema 2 image; the destination writes layers
//! uncompressed, as `docker save` does.

use crate::error::{Error, Result};
use crate::image::digest::{unwrap_io, HashingReader, HashingWriter, VerifyingReader};
use crate::image::{
    canonical_json, Destination, Family, Output, RawManifest, Source, DOCKER_CONFIG,
};
use crate::progress::Progress;
use oci_spec::image::{Descriptor, Digest, ImageManifestBuilder, MediaType};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// One entry of an archive's manifest.json.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ArchiveEntry {
    pub config: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repo_tags: Option<Vec<String>>,
    pub layers: Vec<String>,
}

pub struct ArchiveSource {
    file: PathBuf,
    name: Option<String>,
    /// member path → (offset, size)
    members: HashMap<String, (u64, u64)>,
    /// blob digest → member path
    by_digest: HashMap<String, String>,
    manifest: RawManifest,
}

fn member_key(p: &str) -> String {
    crate::inspect::rootfs::normalize(p)
}

/// Matches `podman save`'s `localhost/…` and docker's `docker.io/library/…`
/// spellings of the same name.
fn same_name(a: &str, b: &str) -> bool {
    let norm = |s: &str| {
        s.trim_start_matches("docker.io/")
            .trim_start_matches("library/")
            .trim_start_matches("localhost/")
            .to_string()
    };
    a == b || norm(a) == norm(b)
}

impl ArchiveSource {
    pub fn open(file: &Path, name: Option<&str>) -> Result<ArchiveSource> {
        let place = format!("docker-archive:{}", file.display());
        let f = File::open(file).map_err(|e| Error::io(file, "opening the archive", e))?;
        let mut members = HashMap::new();
        let mut ar = tar::Archive::new(BufReader::new(f));
        let mut manifest_json = None;
        for entry in ar
            .entries()
            .map_err(|e| Error::io(file, "reading the archive", e))?
        {
            let mut entry = entry.map_err(|e| Error::io(file, "reading the archive", e))?;
            let path = member_key(&String::from_utf8_lossy(&entry.path_bytes()));
            if path == "manifest.json" {
                let mut s = Vec::new();
                entry
                    .read_to_end(&mut s)
                    .map_err(|e| Error::io(file, "reading manifest.json", e))?;
                manifest_json = Some(s);
                continue;
            }
            if entry.header().entry_type().is_file() {
                members.insert(path, (entry.raw_file_position(), entry.size()));
            }
        }
        let manifest_json = manifest_json.ok_or_else(|| {
            Error::invalid(
                &place,
                "no manifest.json: not a docker-archive (use oci: for OCI layouts)",
            )
        })?;
        let entries: Vec<ArchiveEntry> = serde_json::from_slice(&manifest_json).map_err(|e| {
            Error::invalid(format!("{place}: manifest.json"), format!("malformed: {e}"))
        })?;
        let entry = match name {
            Some(n) => entries
                .iter()
                .find(|e| e.repo_tags.iter().flatten().any(|t| same_name(t, n)))
                .ok_or_else(|| {
                    let all: Vec<&String> = entries
                        .iter()
                        .flat_map(|e| e.repo_tags.iter().flatten())
                        .collect();
                    Error::invalid(
                        format!("{place}:{n}"),
                        format!(
                            "no image named {n} in the archive (it has: {})",
                            all.iter()
                                .map(|s| s.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    )
                })?,
            None => match entries.as_slice() {
                [one] => one,
                many => {
                    return Err(Error::invalid(
                        &place,
                        format!(
                        "the archive holds {} images; name one with docker-archive:FILE:NAME:TAG",
                        many.len()
                    ),
                    ))
                }
            },
        };
        let mut src = ArchiveSource {
            file: file.to_path_buf(),
            name: name
                .map(str::to_string)
                .or_else(|| entry.repo_tags.as_ref().and_then(|t| t.first().cloned())),
            members,
            by_digest: HashMap::new(),
            manifest: RawManifest::new(Vec::new(), None),
        };
        // The archive has no manifest: describe it as a schema 2 image,
        // hashing each member once to learn its digest.
        let (config_desc, _) = src.hash_member(&place, &entry.config, DOCKER_CONFIG)?;
        let mut layers = Vec::new();
        for l in &entry.layers {
            let gzip = src.is_gzip(&place, l)?;
            let (d, _) = src.hash_member(&place, l, Family::Docker.layer(gzip))?;
            layers.push(d);
        }
        let m = ImageManifestBuilder::default()
            .schema_version(2u32)
            .media_type(MediaType::from(Family::Docker.manifest()))
            .config(config_desc)
            .layers(layers)
            .build()
            .map_err(|e| Error::invalid(&place, e.to_string()))?;
        src.manifest = RawManifest::new(
            canonical_json(&m),
            Some(Family::Docker.manifest().to_string()),
        );
        Ok(src)
    }

    fn member(&self, place: &str, name: &str) -> Result<(u64, u64)> {
        self.members.get(&member_key(name)).copied().ok_or_else(|| {
            Error::invalid(
                place,
                format!("manifest.json names {name}, which is not in the archive"),
            )
        })
    }

    fn open_member(&self, place: &str, name: &str) -> Result<std::io::Take<File>> {
        let (off, size) = self.member(place, name)?;
        let mut f =
            File::open(&self.file).map_err(|e| Error::io(&self.file, "opening the archive", e))?;
        f.seek(SeekFrom::Start(off))
            .map_err(|e| Error::io(&self.file, "seeking", e))?;
        Ok(f.take(size))
    }

    fn is_gzip(&self, place: &str, name: &str) -> Result<bool> {
        let mut r = BufReader::new(self.open_member(place, name)?);
        let head = r
            .fill_buf()
            .map_err(|e| Error::io(&self.file, "reading", e))?;
        Ok(head.starts_with(&[0x1f, 0x8b]))
    }

    fn hash_member(
        &mut self,
        place: &str,
        name: &str,
        media_type: &str,
    ) -> Result<(Descriptor, Digest)> {
        let mut r = HashingReader::new(self.open_member(place, name)?);
        std::io::copy(&mut r, &mut std::io::sink())
            .map_err(|e| Error::io(&self.file, "reading", e))?;
        let (digest, size) = r.finish();
        self.by_digest.insert(digest.to_string(), member_key(name));
        Ok((
            Descriptor::new(MediaType::from(media_type), size, digest.clone()),
            digest,
        ))
    }
}

impl Source for ArchiveSource {
    fn describe(&self) -> String {
        format!("docker-archive:{}", self.file.display())
    }

    fn image_name(&self) -> String {
        self.name.clone().unwrap_or_else(|| {
            self.file
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default()
        })
    }

    fn root(&mut self) -> Result<RawManifest> {
        Ok(self.manifest.clone())
    }

    fn manifest(&mut self, desc: &Descriptor) -> Result<RawManifest> {
        Err(Error::invalid(
            self.describe(),
            format!("an archive holds no manifest {}", desc.digest()),
        ))
    }

    fn blob(&mut self, desc: &Descriptor) -> Result<Box<dyn Read + '_>> {
        let place = self.describe();
        let name = self
            .by_digest
            .get(&desc.digest().to_string())
            .cloned()
            .ok_or_else(|| {
                Error::invalid(&place, format!("no member with digest {}", desc.digest()))
            })?;
        let r = self.open_member(&place, &name)?;
        Ok(Box::new(VerifyingReader::new(
            r,
            desc.digest().clone(),
            desc.size(),
            format!("{place} ({name})"),
        )))
    }
}

pub struct ArchiveDestination {
    file: PathBuf,
    name: String,
}

impl ArchiveDestination {
    pub fn new(file: &Path, name: &str) -> ArchiveDestination {
        ArchiveDestination {
            file: file.to_path_buf(),
            name: name.to_string(),
        }
    }
}

fn member_header(size: u64) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o644);
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    h.set_size(size);
    h
}

impl Destination for ArchiveDestination {
    fn describe(&self) -> String {
        format!("docker-archive:{}:{}", self.file.display(), self.name)
    }

    fn write(&mut self, out: &Output, src: &mut dyn Source, progress: &Progress) -> Result<()> {
        let place = self.describe();
        let img = match out {
            Output::Image(i) => i,
            Output::Index { images, .. } => {
                return Err(Error::invalid(
                    &place,
                    format!("a docker archive holds one platform's image but the source has {}; choose one with --platform OS/ARCH", images.len()),
                ))
            }
        };
        let dir = self
            .file
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let tmp = tempfile::NamedTempFile::new_in(dir)
            .map_err(|e| Error::io(dir, "creating a temporary archive", e))?;
        let mut b = tar::Builder::new(std::io::BufWriter::new(tmp.as_file()));
        let config_name = format!("{}.json", img.config_desc.digest().digest());
        b.append_data(
            &mut member_header(img.config.len() as u64),
            &config_name,
            &img.config[..],
        )
        .map_err(|e| Error::io(tmp.path(), "writing", e))?;
        let mut layer_names = Vec::new();
        for l in &img.layers {
            // A tar member needs its size first: decompress to a spool file,
            // checking the result against the config's diff_id.
            let mut spool = tempfile::tempfile_in(dir)
                .map_err(|e| Error::io(dir, "creating a spool file", e))?;
            {
                let raw: Box<dyn Read + '_> = match &l.data {
                    Some(d) => Box::new(&d[..]),
                    None => progress.wrap(
                        format!(
                            "copying {}",
                            crate::transport::oci::short(l.desc.digest().as_ref())
                        ),
                        l.desc.size(),
                        src.blob(&l.desc)?,
                    ),
                };
                let mut r = BufReader::new(raw);
                let gz = r
                    .fill_buf()
                    .map_err(|e| Error::io(dir, "reading", e))?
                    .starts_with(&[0x1f, 0x8b]);
                let mut w = HashingWriter::new(&mut spool);
                let res = if gz {
                    std::io::copy(&mut flate2::bufread::MultiGzDecoder::new(r), &mut w)
                } else {
                    std::io::copy(&mut r, &mut w)
                };
                res.map_err(|e| unwrap_io(&place, "decompressing a layer", e))?;
                let (_, diff_id, _) = w.finish();
                if diff_id != l.diff_id {
                    return Err(Error::Corrupt {
                        place: place.clone(),
                        expected: l.diff_id.to_string(),
                        detail: format!("layer {} uncompresses to {diff_id}", l.desc.digest()),
                    });
                }
            }
            let size = spool
                .seek(SeekFrom::End(0))
                .map_err(|e| Error::io(dir, "seeking", e))?;
            spool
                .seek(SeekFrom::Start(0))
                .map_err(|e| Error::io(dir, "seeking", e))?;
            let name = format!("{}.tar", l.diff_id.digest());
            if !layer_names.contains(&name) {
                b.append_data(&mut member_header(size), &name, &mut spool)
                    .map_err(|e| Error::io(tmp.path(), "writing", e))?;
            }
            layer_names.push(name);
        }
        let manifest = vec![ArchiveEntry {
            config: config_name,
            repo_tags: Some(vec![self.name.clone()]),
            layers: layer_names,
        }];
        let bytes = serde_json::to_vec(&manifest).expect("serializes");
        b.append_data(
            &mut member_header(bytes.len() as u64),
            "manifest.json",
            &bytes[..],
        )
        .map_err(|e| Error::io(tmp.path(), "writing", e))?;
        let mut w = b
            .into_inner()
            .map_err(|e| Error::io(tmp.path(), "writing", e))?;
        w.flush().map_err(|e| Error::io(tmp.path(), "writing", e))?;
        drop(w);
        tmp.as_file()
            .sync_all()
            .map_err(|e| Error::io(tmp.path(), "syncing", e))?;
        set_mode_644(tmp.path());
        tmp.persist(&self.file)
            .map_err(|e| Error::io(&self.file, "renaming the archive into place", e.error))?;
        Ok(())
    }
}

pub fn set_mode_644(p: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o644));
}
