//! Runtime configuration (docs/distribution.md): `/etc/ldguard/config.json`, or, when it
//! is absent or allows overrides, `LDGUARD_CONFIG` and the `LDGUARD_*`
//! environment variables.
//!
//! Loading never fails: every problem becomes a note that is reported as a
//! status event, and a safe value is used instead.

use ldguard_events::SinkSpec;
use ldguard_policy::Mode;
use ldguard_source::Token;
use serde::Deserialize;
use std::ffi::{c_char, c_long, CStr};
use std::path::PathBuf;

/// Where an instrumented image keeps its configuration.
pub const SYSTEM_CONFIG: &str = "/etc/ldguard/config.json";

/// The config file, as the layer builder writes it. Unknown fields are
/// accepted: a newer builder must not break an older library.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfigFile {
    pub policy: Option<String>,
    pub baked_policy: Option<String>,
    pub events: Option<String>,
    pub token_file: Option<String>,
    pub ca_file: Option<String>,
    pub refresh_seconds: Option<u64>,
    pub on_no_policy: Option<String>,
    #[serde(default)]
    pub allow_env_override: bool,
    pub cache_dir: Option<String>,
    pub image: Option<ImageInfo>,
    /// An ldguard-server URL: with `image.name`, the policy and events
    /// locations follow from it (an explicit `policy` or `events` wins).
    pub server: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageInfo {
    pub name: Option<String>,
    pub base_digest: Option<String>,
}

/// What to do when no policy could be loaded at all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnNoPolicy {
    /// Run unchecked (the default: never break a program over a missing file).
    Allow,
    /// Deny every checked operation, in enforce mode.
    Deny,
}

/// The effective settings of this process.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Policy location: a file path or an `http(s)://` URL.
    pub policy: Option<String>,
    /// Policy file shipped in the image, used when `policy` is unavailable.
    pub baked_policy: Option<String>,
    pub events: SinkSpec,
    /// `LDGUARD_MODE`: overrides the policy's mode.
    pub mode: Option<Mode>,
    pub on_no_policy: OnNoPolicy,
    pub image: Option<String>,
    pub refresh_seconds: Option<u64>,
    pub token_file: Option<String>,
    pub ca_file: Option<String>,
    pub cache_dir: Option<String>,
    /// Whether `LDGUARD_*` overrides are honoured (no system config, or it allows them).
    pub env_allowed: bool,
    /// `LDGUARD_TOKEN`, else `LDGUARD_TOKEN_FILE`, as the process started
    /// (used by [`token`] only where `env_allowed`).
    pub env_token: Token,
    /// Problems met while loading, reported as status events.
    pub notes: Vec<String>,
}

/// Reads the configuration from the real file system and environment.
///
/// Every process runs this at start-up, `disabled` ones included, so it
/// costs what it must and no more: the system config is looked for with
/// one system call (not through the library's own `open64` hook, whose
/// first call looks libc's up with `dlsym`), and the environment is read in
/// one pass that stops at the first byte of every variable not starting
/// with `LDGUARD_` (seven `std::env::var` calls each walked it, took std's
/// environment lock and converted the name: ~1.1k instructions each).
pub fn load() -> Settings {
    let system_text = read_system_config();
    let env = Environment::read();
    resolve(
        system_text.as_deref(),
        |name| env.get(name),
        |p| std::fs::read_to_string(p).map_err(|e| e.to_string()),
    )
}

/// [`SYSTEM_CONFIG`] for the system call.
const SYSTEM_CONFIG_C: &CStr = c"/etc/ldguard/config.json";

/// The text of [`SYSTEM_CONFIG`]: `None` when it does not exist, a leading
/// NUL and the error when it cannot be read (as [`resolve`] expects).
fn read_system_config() -> Option<String> {
    use std::io::Read;
    use std::os::fd::FromRawFd;
    // Errno untouched (the kernel's result): a `disabled` process then
    // calls neither libc's `__errno_location` nor anything else through a
    // PLT slot here, each a lazy binding (~800 instructions) on first use.
    let fd = crate::os::sys::syscall6(
        libc::SYS_openat,
        [
            libc::AT_FDCWD as c_long,
            SYSTEM_CONFIG_C.as_ptr() as c_long,
            (libc::O_RDONLY | libc::O_CLOEXEC) as c_long,
            0,
            0,
            0,
        ],
    );
    if fd < 0 {
        let e = std::io::Error::from_raw_os_error(-fd as std::ffi::c_int);
        return (e.kind() != std::io::ErrorKind::NotFound)
            .then(|| format!("\u{0}{SYSTEM_CONFIG}: {e}"));
    }
    // SAFETY: `fd` was just opened here and is owned by nothing else.
    let mut file = unsafe { std::fs::File::from_raw_fd(fd as std::ffi::c_int) };
    let mut text = String::new();
    Some(match file.read_to_string(&mut text) {
        Ok(_) => text,
        Err(e) => format!("\u{0}{SYSTEM_CONFIG}: {e}"),
    })
}

