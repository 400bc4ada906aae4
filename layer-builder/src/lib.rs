//! ldguard-layer: instruments container images with ldguard as one
//! reproducible layer (docs/layer-builder.md). The binary's entry point is [`app::main`].

pub mod app;
pub mod baked_table;
pub mod cli_docs;
pub mod digest;
pub mod drift;
pub mod elf;
pub mod error;
pub mod image;
pub mod install;
pub mod instrument;
pub mod layer;
pub mod libc;
pub mod library;
pub mod progress;
pub mod reference;
pub mod report;
pub mod rootfs;
pub mod runtime_config;
pub mod serve;
pub mod transport;
pub mod vault;

pub use error::{Error, Result};

/// The builder's version, recorded in the `io.ldguard.version` label.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
