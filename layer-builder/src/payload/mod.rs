//! What the builder adds to an image: the layer itself, the ldguard
//! library chosen for the image's C library, the runtime configuration,
//! the baked policy with its compiled table, and the drift manifest;
//! `install` writes the same files into a root filesystem.

pub mod baked_table;
pub mod drift;
pub mod install;
pub mod layer;
pub mod library;
pub mod runtime_config;
