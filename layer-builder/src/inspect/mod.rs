//! What an image holds, read from its layers: the file tree as the
//! container will see it, the C library its programs load, and what its
//! ELF files need.

pub mod elf;
pub mod libc;
pub mod rootfs;
