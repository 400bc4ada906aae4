//! Where images are read from and written to.

pub mod auth;
pub mod docker_archive;
pub mod net;
pub mod oci;
pub mod registry;
pub mod vault;

use crate::error::Result;
use crate::image::reference::ImageRef;
use crate::image::{Destination, Source};

pub struct OpenOptions {
    pub net: net::NetOptions,
    pub progress: crate::progress::Progress,
}

pub fn open_source(r: &ImageRef, o: &OpenOptions) -> Result<Box<dyn Source>> {
    Ok(match r {
        ImageRef::Oci { dir, tag } => Box::new(oci::OciSource::open(dir, tag.as_deref())?),
        ImageRef::DockerArchive { file, name } => {
            Box::new(docker_archive::ArchiveSource::open(file, name.as_deref())?)
        }
        ImageRef::Registry(rr) => Box::new(registry::RegistrySource::open(rr, &o.net, o.progress)?),
    })
}

pub fn open_destination(r: &ImageRef, o: &OpenOptions) -> Result<Box<dyn Destination>> {
    Ok(match r {
        ImageRef::Oci { dir, tag } => {
            let tag = tag.clone().ok_or_else(|| crate::error::Error::Reference {
                reference: r.to_string(),
                reason: "a destination layout needs a tag: write oci:DIR:TAG".into(),
            })?;
            Box::new(oci::OciDestination::new(dir, &tag))
        }
        ImageRef::DockerArchive { file, name } => {
            let name = name.clone().ok_or_else(|| crate::error::Error::Reference {
                reference: r.to_string(),
                reason: "a destination archive needs a name: write docker-archive:FILE:NAME:TAG"
                    .into(),
            })?;
            Box::new(docker_archive::ArchiveDestination::new(file, &name))
        }
        ImageRef::Registry(rr) => {
            if rr.tag.is_none() {
                return Err(crate::error::Error::Reference {
                    reference: r.to_string(),
                    reason: "a destination needs a tag: write docker://HOST/REPO:TAG".into(),
                });
            }
            Box::new(registry::RegistryDestination::open(rr, &o.net)?)
        }
    })
}
