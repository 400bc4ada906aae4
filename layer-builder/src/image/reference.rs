//! Image references: `oci:DIR[:TAG]`, `docker-archive:FILE[:NAME:TAG]`,
//! `docker://HOST/REPO:TAG` (or `@sha256:…`).

use crate::error::{Error, Result};
use std::fmt;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageRef {
    Oci {
        dir: PathBuf,
        tag: Option<String>,
    },
    DockerArchive {
        file: PathBuf,
        /// `NAME:TAG`, e.g. `shop/web:1.4`.
        name: Option<String>,
    },
    Registry(RegistryRef),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryRef {
    pub host: String,
    pub repo: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

impl RegistryRef {
    /// The tag, or the digest when pulled by digest.
    pub fn reference(&self) -> &str {
        self.digest
            .as_deref()
            .or(self.tag.as_deref())
            .expect("parse guarantees a tag or a digest")
    }
}

fn bad(reference: &str, reason: impl Into<String>) -> Error {
    Error::Reference {
        reference: reference.to_string(),
        reason: reason.into(),
    }
}

const FORMS: &str = "use oci:DIR[:TAG], docker-archive:FILE[:NAME:TAG] or docker://HOST/REPO:TAG";

/// What a reference without a transport most likely meant: an existing
/// directory or archive on disk, else an image name as podman and docker
/// write it (`nginx:latest`, `quay.io/org/app:1`).
fn suggestion(s: &str) -> String {
    let path = Path::new(s);
    if path.join("index.json").is_file() {
        return format!("{s} is an OCI layout: did you mean oci:{s}? ({FORMS})");
    }
    if path.is_file() {
        return format!("{s} is a file: did you mean docker-archive:{s}? ({FORMS})");
    }
    if !s.contains(':') || s.starts_with(['/', '.']) {
        return FORMS.to_string();
    }
    match parse_registry(s, s) {
        Ok(r) => format!(
            "did you mean docker://{r} (a registry)? An image in podman's local storage \
             must be copied out first: skopeo copy containers-storage:{s} oci:DIR:TAG, \
             then ldguard-layer oci:DIR:TAG ({FORMS})"
        ),
        Err(_) => FORMS.to_string(),
    }
}

fn valid_tag(tag: &str) -> bool {
    !tag.is_empty()
        && tag.len() <= 128
        && tag
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        && !tag.starts_with(['.', '-'])
}

fn valid_repo(repo: &str) -> bool {
    !repo.is_empty()
        && repo.split('/').all(|c| {
            !c.is_empty()
                && c.chars().all(|ch| {
                    ch.is_ascii_lowercase() || ch.is_ascii_digit() || matches!(ch, '_' | '.' | '-')
                })
        })
}

impl ImageRef {
    pub fn parse(s: &str) -> Result<ImageRef> {
        if let Some(rest) = s.strip_prefix("oci:") {
            let (dir, tag) = match rest.rsplit_once(':') {
                Some((d, t)) if !t.contains('/') => (d, Some(t)),
                _ => (rest, None),
            };
            if dir.is_empty() {
                return Err(bad(s, "no directory after 'oci:'; write oci:DIR[:TAG]"));
            }
            if let Some(t) = tag {
                if !valid_tag(t) {
                    return Err(bad(s, format!("'{t}' is not a valid tag (letters, digits, '_', '.', '-'; at most 128)")));
                }
            }
            return Ok(ImageRef::Oci {
                dir: PathBuf::from(dir),
                tag: tag.map(str::to_string),
            });
        }
        if let Some(rest) = s.strip_prefix("docker-archive:") {
            let (file, name) = match rest.split_once(':') {
                Some((f, n)) => (f, Some(n)),
                None => (rest, None),
            };
            if file.is_empty() {
                return Err(bad(
                    s,
                    "no file after 'docker-archive:'; write docker-archive:FILE[:NAME:TAG]",
                ));
            }
            if let Some(n) = name {
                parse_name_tag(s, n)?;
            }
            return Ok(ImageRef::DockerArchive {
                file: PathBuf::from(file),
                name: name.map(str::to_string),
            });
        }
        if let Some(rest) = s.strip_prefix("docker://") {
            return parse_registry(s, rest).map(ImageRef::Registry);
        }
        Err(bad(s, format!("unknown transport; {}", suggestion(s))))
    }

    /// The image's tag, if the reference names one.
    pub fn tag(&self) -> Option<&str> {
        match self {
            ImageRef::Oci { tag, .. } => tag.as_deref(),
            ImageRef::DockerArchive { name, .. } => name
                .as_deref()
                .and_then(|n| n.rsplit_once(':'))
                .map(|(_, t)| t),
            ImageRef::Registry(r) => r.tag.as_deref(),
        }
    }

    /// The default destination: the same place with the tag suffixed
    /// (`bookworm` → `bookworm-layered`). A docker archive holds one image, so
    /// its file name is suffixed too (`base.tar` → `base-layered.tar`).
    /// `resolved_tag` is the tag the source turned out to have when the
    /// reference named none (an OCI layout with one image, an archive's
    /// RepoTags).
    pub fn default_destination(
        &self,
        suffix: &str,
        resolved_name: Option<&str>,
    ) -> Result<ImageRef> {
        let need = |what: &str| {
            bad(
                &self.to_string(),
                format!("{what}; name the destination explicitly as the second argument"),
            )
        };
        Ok(match self {
            ImageRef::Oci { dir, tag } => {
                let tag = tag
                    .as_deref()
                    .or(resolved_name)
                    .ok_or_else(|| need("the source has no tag to suffix"))?;
                ImageRef::Oci {
                    dir: dir.clone(),
                    tag: Some(suffixed(tag, suffix)),
                }
            }
            ImageRef::DockerArchive { file, name } => {
                let name = name
                    .as_deref()
                    .or(resolved_name)
                    .ok_or_else(|| need("the archive names no image (no RepoTags)"))?;
                let (n, t) = name
                    .rsplit_once(':')
                    .ok_or_else(|| need("the archive's image name has no tag"))?;
                ImageRef::DockerArchive {
                    file: suffixed_file(file, suffix),
                    name: Some(format!("{n}:{}", suffixed(t, suffix))),
                }
            }
            ImageRef::Registry(r) => {
                let tag = r.tag.as_deref().ok_or_else(|| {
                    need("the source is pulled by digest and has no tag to suffix")
                })?;
                ImageRef::Registry(RegistryRef {
                    host: r.host.clone(),
                    repo: r.repo.clone(),
                    tag: Some(suffixed(tag, suffix)),
                    digest: None,
                })
            }
        })
    }
}

/// `name` with `suffix`, once: re-instrumenting `web-layered` replaces its
/// ldguard layer and writes `web-layered` again, not `web-layered-layered`.
fn suffixed(name: &str, suffix: &str) -> String {
    if name.ends_with(suffix) {
        name.to_string()
    } else {
        format!("{name}{suffix}")
    }
}

fn suffixed_file(file: &Path, suffix: &str) -> PathBuf {
    let stem = file
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = match file.extension() {
        Some(ext) => format!("{}.{}", suffixed(&stem, suffix), ext.to_string_lossy()),
        None => suffixed(&stem, suffix),
    };
    file.with_file_name(name)
}

/// `NAME:TAG` as found in docker archives (`host:5000/shop/web:1.4`).
pub fn parse_name_tag<'a>(whole: &str, n: &'a str) -> Result<(&'a str, &'a str)> {
    match n.rsplit_once(':') {
        Some((name, tag)) if !tag.contains('/') && !name.is_empty() => {
            if !valid_tag(tag) {
                return Err(bad(whole, format!("'{tag}' is not a valid tag")));
            }
            Ok((name, tag))
        }
        _ => Err(bad(
            whole,
            format!("'{n}' has no tag; write NAME:TAG, e.g. {n}:latest"),
        )),
    }
}

fn parse_registry(whole: &str, rest: &str) -> Result<RegistryRef> {
    let (name, digest) = match rest.split_once('@') {
        Some((n, d)) => {
            crate::image::digest::parse_digest(whole, d)
                .map_err(|_| bad(whole, format!("'{d}' is not a sha256 digest")))?;
            (n, Some(d.to_string()))
        }
        None => (rest, None),
    };
    let (path, tag) = match name.rsplit_once(':') {
        Some((p, t)) if !t.contains('/') => (p, Some(t.to_string())),
        _ => (name, None),
    };
    if tag.is_none() && digest.is_none() {
        return Err(bad(
            whole,
            format!("no tag; write docker://{name}:TAG (e.g. :latest)"),
        ));
    }
    if let Some(t) = &tag {
        if !valid_tag(t) {
            return Err(bad(whole, format!("'{t}' is not a valid tag")));
        }
    }
    let (host, repo) = match path.split_once('/') {
        Some((h, r)) if h.contains(['.', ':']) || h == "localhost" => {
            (h.to_string(), r.to_string())
        }
        _ => ("docker.io".to_string(), path.to_string()),
    };
    let repo = if host == "docker.io" && !repo.contains('/') {
        format!("library/{repo}")
    } else {
        repo
    };
    if !valid_repo(&repo) {
        return Err(bad(
            whole,
            format!("'{repo}' is not a valid repository name (lowercase letters, digits, '.', '_', '-', '/')"),
        ));
    }
    Ok(RegistryRef {
        host,
        repo,
        tag,
        digest,
    })
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImageRef::Oci { dir, tag } => {
                write!(f, "oci:{}", dir.display())?;
                if let Some(t) = tag {
                    write!(f, ":{t}")?;
                }
                Ok(())
            }
            ImageRef::DockerArchive { file, name } => {
                write!(f, "docker-archive:{}", file.display())?;
                if let Some(n) = name {
                    write!(f, ":{n}")?;
                }
                Ok(())
            }
            ImageRef::Registry(r) => write!(f, "docker://{r}"),
        }
    }
}