/// The `LDGUARD_*` variables [`resolve`] asks for.
const VARIABLES: [&str; 7] = [
    "LDGUARD_CONFIG",
    "LDGUARD_POLICY",
    "LDGUARD_EVENTS",
    "LDGUARD_MODE",
    "LDGUARD_CACHE_DIR",
    "LDGUARD_TOKEN",
    "LDGUARD_TOKEN_FILE",
];

/// [`VARIABLES`]' values in an environment, as `std::env::var` gives them:
/// the first definition of a name, and none whose value is not UTF-8.
struct Environment([Option<String>; VARIABLES.len()]);

impl Environment {
    /// The process environment's values.
    fn read() -> Environment {
        extern "C" {
            static environ: *const *const c_char;
        }
        // SAFETY: libc's `environ` is the process environment: NULL or a
        // NULL-terminated array of NUL-terminated strings, read here as
        // `getenv` reads it.
        unsafe { Environment::from_array(environ) }
    }

    /// # Safety
    /// `entry` is NULL or points to a NULL-terminated array of pointers to
    /// NUL-terminated strings.
    unsafe fn from_array(mut entry: *const *const c_char) -> Environment {
        let mut found: [Option<String>; VARIABLES.len()] = Default::default();
        if entry.is_null() {
            return Environment(found);
        }
        loop {
            // SAFETY: `entry` lies within the array, at or before its NULL
            // (we stop at the NULL), by the caller's promise.
            let var = unsafe { *entry };
            if var.is_null() {
                break;
            }
            // SAFETY: as above: `entry` was not the last element.
            entry = unsafe { entry.add(1) };
            if !has_prefix(var) {
                continue;
            }
            // SAFETY: `var` is a NUL-terminated string (the caller's promise).
            let bytes = unsafe { CStr::from_ptr(var) }.to_bytes();
            let Some(eq) = bytes.iter().position(|&b| b == b'=') else {
                continue;
            };
            let (name, value) = (&bytes[..eq], &bytes[eq + 1..]);
            if let Some(i) = VARIABLES.iter().position(|v| v.as_bytes() == name) {
                if found[i].is_none() {
                    found[i] = std::str::from_utf8(value).ok().map(str::to_owned);
                }
            }
        }
        Environment(found)
    }

    fn get(&self, name: &str) -> Option<String> {
        let i = VARIABLES.iter().position(|v| *v == name)?;
        self.0[i].clone()
    }
}

/// Whether the NUL-terminated string `var` starts with `LDGUARD_`.
fn has_prefix(var: *const c_char) -> bool {
    // SAFETY: `var` is an entry of the environment, NUL-terminated.
    unsafe { crate::os::sys::c_starts_with(var, b"LDGUARD_") }
}

