//! OCI image layouts (`oci:DIR[:TAG]`): blobs under blobs/sha256, the tag as
//! an `org.opencontainers.image.ref.name` annotation in index.json.

use crate::error::{Error, Result};
use crate::image::digest::{hex_of, unwrap_io, VerifyingReader};
use crate::image::{canonical_json, Destination, Output, RawManifest, Source, OCI_INDEX};
use crate::progress::Progress;
use oci_spec::image::{Descriptor, ImageIndex, MediaType};
use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

pub struct OciSource {
    dir: PathBuf,
    tag: Option<String>,
    entry: Descriptor,
}

fn blob_path(dir: &Path, desc: &Descriptor) -> PathBuf {
    dir.join("blobs")
        .join(desc.digest().algorithm().as_ref())
        .join(hex_of(desc.digest()))
}

fn read_index(dir: &Path) -> Result<ImageIndex> {
    let p = dir.join("index.json");
    let bytes = std::fs::read(&p).map_err(|e| Error::io(&p, "reading the layout index", e))?;
    serde_json::from_slice(&bytes).map_err(|e| {
        Error::invalid(
            p.display().to_string(),
            format!("malformed index.json: {e}"),
        )
    })
}

impl OciSource {
    pub fn open(dir: &Path, tag: Option<&str>) -> Result<OciSource> {
        let place = format!("oci:{}", dir.display());
        if !dir.join("oci-layout").is_file() {
            return Err(Error::invalid(&place, "not an OCI image layout (no oci-layout file); create one with e.g. `skopeo copy … oci:DIR:TAG`"));
        }
        let index = read_index(dir)?;
        let tagged = |d: &&Descriptor| {
            d.annotations()
                .as_ref()
                .and_then(|a| a.get(REF_NAME))
                .map(String::as_str)
                == tag
        };
        let entry = match tag {
            Some(t) => index
                .manifests()
                .iter()
                .find(tagged)
                .cloned()
                .ok_or_else(|| {
                    let tags: Vec<&str> = index
                        .manifests()
                        .iter()
                        .filter_map(|d| {
                            d.annotations()
                                .as_ref()
                                .and_then(|a| a.get(REF_NAME))
                                .map(String::as_str)
                        })
                        .collect();
                    Error::invalid(
                        format!("{place}:{t}"),
                        format!(
                            "no image tagged '{t}' in the layout (tags: {})",
                            if tags.is_empty() {
                                "none".into()
                            } else {
                                tags.join(", ")
                            }
                        ),
                    )
                })?,
            None => match index.manifests().as_slice() {
                [one] => one.clone(),
                many => {
                    return Err(Error::invalid(
                        &place,
                        format!(
                            "the layout holds {} images; name one with oci:DIR:TAG",
                            many.len()
                        ),
                    ));
                }
            },
        };
        Ok(OciSource {
            dir: dir.to_path_buf(),
            tag: tag.map(str::to_string),
            entry,
        })
    }

    /// The tag of the selected image (its ref.name annotation).
    pub fn tag(&self) -> Option<String> {
        self.tag.clone().or_else(|| {
            self.entry
                .annotations()
                .as_ref()
                .and_then(|a| a.get(REF_NAME))
                .cloned()
        })
    }
}

impl Source for OciSource {
    fn describe(&self) -> String {
        match &self.tag {
            Some(t) => format!("oci:{}:{t}", self.dir.display()),
            None => format!("oci:{}", self.dir.display()),
        }
    }

    fn image_name(&self) -> String {
        let base = self
            .dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "image".into());
        match self.tag() {
            Some(t) => format!("{base}:{t}"),
            None => base,
        }
    }

    fn root(&mut self) -> Result<RawManifest> {
        let entry = self.entry.clone();
        self.manifest(&entry)
    }

    fn manifest(&mut self, desc: &Descriptor) -> Result<RawManifest> {
        let bytes = crate::image::read_blob(self, desc)?;
        Ok(RawManifest::new(bytes, Some(desc.media_type().to_string())))
    }

    fn blob(&mut self, desc: &Descriptor) -> Result<Box<dyn Read + '_>> {
        let p = blob_path(&self.dir, desc);
        let f = File::open(&p).map_err(|e| {
            Error::invalid(
                format!("{}: {}", self.describe(), p.display()),
                format!("blob {} is missing from the layout ({e})", desc.digest()),
            )
        })?;
        Ok(Box::new(VerifyingReader::new(
            f,
            desc.digest().clone(),
            desc.size(),
            format!("{} ({})", self.describe(), p.display()),
        )))
    }
}

pub struct OciDestination {
    dir: PathBuf,
    tag: String,
}

impl OciDestination {
    pub fn new(dir: &Path, tag: &str) -> OciDestination {
        OciDestination {
            dir: dir.to_path_buf(),
            tag: tag.to_string(),
        }
    }

    fn place(&self) -> String {
        format!("oci:{}:{}", self.dir.display(), self.tag)
    }

