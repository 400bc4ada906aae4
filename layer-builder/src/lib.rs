//! ldguard-layer: instruments container images with ldguard as one
//! reproducible layer (docs/layer-builder.md). The binary's entry point is [`cli::main`].
//!
//! - [`cli`]: the command line (and its completions and man pages);
//! - [`image`]: image documents, content addressing and references;
//! - [`transport`]: where images come from and go to (OCI layouts, docker
//!   archives, registries, and the credentials for them);
//! - [`inspect`]: what an image holds (its file tree, its C library, ELF files);
//! - [`payload`]: what the builder adds (the layer, the library chosen for
//!   the image, its configuration, the baked policy and its table, the
//!   drift manifest), and `install`, which writes the same into a root
//!   filesystem;
//! - [`instrument`]: the builder proper, from a source image to the
//!   instrumented one; [`serve`]: the same as an HTTP service;
//! - [`report`], [`progress`], [`error`]: what the user is told.

pub mod cli;
pub mod error;
pub mod image;
pub mod inspect;
pub mod instrument;
pub mod payload;
pub mod progress;
pub mod report;
pub mod serve;
pub mod transport;

pub use error::{Error, Result};

/// The builder's version, recorded in the `io.ldguard.version` label.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