impl fmt::Display for RegistryRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.host, self.repo)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_three_transports() {
        assert_eq!(
            ImageRef::parse("oci:/tmp/x:bookworm").unwrap(),
            ImageRef::Oci {
                dir: "/tmp/x".into(),
                tag: Some("bookworm".into())
            }
        );
        assert_eq!(
            ImageRef::parse("oci:rel/dir").unwrap(),
            ImageRef::Oci {
                dir: "rel/dir".into(),
                tag: None
            }
        );
        assert_eq!(
            ImageRef::parse("docker-archive:/a/b.tar:localhost:5000/shop/web:1.4").unwrap(),
            ImageRef::DockerArchive {
                file: "/a/b.tar".into(),
                name: Some("localhost:5000/shop/web:1.4".into())
            }
        );
        let ImageRef::Registry(r) =
            ImageRef::parse("docker://127.0.0.1:5000/shop/web:1.4").unwrap()
        else {
            panic!()
        };
        assert_eq!(
            (r.host.as_str(), r.repo.as_str(), r.tag.as_deref()),
            ("127.0.0.1:5000", "shop/web", Some("1.4"))
        );
        let ImageRef::Registry(r) = ImageRef::parse("docker://debian:bookworm").unwrap() else {
            panic!()
        };
        assert_eq!(
            (r.host.as_str(), r.repo.as_str()),
            ("docker.io", "library/debian")
        );
    }

    #[test]
    fn rejects_bad_references_with_the_fix() {
        let e = ImageRef::parse("docker://localhost:5000/shop/web")
            .unwrap_err()
            .to_string();
        assert!(e.contains("no tag") && e.contains(":TAG"), "{e}");
        let e = ImageRef::parse("registry.example/x:1")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("unknown transport") && e.contains("docker://"),
            "{e}"
        );
        let e = ImageRef::parse("docker://localhost:5000/Shop:1")
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a valid repository"), "{e}");
        let e = ImageRef::parse("docker-archive:/a.tar:web")
            .unwrap_err()
            .to_string();
        assert!(e.contains("no tag"), "{e}");
        assert!(ImageRef::parse("docker://h.io/r@sha256:zz").is_err());
    }

    #[test]
    fn bare_references_get_a_suggestion() {
        let err = ImageRef::parse("nginx:latest").unwrap_err().to_string();
        assert!(
            err.contains("did you mean docker://docker.io/library/nginx:latest"),
            "{err}"
        );
        assert!(
            err.contains("skopeo copy containers-storage:nginx:latest oci:DIR:TAG"),
            "{err}"
        );
        let err = ImageRef::parse("quay.io/org/app:1")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("did you mean docker://quay.io/org/app:1"),
            "{err}"
        );
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("index.json"), "{}").unwrap();
        let d = dir.path().display();
        let err = ImageRef::parse(&d.to_string()).unwrap_err().to_string();
        assert!(err.contains(&format!("did you mean oci:{d}?")), "{err}");
        let tar = dir.path().join("web.tar");
        std::fs::write(&tar, "").unwrap();
        let err = ImageRef::parse(tar.to_str().unwrap())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&format!("did you mean docker-archive:{}?", tar.display())),
            "{err}"
        );
    }

    #[test]
    fn re_instrumenting_a_layered_image_keeps_its_name() {
        for (src, dst) in [
            ("oci:/i:web-layered", "oci:/i:web-layered"),
            (
                "docker://h:5000/r:1.4-layered",
                "docker://h:5000/r:1.4-layered",
            ),
        ] {
            let d = ImageRef::parse(src)
                .unwrap()
                .default_destination("-layered", None)
                .unwrap();
            assert_eq!(d.to_string(), dst);
        }
        let d = ImageRef::parse("docker-archive:/a/b-layered.tar:web:1-layered")
            .unwrap()
            .default_destination("-layered", None)
            .unwrap();
        assert_eq!(
            d.to_string(),
            "docker-archive:/a/b-layered.tar:web:1-layered"
        );
    }

    #[test]
    fn default_destination_suffixes_the_tag() {
        let d = ImageRef::parse("docker://h:5000/r:1.4")
            .unwrap()
            .default_destination("-layered", None)
            .unwrap();
        assert_eq!(d.to_string(), "docker://h:5000/r:1.4-layered");
        let d = ImageRef::parse("oci:/x:bookworm")
            .unwrap()
            .default_destination("-l", None)
            .unwrap();
        assert_eq!(d.to_string(), "oci:/x:bookworm-l");
        let d = ImageRef::parse("docker-archive:/a/b.tar")
            .unwrap()
            .default_destination("-layered", Some("web:1"))
            .unwrap();
        assert_eq!(
            d.to_string(),
            "docker-archive:/a/b-layered.tar:web:1-layered"
        );
        assert!(ImageRef::parse("oci:/x")
            .unwrap()
            .default_destination("-layered", None)
            .is_err());
    }
}