    /// Writes a blob unless the layout has it already (content-addressed:
    /// the name is the digest, and a present file was verified when written).
    fn put(&self, desc: &Descriptor, data: &mut dyn Read) -> Result<()> {
        let target = blob_path(&self.dir, desc);
        if target.metadata().is_ok_and(|m| m.len() == desc.size()) {
            return Ok(());
        }
        let parent = target.parent().expect("blob paths have a parent");
        std::fs::create_dir_all(parent)
            .map_err(|e| Error::io(parent, "creating the blob directory", e))?;
        let mut tmp = tempfile::NamedTempFile::new_in(parent)
            .map_err(|e| Error::io(parent, "creating a temporary blob", e))?;
        let mut r = VerifyingReader::new(data, desc.digest().clone(), desc.size(), self.place());
        std::io::copy(&mut r, tmp.as_file_mut())
            .map_err(|e| unwrap_io(&tmp.path().display().to_string(), "writing a blob", e))?;
        tmp.as_file()
            .sync_all()
            .map_err(|e| Error::io(tmp.path(), "syncing", e))?;
        crate::transport::docker_archive::set_mode_644(tmp.path());
        tmp.persist(&target)
            .map_err(|e| Error::io(&target, "renaming the blob into place", e.error))?;
        Ok(())
    }

    fn put_bytes(&self, desc: &Descriptor, bytes: &[u8]) -> Result<()> {
        self.put(desc, &mut &bytes[..])
    }
}

impl Destination for OciDestination {
    fn describe(&self) -> String {
        self.place()
    }

    fn write(&mut self, out: &Output, src: &mut dyn Source, progress: &Progress) -> Result<()> {
        std::fs::create_dir_all(&self.dir)
            .map_err(|e| Error::io(&self.dir, "creating the layout directory", e))?;
        let layout = self.dir.join("oci-layout");
        if !layout.exists() {
            let doc = oci_spec::image::OciLayoutBuilder::default()
                .image_layout_version("1.0.0")
                .build()
                .expect("static layout");
            write_atomic(&layout, &serde_json::to_vec(&doc).expect("serializes"))?;
        }
        for img in out.images() {
            for l in &img.layers {
                match &l.data {
                    Some(d) => self.put_bytes(&l.desc, d)?,
                    None => {
                        if blob_path(&self.dir, &l.desc)
                            .metadata()
                            .is_ok_and(|m| m.len() == l.desc.size())
                        {
                            progress.note(&format!("{} already in the layout", l.desc.digest()));
                            continue;
                        }
                        let mut r = src.blob(&l.desc)?;
                        let mut r = progress.wrap(
                            format!("copying {}", short(l.desc.digest().as_ref())),
                            l.desc.size(),
                            &mut r,
                        );
                        self.put(&l.desc, &mut r)?;
                    }
                }
            }
            self.put_bytes(&img.config_desc, &img.config)?;
            let m = &img.manifest;
            self.put_bytes(
                &Descriptor::new(
                    MediaType::from(m.media_type.as_str()),
                    m.bytes.len() as u64,
                    m.digest.clone(),
                ),
                &m.bytes,
            )?;
        }
        let root = out.root();
        let root_desc = Descriptor::new(
            MediaType::from(root.media_type.as_str()),
            root.bytes.len() as u64,
            root.digest.clone(),
        );
        self.put_bytes(&root_desc, &root.bytes)?;

        // The tag moves last: until index.json is renamed, readers see the
        // layout as it was.
        let mut index = if self.dir.join("index.json").exists() {
            read_index(&self.dir)?
        } else {
            oci_spec::image::ImageIndexBuilder::default()
                .schema_version(2u32)
                .media_type(MediaType::from(OCI_INDEX))
                .manifests(Vec::new())
                .build()
                .expect("static index")
        };
        let mut entry = root_desc;
        if let Output::Image(img) = out {
            if let Some(p) = &img.platform {
                entry.set_platform(Some(p.clone()));
            }
        }
        entry.set_annotations(Some(HashMap::from([(
            REF_NAME.to_string(),
            self.tag.clone(),
        )])));
        let mut manifests: Vec<Descriptor> = index
            .manifests()
            .iter()
            .filter(|d| d.annotations().as_ref().and_then(|a| a.get(REF_NAME)) != Some(&self.tag))
            .cloned()
            .collect();
        manifests.push(entry);
        index.set_manifests(manifests);
        write_atomic(&self.dir.join("index.json"), &canonical_json(&index))
    }
}

pub fn short(d: &str) -> String {
    d.chars().take(19).collect()
}

pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .map_err(|e| Error::io(dir, "creating a temporary file", e))?;
    tmp.write_all(bytes)
        .map_err(|e| Error::io(tmp.path(), "writing", e))?;
    tmp.as_file()
        .sync_all()
        .map_err(|e| Error::io(tmp.path(), "syncing", e))?;
    crate::transport::docker_archive::set_mode_644(tmp.path());
    tmp.persist(path)
        .map_err(|e| Error::io(path, "renaming into place", e.error))?;
    Ok(())
}