/// The pure part of [`load`]: `system` is the text of the system config
/// (a leading NUL marks a read error message), `env` reads a variable and
/// `read` reads a file.
///
/// Generic rather than `&dyn Fn`: each trait object's vtable is a block of
/// pointers in RELRO that the loader relocates in every process, and the
/// RELRO pages are written ones (BENCHMARKS.md section 23).
pub fn resolve(
    system: Option<&str>,
    env: impl Fn(&str) -> Option<String>,
    read: impl Fn(&str) -> Result<String, String>,
) -> Settings {
    let mut notes = Vec::new();
    let mut file = match system {
        None => None,
        Some(text) if text.starts_with('\u{0}') => {
            notes.push(format!("cannot read {}; running without it", &text[1..]));
            // Unreadable system config: keep the environment locked, as the
            // image meant to be configured by the file.
            Some(ConfigFile::default())
        }
        Some(text) => Some(parse(text, SYSTEM_CONFIG, &mut notes)),
    };
    let env_allowed = file.as_ref().is_none_or(|f| f.allow_env_override);
    let mut ignored_env = Vec::new();
    if let Some(path) = env("LDGUARD_CONFIG") {
        if env_allowed {
            match read(&path) {
                Ok(text) => file = Some(parse(&text, &path, &mut notes)),
                Err(e) => notes.push(format!("LDGUARD_CONFIG={path}: {e}")),
            }
        } else {
            ignored_env.push("LDGUARD_CONFIG");
        }
    }
    let mut file = file.unwrap_or_default();
    if let Some(server) = file.server.take() {
        from_server(&server, &mut file, &mut notes);
    }
    let mut settings = Settings {
        policy: file.policy,
        baked_policy: file.baked_policy,
        events: SinkSpec::Stderr,
        mode: None,
        on_no_policy: OnNoPolicy::Allow,
        image: file.image.and_then(|i| i.name),
        refresh_seconds: file.refresh_seconds,
        token_file: file.token_file,
        ca_file: file.ca_file,
        cache_dir: file.cache_dir,
        notes: Vec::new(),
        env_allowed,
        env_token: match (
            env("LDGUARD_TOKEN").filter(|t| !t.is_empty()),
            env("LDGUARD_TOKEN_FILE").filter(|t| !t.is_empty()),
        ) {
            (Some(value), _) => Token::Value(value),
            (None, Some(path)) => Token::File(PathBuf::from(path)),
            (None, None) => Token::None,
        },
    };
    let mut events = file.events;
    let mut mode = None;
    for name in [
        "LDGUARD_POLICY",
        "LDGUARD_EVENTS",
        "LDGUARD_MODE",
        "LDGUARD_CACHE_DIR",
    ] {
        let Some(value) = env(name) else { continue };
        if !env_allowed {
            ignored_env.push(name);
            continue;
        }
        match name {
            "LDGUARD_POLICY" => settings.policy = Some(value),
            "LDGUARD_EVENTS" => events = Some(value),
            "LDGUARD_CACHE_DIR" => settings.cache_dir = Some(value),
            _ => mode = Some(value),
        }
    }
    if !ignored_env.is_empty() {
        notes.push(format!(
            "ignored {} because {SYSTEM_CONFIG} does not set \"allowEnvOverride\": true",
            ignored_env.join(", ")
        ));
    }
    if let Some(text) = events {
        match SinkSpec::parse(&text) {
            Ok(spec) => settings.events = spec,
            Err(e) => notes.push(format!("{e}; using stderr")),
        }
    }
    if let Some(text) = mode {
        match Mode::parse(&text) {
            Some(m) => settings.mode = Some(m),
            None => notes.push(format!(
                "LDGUARD_MODE={text:?} is not a mode (enforce, permissive, disabled); using the policy's"
            )),
        }
    }
    match file.on_no_policy.as_deref() {
        None | Some("allow") => {}
        Some("deny") => settings.on_no_policy = OnNoPolicy::Deny,
        Some(other) => notes.push(format!(
            "\"onNoPolicy\": {other:?} is not \"allow\" or \"deny\"; using \"allow\""
        )),
    }
    settings.notes = notes;
    settings
}

/// The `"server"` shorthand: ldguard-server's policy endpoint for this
/// image, and its event endpoint, where the file does not name its own.
fn from_server(server: &str, file: &mut ConfigFile, notes: &mut Vec<String>) {
    let base = server.trim_end_matches('/');
    let image = file.image.as_ref();
    if file.policy.is_none() {
        match image.and_then(|i| i.name.as_deref()) {
            Some(name) => {
                let mut url = format!("{base}/api/v1/agent/policy?image={}", query_encode(name));
                if let Some(digest) = image.and_then(|i| i.base_digest.as_deref()) {
                    url.push_str(&format!("&digest={}", query_encode(digest)));
                }
                file.policy = Some(url);
            }
            None => notes.push(format!(
                "\"server\": {server:?} needs \"image\": {{\"name\": …}} to fetch a policy; none fetched"
            )),
        }
    }
    if file.events.is_none() {
        file.events = Some(format!("{base}/api/v1/agent/events"));
    }
}

/// Percent-encodes a query value (image names hold `/` and `:`).
fn query_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn parse(text: &str, origin: &str, notes: &mut Vec<String>) -> ConfigFile {
    match serde_json::from_str(text) {
        Ok(cfg) => cfg,
        Err(e) => {
            notes.push(format!(
                "{origin}:{}:{}: {e}; ignoring the file",
                e.line(),
                e.column()
            ));
            ConfigFile::default()
        }
    }
}

