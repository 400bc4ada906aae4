//! What an ELF file tells about where it can be loaded: machine, class,
//! loader, needed libraries and the glibc symbol versions it needs or defines.

use goblin::elf::header::{
    EM_386, EM_AARCH64, EM_ARM, EM_PPC64, EM_RISCV, EM_S390, EM_X86_64, ET_DYN, ET_EXEC,
};
use goblin::elf::Elf;
use std::cmp::Ordering;
use std::fmt;

pub const ELF_MAGIC: &[u8; 4] = b"\x7fELF";

/// A dotted version such as glibc's `2.36` or `2.2.5`, compared numerically.
#[derive(Debug, Clone)]
pub struct Version(pub Vec<u32>);

// 2.3 and 2.3.0 are the same version, so equality follows the ordering.
impl PartialEq for Version {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Version {}

impl Version {
    pub fn parse(s: &str) -> Option<Version> {
        let parts: Option<Vec<u32>> = s.split('.').map(|p| p.parse().ok()).collect();
        parts.filter(|p| !p.is_empty()).map(Version)
    }

    /// `GLIBC_2.34` → 2.34; other version names → None.
    pub fn from_glibc_name(name: &str) -> Option<Version> {
        name.strip_prefix("GLIBC_").and_then(Version::parse)
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        let n = self.0.len().max(other.0.len());
        (0..n)
            .map(|i| {
                self.0
                    .get(i)
                    .unwrap_or(&0)
                    .cmp(other.0.get(i).unwrap_or(&0))
            })
            .find(|o| o.is_ne())
            .unwrap_or(Ordering::Equal)
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.0.iter().map(u32::to_string).collect();
        f.write_str(&parts.join("."))
    }
}

#[derive(Debug, Clone)]
pub struct ElfInfo {
    pub machine: u16,
    pub is_64: bool,
    pub little_endian: bool,
    pub e_type: u16,
    pub interpreter: Option<String>,
    pub needed: Vec<String>,
    /// Highest `GLIBC_x.y` this file needs from any library.
    pub glibc_needed: Option<Version>,
    /// Highest `GLIBC_x.y` this file defines (a libc.so.6 does).
    pub glibc_defined: Option<Version>,
    pub is_pie: bool,
    pub has_dynamic: bool,
}

impl ElfInfo {
    pub fn parse(bytes: &[u8]) -> Result<ElfInfo, String> {
        if !bytes.starts_with(ELF_MAGIC) {
            return Err("not an ELF file".into());
        }
        let elf = Elf::parse(bytes).map_err(|e| format!("malformed ELF: {e}"))?;
        let mut glibc_needed: Option<Version> = None;
        if let Some(verneed) = &elf.verneed {
            for need in verneed.iter() {
                for aux in need.iter() {
                    if let Some(v) = elf
                        .dynstrtab
                        .get_at(aux.vna_name)
                        .and_then(Version::from_glibc_name)
                    {
                        glibc_needed = glibc_needed.max(Some(v));
                    }
                }
            }
        }
        let mut glibc_defined: Option<Version> = None;
        if let Some(verdef) = &elf.verdef {
            for def in verdef.iter() {
                for aux in def.iter() {
                    if let Some(v) = elf
                        .dynstrtab
                        .get_at(aux.vda_name)
                        .and_then(Version::from_glibc_name)
                    {
                        glibc_defined = glibc_defined.max(Some(v));
                    }
                }
            }
        }
        let is_pie = elf
            .dynamic
            .as_ref()
            .is_some_and(|d| d.info.flags_1 & goblin::elf::dynamic::DF_1_PIE != 0);
        Ok(ElfInfo {
            machine: elf.header.e_machine,
            is_64: elf.is_64,
            little_endian: elf.little_endian,
            e_type: elf.header.e_type,
            interpreter: elf.interpreter.map(str::to_string),
            needed: elf.libraries.iter().map(|s| s.to_string()).collect(),
            glibc_needed,
            glibc_defined,
            is_pie,
            has_dynamic: elf.dynamic.is_some(),
        })
    }

    /// A program the dynamic loader never runs, so no preload reaches it:
    /// ET_EXEC without a loader, or a static-pie (ET_DYN flagged PIE without
    /// a loader). Shared libraries (ET_DYN without the PIE flag) are not
    /// programs, and the loader itself is one of them.
    pub fn is_static_executable(&self) -> bool {
        if self.interpreter.is_some() {
            return false;
        }
        match self.e_type {
            ET_EXEC => true,
            ET_DYN => self.is_pie,
            _ => false,
        }
    }

    pub fn arch(&self) -> Option<&'static str> {
        arch_name(self.machine, self.is_64, self.little_endian)
    }
}

/// The architecture part of a library directory name (`x86_64-linux-gnu`).
pub fn arch_name(machine: u16, is_64: bool, little_endian: bool) -> Option<&'static str> {
    Some(match (machine, is_64) {
        (EM_X86_64, true) => "x86_64",
        (EM_AARCH64, true) => "aarch64",
        (EM_386, false) => "i686",
        (EM_ARM, false) => "arm",
        (EM_PPC64, true) if little_endian => "powerpc64le",
        (EM_S390, true) => "s390x",
        (EM_RISCV, true) => "riscv64",
        _ => return None,
    })
}

/// The OCI `architecture` (and `variant`) of an image config, as the
/// library directory's architecture name.
pub fn arch_from_oci(architecture: &str) -> Option<&'static str> {
    Some(match architecture {
        "amd64" => "x86_64",
        "arm64" => "aarch64",
        "386" => "i686",
        "arm" => "arm",
        "ppc64le" => "powerpc64le",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        _ => return None,
    })
}

/// The OCI architecture name of a library directory's architecture.
pub fn oci_from_arch(arch: &str) -> Option<&'static str> {
    Some(match arch {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "i686" => "386",
        "arm" => "arm",
        "powerpc64le" => "ppc64le",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_numerically() {
        let v = |s: &str| Version::parse(s).unwrap();
        assert!(v("2.17") > v("2.2.5"));
        assert!(v("2.36") > v("2.34"));
        assert_eq!(v("2.3"), v("2.3.0"));
        assert_eq!(Version::from_glibc_name("GLIBC_2.14"), Some(v("2.14")));
        assert_eq!(Version::from_glibc_name("GLIBC_PRIVATE"), None);
        assert_eq!(v("2.2.5").to_string(), "2.2.5");
    }

    #[test]
    fn reads_this_test_binary() {
        let exe = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let info = ElfInfo::parse(&exe).unwrap();
        assert_eq!(info.arch(), Some(std::env::consts::ARCH));
        assert!(!info.is_static_executable());
        assert!(info.glibc_needed.is_some());
        assert!(ElfInfo::parse(b"#!/bin/sh\n").is_err());
    }
}
