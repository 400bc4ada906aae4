//! What the builder tells the user: per-platform findings (for `--check`
//! and the summary) as text or JSON.

use serde::Serialize;

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlatformReport {
    /// `linux/amd64`, `linux/arm/v7`.
    pub platform: String,
    pub libc: Option<LibcReport>,
    /// The library build this platform needs, e.g. `x86_64-linux-gnu`.
    pub library: Option<String>,
    /// Highest GLIBC_x.y the library needs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub library_needs_glibc: Option<String>,
    pub instrumentable: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The base image already carries an ldguard layer (it is replaced).
    pub already_instrumented: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub static_executables: Option<Vec<String>>,
    /// `--check`: the kernel backstop the baked policy asks for, and the
    /// files it takes privileges from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backstop: Option<BackstopReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layer: Option<LayerReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manifest_digest: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LibcReport {
    pub kind: crate::inspect::libc::LibcKind,
    pub version: Option<String>,
    pub path: String,
}

/// A baked policy that asks for the kernel backstop: its `no_new_privs`
/// makes setuid, setgid and file-capability programs run without the
/// privileges they would gain.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BackstopReport {
    pub policy: String,
    /// Where the policy came from: `--policy FILE` or the image's own.
    pub source: String,
    pub mode: String,
    /// Whether the library installs it as the policy stands (enforce mode).
    pub installed: bool,
    pub privileged_files: Vec<crate::inspect::rootfs::PrivilegedFile>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LayerReport {
    pub digest: String,
    pub diff_id: String,
    pub size: u64,
    pub uncompressed_size: u64,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckReport {
    pub image: String,
    pub digest: String,
    pub platforms: Vec<PlatformReport>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub source: String,
    pub destination: String,
    /// Digest of the manifest (or index) written.
    pub digest: String,
    pub media_type: String,
    pub base_digest: String,
    /// Bytes of all layers and the config of the written image(s).
    pub total_size: u64,
    pub platforms: Vec<PlatformReport>,
}

impl CheckReport {
    pub fn to_text(&self) -> String {
        let mut s = format!("image {} ({})\n", self.image, self.digest);
        for p in &self.platforms {
            s.push_str(&format!("platform {}\n", p.platform));
            match &p.libc {
                Some(l) => s.push_str(&format!(
                    "  libc:          {} {} ({})\n",
                    match l.kind {
                        crate::inspect::libc::LibcKind::Glibc => "glibc",
                        crate::inspect::libc::LibcKind::Musl => "musl",
                    },
                    l.version.as_deref().unwrap_or("(version unknown)"),
                    l.path
                )),
                None => s.push_str("  libc:          none found\n"),
            }
            if let Some(lib) = &p.library {
                s.push_str(&format!("  library:       {lib}"));
                if let Some(g) = &p.library_needs_glibc {
                    s.push_str(&format!(" (needs GLIBC_{g})"));
                }
                s.push('\n');
            }
            s.push_str(&format!(
                "  instrumentable: {}\n",
                if p.instrumentable { "yes" } else { "no" }
            ));
            if let Some(r) = &p.reason {
                s.push_str(&format!("  reason:        {r}\n"));
            }
            if p.already_instrumented {
                s.push_str("  already instrumented (the ldguard layer would be replaced)\n");
            }
            if let Some(b) = &p.backstop {
                s.push_str(&b.to_text());
            }
            if let Some(list) = &p.static_executables {
                s.push_str(&format!(
                    "  static executables (not covered by ldguard): {}\n",
                    list.len()
                ));
                for e in list {
                    s.push_str(&format!("    {e}\n"));
                }
            }
        }
        s
    }
}

impl BackstopReport {
    fn to_text(&self) -> String {
        let mut s = format!(
            "  backstop:      policy `{}` ({}) asks for the kernel backstop, which sets no_new_privs{}\n",
            self.policy,
            self.source,
            if self.installed {
                String::new()
            } else {
                format!(
                    " once the policy enforces (its mode is `{}`: not installed yet)",
                    self.mode
                )
            }
        );
        if self.privileged_files.is_empty() {
            s.push_str("  setuid/setgid files: none\n");
            return s;
        }
        s.push_str(&format!(
            "  setuid/setgid files (they run without these privileges under no_new_privs): {}\n",
            self.privileged_files.len()
        ));
        for f in &self.privileged_files {
            s.push_str(&format!("    {} ({})\n", f.path, f.gains));
        }
        s
    }
}

impl Summary {
    pub fn to_text(&self) -> String {
        let mut s = format!("wrote {} ({})\n", self.destination, self.digest);
        for p in &self.platforms {
            if let Some(l) = &p.layer {
                s.push_str(&format!(
                    "  {}: ldguard layer {} ({} bytes){}\n",
                    p.platform,
                    l.digest,
                    l.size,
                    if p.already_instrumented {
                        ", replacing the previous ldguard layer"
                    } else {
                        ""
                    }
                ));
            }
        }
        s
    }
}