/// The bearer token, and a note when environment tokens were refused.
/// `LDGUARD_TOKEN` and `LDGUARD_TOKEN_FILE` count as environment overrides:
/// a process that could pick the token could also make every fetch fail and
/// stall the container on an old policy, so in a locked configuration only
/// `tokenFile` is used.
pub fn token(settings: &Settings) -> (Token, Option<String>) {
    let mut note = None;
    if settings.env_allowed {
        if settings.env_token != Token::None {
            return (settings.env_token.clone(), None);
        }
    } else if settings.env_token != Token::None {
        note = Some(format!(
            "ignored LDGUARD_TOKEN/LDGUARD_TOKEN_FILE because {} does not set \"allowEnvOverride\": true",
            SYSTEM_CONFIG
        ));
    }
    let token = match &settings.token_file {
        Some(path) => Token::File(PathBuf::from(path)),
        None => Token::None,
    };
    (token, note)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::ffi::CString;

    fn environment(vars: &[&[u8]]) -> Environment {
        let strings: Vec<CString> = vars.iter().map(|v| CString::new(*v).unwrap()).collect();
        let mut array: Vec<*const c_char> = strings.iter().map(|s| s.as_ptr()).collect();
        array.push(std::ptr::null());
        // SAFETY: a NULL-terminated array of NUL-terminated strings that
        // outlive the call.
        unsafe { Environment::from_array(array.as_ptr()) }
    }

    #[test]
    fn environment_is_read_as_getenv_reads_it() {
        let env = environment(&[
            b"PATH=/usr/bin",
            b"LDGUARD",
            b"LDGUARD_",
            b"LDGUARD_MODE",
            b"LDGUARD_MODEX=enforce",
            b"LDGUARD_MODE=disabled",
            b"LDGUARD_MODE=enforce",
            b"LDGUARD_POLICY=",
            b"LDGUARD_EVENTS=file:/tmp/\xff",
            b"LDGUARD_CACHE_DIR=/c=d",
            b"LDGUARD_TOKEN=secret",
            b"LDGUARD_OTHER=x",
        ]);
        assert_eq!(env.get("LDGUARD_MODE").as_deref(), Some("disabled"));
        assert_eq!(env.get("LDGUARD_POLICY").as_deref(), Some(""));
        assert_eq!(env.get("LDGUARD_EVENTS"), None, "not UTF-8");
        assert_eq!(env.get("LDGUARD_CACHE_DIR").as_deref(), Some("/c=d"));
        assert_eq!(env.get("LDGUARD_CONFIG"), None);
        assert_eq!(env.get("LDGUARD_TOKEN").as_deref(), Some("secret"));
        assert_eq!(
            env.get("LDGUARD_OTHER"),
            None,
            "not one configuration reads"
        );
        assert_eq!(environment(&[]).get("LDGUARD_MODE"), None);
        // SAFETY: NULL is an allowed (empty) environment.
        let none = unsafe { Environment::from_array(std::ptr::null()) };
        assert_eq!(none.get("LDGUARD_MODE"), None);
        // The process's own environment, as std reads it.
        let own = Environment::read();
        for name in VARIABLES {
            assert_eq!(own.get(name), std::env::var(name).ok(), "{name}");
        }
    }

    #[test]
    fn environment_tokens_are_overrides() {
        let open = run(
            None,
            &[("LDGUARD_TOKEN", "t"), ("LDGUARD_TOKEN_FILE", "/f")],
            &[],
        );
        assert_eq!(token(&open), (Token::Value("t".into()), None));
        let file = run(
            None,
            &[("LDGUARD_TOKEN", ""), ("LDGUARD_TOKEN_FILE", "/f")],
            &[],
        );
        assert_eq!(token(&file), (Token::File("/f".into()), None));
        assert_eq!(token(&run(None, &[], &[])), (Token::None, None));
        let locked = run(
            Some(r#"{"tokenFile": "/etc/t"}"#),
            &[("LDGUARD_TOKEN", "t")],
            &[],
        );
        let (t, note) = token(&locked);
        assert_eq!(t, Token::File("/etc/t".into()));
        assert!(note.unwrap().contains("ignored LDGUARD_TOKEN"));
        assert!(
            !format!("{open:?}").contains("\"t\""),
            "the token is never printed"
        );
    }

    #[test]
    fn system_config_path_is_one_path() {
        assert_eq!(SYSTEM_CONFIG_C.to_str().unwrap(), SYSTEM_CONFIG);
        // Absent on a test machine: no config, no note.
        if !std::path::Path::new(SYSTEM_CONFIG).exists() {
            assert_eq!(read_system_config(), None);
        }
    }

    fn run(system: Option<&str>, env: &[(&str, &str)], files: &[(&str, &str)]) -> Settings {
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let files: HashMap<String, String> = files
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        resolve(
            system,
            |n| env.get(n).cloned(),
            |p| {
                files
                    .get(p)
                    .cloned()
                    .ok_or_else(|| "No such file".to_string())
            },
        )
    }

    #[test]
    fn environment_used_without_system_config() {
        let s = run(
            None,
            &[
                ("LDGUARD_POLICY", "/p.json"),
                ("LDGUARD_EVENTS", "file:/e"),
                ("LDGUARD_MODE", "permissive"),
            ],
            &[],
        );
        assert_eq!(s.policy.as_deref(), Some("/p.json"));
        assert_eq!(s.events, SinkSpec::File("/e".into()));
        assert_eq!(s.mode, Some(Mode::Permissive));
        assert!(s.notes.is_empty(), "{:?}", s.notes);
    }

    #[test]
    fn system_config_locks_the_environment() {
        let s = run(
            Some(r#"{"bakedPolicy":"/etc/ldguard/policy.json","events":"none"}"#),
            &[
                ("LDGUARD_MODE", "disabled"),
                ("LDGUARD_CONFIG", "/tmp/c.json"),
            ],
            &[],
        );
        assert_eq!(s.mode, None);
        assert_eq!(s.events, SinkSpec::None);
        assert_eq!(s.baked_policy.as_deref(), Some("/etc/ldguard/policy.json"));
        assert!(
            s.notes[0].contains("ignored LDGUARD_CONFIG, LDGUARD_MODE"),
            "{:?}",
            s.notes
        );
    }

    #[test]
    fn allow_env_override_opens_it() {
        let s = run(
            Some(r#"{"allowEnvOverride":true,"policy":"/a.json"}"#),
            &[("LDGUARD_CONFIG", "/c.json"), ("LDGUARD_MODE", "enforce")],
            &[("/c.json", r#"{"policy":"/b.json","onNoPolicy":"deny"}"#)],
        );
        assert_eq!(s.policy.as_deref(), Some("/b.json"));
        assert_eq!(s.on_no_policy, OnNoPolicy::Deny);
        assert_eq!(s.mode, Some(Mode::Enforce));
    }

    #[test]
    fn server_shorthand_names_the_policy_and_events_endpoints() {
        let s = run(
            Some(
                r#"{"server": "https://ctl.example.com/", "tokenFile": "/t",
                    "image": {"name": "shop/web:1.4", "baseDigest": "sha256:ab"}}"#,
            ),
            &[],
            &[],
        );
        assert_eq!(
            s.policy.as_deref(),
            Some("https://ctl.example.com/api/v1/agent/policy?image=shop%2Fweb%3A1.4&digest=sha256%3Aab")
        );
        assert_eq!(
            s.events,
            SinkSpec::Http("https://ctl.example.com/api/v1/agent/events".into())
        );
        // Explicit locations win; without an image name only events follow.
        let s = run(
            Some(r#"{"server": "http://s", "policy": "/p.json", "events": "none"}"#),
            &[],
            &[],
        );
        assert_eq!(s.policy.as_deref(), Some("/p.json"));
        assert_eq!(s.events, SinkSpec::None);
        let s = run(Some(r#"{"server": "http://s"}"#), &[], &[]);
        assert_eq!(s.policy, None);
        assert!(s.notes[0].contains("needs \"image\""), "{:?}", s.notes);
    }

    #[test]
    fn bad_values_become_notes_not_failures() {
        let s = run(Some("{not json"), &[], &[]);
        assert!(
            s.notes[0].starts_with("/etc/ldguard/config.json:1:2:"),
            "{:?}",
            s.notes
        );
        let s = run(
            None,
            &[("LDGUARD_EVENTS", "syslog"), ("LDGUARD_MODE", "off")],
            &[],
        );
        assert_eq!(s.events, SinkSpec::Stderr);
        assert_eq!(s.notes.len(), 2, "{:?}", s.notes);
        let s = run(
            Some("\u{0}/etc/ldguard/config.json: Permission denied"),
            &[("LDGUARD_MODE", "disabled")],
            &[],
        );
        assert_eq!(s.mode, None);
    }
}
