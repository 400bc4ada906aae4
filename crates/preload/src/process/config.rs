//! Runtime configuration (docs/distribution.md): `/etc/ldguard/config.json`, or, when it
//! is absent or allows overrides, `LDGUARD_CONFIG` and the `LDGUARD_*`
//! environment variables.
//!
//! Loading never fails: every problem becomes a note that is reported as a
//! status event, and a safe value is used instead.
//!
//! A process whose configuration is in order allocates nothing on the heap
//! for it: glibc's `malloc`, on its first use in a process, asks for a
//! random tcache key and moves the break twice (three system calls) and
//! writes a fresh heap page, which a `disabled` process and `/bin/true`
//! otherwise never pay (BENCHMARKS.md section 25). So the system config is
//! read into a small static area and parsed in place, its strings borrowed
//! from it, and the environment's values are looked at where they lie and
//! the ones kept copied into the same area ([`keep`]). Not borrowed from
//! `environ` for good: a program may write over its environment's strings
//! (nginx's and PostgreSQL's `setproctitle` reuse that memory for the
//! process title), and the event sink and the refresher read these values
//! long after start-up. Not on the stack either: a buffer there deepened
//! every process's start-up by a fresh stack page, config file or not.

use ldguard_events::SinkSpec;
use ldguard_policy::Mode;
use ldguard_source::Token;
use serde::Deserialize;
use std::borrow::Cow;
use std::ffi::{c_char, c_long, CStr};
use std::path::PathBuf;

/// Where an instrumented image keeps its configuration.
pub const SYSTEM_CONFIG: &str = "/etc/ldguard/config.json";

/// The config file, as the layer builder writes it. Unknown fields are
/// accepted: a newer builder must not break an older library. Strings are
/// borrowed from the file's text unless they hold an escape.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfigFile<'a> {
    #[serde(borrow)]
    pub policy: Option<Text<'a>>,
    #[serde(borrow)]
    pub baked_policy: Option<Text<'a>>,
    #[serde(borrow)]
    pub events: Option<Text<'a>>,
    #[serde(borrow)]
    pub token_file: Option<Text<'a>>,
    #[serde(borrow)]
    pub ca_file: Option<Text<'a>>,
    pub refresh_seconds: Option<u64>,
    #[serde(borrow)]
    pub on_no_policy: Option<Text<'a>>,
    #[serde(default)]
    pub allow_env_override: bool,
    #[serde(borrow)]
    pub cache_dir: Option<Text<'a>>,
    #[serde(borrow)]
    pub image: Option<ImageInfo<'a>>,
    /// An ldguard-server URL: with `image.name`, the policy and events
    /// locations follow from it (an explicit `policy` or `events` wins).
    #[serde(borrow)]
    pub server: Option<Text<'a>>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageInfo<'a> {
    #[serde(borrow)]
    pub name: Option<Text<'a>>,
    #[serde(borrow)]
    pub base_digest: Option<Text<'a>>,
}

/// A string of the config file: borrowed from its text unless it holds an
/// escape. (serde borrows a `Cow<str>` field only when it is not inside an
/// `Option`: an `Option<Cow<str>>` is always copied.)
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Text<'a>(pub Cow<'a, str>);

impl std::ops::Deref for Text<'_> {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Text<'de>;

            // As `String`'s, so a value of the wrong type is reported as before.
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }

            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Borrowed(v)))
            }

            fn visit_str<E>(self, v: &str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(v.to_owned())))
            }

            fn visit_string<E>(self, v: String) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(v)))
            }
        }
        d.deserialize_str(Visitor)
    }
}

/// What to do when no policy could be loaded at all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnNoPolicy {
    /// Run unchecked (the default: never break a program over a missing file).
    Allow,
    /// Deny every checked operation, in enforce mode.
    Deny,
}

/// The effective settings of this process. Its texts live for the
/// process ([`keep`]).
#[derive(Clone, Debug)]
pub struct Settings {
    /// Policy location: a file path or an `http(s)://` URL.
    pub policy: Option<&'static str>,
    /// Policy file shipped in the image, used when `policy` is unavailable.
    pub baked_policy: Option<&'static str>,
    pub events: SinkSpec,
    /// `LDGUARD_MODE`: overrides the policy's mode.
    pub mode: Option<Mode>,
    pub on_no_policy: OnNoPolicy,
    pub image: Option<&'static str>,
    pub refresh_seconds: Option<u64>,
    pub token_file: Option<&'static str>,
    pub ca_file: Option<&'static str>,
    pub cache_dir: Option<&'static str>,
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
    // SAFETY: the process environment, not changed by the library while
    // this runs; its values are copied (`keep`) before `load` returns.
    let env = unsafe { Environment::read() };
    resolve(
        system_text.as_deref(),
        |name| env.get(name),
        |p| std::fs::read_to_string(p).map_err(|e| e.to_string()),
    )
}

/// Room for the system config's text and the texts [`keep`] copies. It
/// lies in `.data` (hot-text.ld puts `.bss` there), on the page that also
/// holds `.got.plt`, which every process writes anyway: using it costs no
/// page fault (checked with `bench/exec-faults`, BENCHMARKS.md section
/// 25). The layer builder's config file takes a few hundred bytes; what
/// does not fit goes on the heap.
const KEPT_BYTES: usize = 2048;

struct KeptArea {
    bytes: std::cell::UnsafeCell<[u8; KEPT_BYTES]>,
    used: std::sync::atomic::AtomicUsize,
}

// SAFETY: every range of `bytes` is handed out once (a compare-and-swap on
// `used`), written before it is shared, and never written again.
unsafe impl Sync for KeptArea {}

static KEPT: KeptArea = KeptArea {
    bytes: std::cell::UnsafeCell::new([0; KEPT_BYTES]),
    used: std::sync::atomic::AtomicUsize::new(0),
};

/// `text`, for the life of the process: as it is when it already lies in
/// [`KEPT`] (the system config's strings), else copied there while it has
/// room, else leaked on the heap. Settings are made once per process (and
/// by tests), so nothing accumulates.
pub fn keep(text: &str) -> &'static str {
    use std::sync::atomic::Ordering;
    if text.is_empty() {
        return "";
    }
    let start = KEPT.bytes.get() as usize;
    let handed_out = start..start + KEPT.used.load(Ordering::Acquire);
    if handed_out.contains(&(text.as_ptr() as usize))
        && handed_out.contains(&(text.as_ptr() as usize + text.len() - 1))
    {
        // SAFETY: `text` lies in a range of the area that was handed out,
        // written, and is never written again: it is valid for the life
        // of the process.
        return unsafe { &*(text as *const str) };
    }
    let mut at = KEPT.used.load(Ordering::Relaxed);
    loop {
        let end = match at.checked_add(text.len()) {
            Some(end) if end <= KEPT_BYTES => end,
            _ => return String::leak(text.to_owned()),
        };
        match KEPT
            .used
            .compare_exchange_weak(at, end, Ordering::AcqRel, Ordering::Relaxed)
        {
            Ok(_) => break,
            Err(now) => at = now,
        }
    }
    // SAFETY: `at..at + len` lies within the area (checked above) and was
    // handed to this call alone by the compare-and-swap; nothing has read
    // it yet. The bytes are `text`'s, so the slice is UTF-8, and they are
    // never written again.
    unsafe {
        let to = KEPT.bytes.get().cast::<u8>().add(at);
        std::ptr::copy_nonoverlapping(text.as_ptr(), to, text.len());
        std::str::from_utf8_unchecked(std::slice::from_raw_parts(to, text.len()))
    }
}

/// [`SYSTEM_CONFIG`] for the system call.
const SYSTEM_CONFIG_C: &CStr = c"/etc/ldguard/config.json";

/// The text of [`SYSTEM_CONFIG`]: `None` when it does not exist, a leading
/// NUL and the error when it cannot be read (as [`resolve`] expects).
/// In [`KEPT`] when it fits there.
fn read_system_config() -> Option<Cow<'static, str>> {
    use std::sync::atomic::Ordering;
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
            .then(|| Cow::Owned(format!("\u{0}{SYSTEM_CONFIG}: {e}")));
    }
    let fd = fd as std::ffi::c_int;
    // The rest of the area, taken whole (no other thread keeps texts while
    // the process starts; one that did would use the heap), and what the
    // text does not use given back.
    let at = KEPT.used.swap(KEPT_BYTES, Ordering::AcqRel);
    // SAFETY: `at..KEPT_BYTES` was free and is now this call's alone;
    // `MaybeUninit` bytes may hold anything.
    let rest = unsafe {
        std::slice::from_raw_parts_mut(
            KEPT.bytes.get().cast::<std::mem::MaybeUninit<u8>>().add(at),
            KEPT_BYTES - at,
        )
    };
    let read = read_whole(fd, rest);
    crate::os::sys::close(fd);
    let used = match &read {
        Ok(Cow::Borrowed(text)) => text.len(),
        _ => 0,
    };
    KEPT.used.store(at + used, Ordering::Release);
    Some(match read {
        Ok(text) => text,
        Err(e) => Cow::Owned(format!("\u{0}{SYSTEM_CONFIG}: {e}")),
    })
}

/// The rest of the file open as `fd`, as text: in `buf` when it fits (a
/// read that fills `buf` may have more behind it: then the heap), with
/// `read_to_string`'s errors (an interrupted read is retried).
fn read_whole(
    fd: std::ffi::c_int,
    buf: &mut [std::mem::MaybeUninit<u8>],
) -> std::io::Result<Cow<'_, str>> {
    let n_buf = buf.len();
    let base = buf.as_mut_ptr().cast::<u8>();
    let mut len = 0usize;
    let mut more: Vec<u8> = Vec::new();
    loop {
        let (to, room) = if len < n_buf {
            // SAFETY: `len < n_buf`: within `buf`.
            (unsafe { base.add(len) }, n_buf - len)
        } else {
            if more.is_empty() {
                // SAFETY: all of `buf` was written by `read`.
                more.extend_from_slice(unsafe { std::slice::from_raw_parts(base, n_buf) });
            }
            more.reserve(n_buf.max(1024));
            // SAFETY: `reserve` made room for this many more bytes at the end.
            (
                unsafe { more.as_mut_ptr().add(more.len()) },
                more.capacity() - more.len(),
            )
        };
        // The system call, as `read_system_config` opens: it writes at
        // most `room` bytes at `to`, which has room for them.
        let n = crate::os::sys::syscall6(
            libc::SYS_read,
            [fd as c_long, to as c_long, room as c_long, 0, 0, 0],
        );
        if n == -(libc::EINTR as c_long) {
            continue;
        }
        if n < 0 {
            return Err(std::io::Error::from_raw_os_error(-n as std::ffi::c_int));
        }
        if n == 0 {
            break;
        }
        if len < n_buf {
            len += n as usize;
        } else {
            // SAFETY: `read` initialised `n` more bytes after the old end,
            // within the reserved room.
            unsafe { more.set_len(more.len() + n as usize) };
        }
    }
    let invalid = || {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "stream did not contain valid UTF-8",
        )
    };
    if len < n_buf {
        // SAFETY: `read` initialised the first `len` bytes of `buf`.
        let bytes = unsafe { std::slice::from_raw_parts(base, len) };
        return std::str::from_utf8(bytes)
            .map(Cow::Borrowed)
            .map_err(|_| invalid());
    }
    String::from_utf8(more)
        .map(Cow::Owned)
        .map_err(|_| invalid())
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
/// Borrowed from the environment's strings.
struct Environment<'a>([Option<&'a str>; VARIABLES.len()]);

impl<'a> Environment<'a> {
    /// The process environment's values.
    ///
    /// # Safety
    /// The environment's strings stay as they are while the result lives.
    unsafe fn read() -> Environment<'a> {
        extern "C" {
            static environ: *const *const c_char;
        }
        // SAFETY: libc's `environ` is the process environment: NULL or a
        // NULL-terminated array of NUL-terminated strings, read here as
        // `getenv` reads it, which the caller keeps unchanged.
        unsafe { Environment::from_array(environ) }
    }

    /// # Safety
    /// `entry` is NULL or points to a NULL-terminated array of pointers to
    /// NUL-terminated strings, which stay as they are for `'a`.
    unsafe fn from_array(mut entry: *const *const c_char) -> Environment<'a> {
        let mut found: [Option<&'a str>; VARIABLES.len()] = Default::default();
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
            // SAFETY: `var` is a NUL-terminated string that stays for `'a`
            // (the caller's promise).
            let bytes: &'a [u8] = unsafe { CStr::from_ptr(var) }.to_bytes();
            let Some(eq) = bytes.iter().position(|&b| b == b'=') else {
                continue;
            };
            let (name, value) = (&bytes[..eq], &bytes[eq + 1..]);
            if let Some(i) = VARIABLES.iter().position(|v| v.as_bytes() == name) {
                if found[i].is_none() {
                    found[i] = std::str::from_utf8(value).ok();
                }
            }
        }
        Environment(found)
    }

    fn get(&self, name: &str) -> Option<&'a str> {
        let i = VARIABLES.iter().position(|v| *v == name)?;
        self.0[i]
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
pub fn resolve<'e>(
    system: Option<&str>,
    env: impl Fn(&str) -> Option<&'e str>,
    read: impl Fn(&str) -> Result<String, String>,
) -> Settings {
    let mut notes = Vec::new();
    // The text of `LDGUARD_CONFIG`'s file, which `file` may borrow from.
    let other_text;
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
            match read(path) {
                Ok(text) => {
                    other_text = text;
                    file = Some(parse(&other_text, path, &mut notes));
                }
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
    let kept = |text: Option<Text<'_>>| text.as_deref().map(keep);
    let mut settings = Settings {
        policy: kept(file.policy),
        baked_policy: kept(file.baked_policy),
        events: SinkSpec::Stderr,
        mode: None,
        on_no_policy: OnNoPolicy::Allow,
        image: kept(file.image.and_then(|i| i.name)),
        refresh_seconds: file.refresh_seconds,
        token_file: kept(file.token_file),
        ca_file: kept(file.ca_file),
        cache_dir: kept(file.cache_dir),
        notes: Vec::new(),
        env_allowed,
        // Only with a token configured, which only a server's policy or
        // events use: owned, as `Token` holds it.
        env_token: match (
            env("LDGUARD_TOKEN").filter(|t| !t.is_empty()),
            env("LDGUARD_TOKEN_FILE").filter(|t| !t.is_empty()),
        ) {
            (Some(value), _) => Token::Value(value.to_owned()),
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
            "LDGUARD_POLICY" => settings.policy = Some(keep(value)),
            "LDGUARD_EVENTS" => events = Some(Text(Cow::Borrowed(value))),
            "LDGUARD_CACHE_DIR" => settings.cache_dir = Some(keep(value)),
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
        // Kept whole, so the sink's path or URL borrows it.
        match SinkSpec::parse_static(keep(&text)) {
            Ok(spec) => settings.events = spec,
            Err(e) => notes.push(format!("{e}; using stderr")),
        }
    }
    if let Some(text) = mode {
        match Mode::parse(text) {
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
fn from_server(server: &str, file: &mut ConfigFile<'_>, notes: &mut Vec<String>) {
    let base = server.trim_end_matches('/');
    let image = file.image.as_ref();
    if file.policy.is_none() {
        match image.and_then(|i| i.name.as_deref()) {
            Some(name) => {
                let mut url = format!("{base}/api/v1/agent/policy?image={}", query_encode(name));
                if let Some(digest) = image.and_then(|i| i.base_digest.as_deref()) {
                    url.push_str(&format!("&digest={}", query_encode(digest)));
                }
                file.policy = Some(Text(Cow::Owned(url)));
            }
            None => notes.push(format!(
                "\"server\": {server:?} needs \"image\": {{\"name\": …}} to fetch a policy; none fetched"
            )),
        }
    }
    if file.events.is_none() {
        file.events = Some(Text(Cow::Owned(format!("{base}/api/v1/agent/events"))));
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

fn parse<'a>(text: &'a str, origin: &str, notes: &mut Vec<String>) -> ConfigFile<'a> {
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
    let token = match settings.token_file {
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

    fn environment(vars: &[&[u8]]) -> Environment<'static> {
        // Leaked: the environment's values are borrowed from its strings.
        let strings: &'static [CString] = Vec::leak(
            vars.iter()
                .map(|v| CString::new(*v).unwrap())
                .collect::<Vec<_>>(),
        );
        let mut array: Vec<*const c_char> = strings.iter().map(|s| s.as_ptr()).collect();
        array.push(std::ptr::null());
        // SAFETY: a NULL-terminated array of NUL-terminated strings that
        // are never freed (the array itself is read only during the call).
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
        assert_eq!(env.get("LDGUARD_MODE"), Some("disabled"));
        assert_eq!(env.get("LDGUARD_POLICY"), Some(""));
        assert_eq!(env.get("LDGUARD_EVENTS"), None, "not UTF-8");
        assert_eq!(env.get("LDGUARD_CACHE_DIR"), Some("/c=d"));
        assert_eq!(env.get("LDGUARD_CONFIG"), None);
        assert_eq!(env.get("LDGUARD_TOKEN"), Some("secret"));
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
        // SAFETY: no test changes these variables.
        let own = unsafe { Environment::read() };
        for name in VARIABLES {
            assert_eq!(own.get(name), std::env::var(name).ok().as_deref(), "{name}");
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

    /// A file is read as `read_to_string` reads it, from the stack buffer
    /// when it fits (borrowed) and on the heap when not, at every length
    /// around the buffer's, and with its error for text that is not UTF-8.
    #[test]
    fn files_are_read_whole_on_the_stack_or_the_heap() {
        use std::os::fd::AsRawFd;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        const N: usize = 64;
        for len in [0, 1, N - 1, N, N + 1, 2 * N, 3 * N + 5] {
            let text: String = (0..len).map(|i| (b'a' + (i % 26) as u8) as char).collect();
            std::fs::write(&path, &text).unwrap();
            let file = std::fs::File::open(&path).unwrap();
            let mut buf = [std::mem::MaybeUninit::<u8>::uninit(); N];
            let read = read_whole(file.as_raw_fd(), &mut buf).unwrap();
            assert_eq!(read, text, "{len} bytes");
            assert_eq!(matches!(read, Cow::Borrowed(_)), len < N, "{len} bytes");
        }
        for bytes in [&b"{\"a\": \"\xff\"}"[..], &[b'x'; 2 * N][..]] {
            let mut bytes = bytes.to_vec();
            bytes.push(0xc3);
            std::fs::write(&path, &bytes).unwrap();
            let file = std::fs::File::open(&path).unwrap();
            let mut buf = [std::mem::MaybeUninit::<u8>::uninit(); N];
            let ours = read_whole(file.as_raw_fd(), &mut buf).unwrap_err();
            let std = std::fs::read_to_string(&path).unwrap_err();
            assert_eq!(ours.to_string(), std.to_string());
            assert_eq!(ours.kind(), std.kind());
        }
        let dir_fd = std::fs::File::open(dir.path()).unwrap();
        let mut buf = [std::mem::MaybeUninit::<u8>::uninit(); N];
        let e = read_whole(dir_fd.as_raw_fd(), &mut buf).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EISDIR));
    }

    /// Kept texts are equal to what was kept, from the static area while
    /// it has room, then from the heap; a config file's strings are
    /// borrowed from its text unless they hold an escape.
    #[test]
    fn settings_keep_their_texts_for_the_process() {
        let area = KEPT.bytes.get() as usize..KEPT.bytes.get() as usize + KEPT_BYTES;
        let mut in_area = 0;
        for i in 0..200 {
            let text = format!("/var/lib/ldguard/{i}");
            let kept = keep(&text);
            assert_eq!(kept, text);
            in_area += area.contains(&(kept.as_ptr() as usize)) as usize;
        }
        assert!(in_area > 0, "the first ones fit the area");
        let first = keep("/var/lib/ldguard/0");
        assert_eq!(keep(first).as_ptr(), first.as_ptr(), "kept once");
        assert_eq!(keep(&first[1..]).as_ptr(), first[1..].as_ptr());
        assert!(in_area < 200, "the area is bounded");
        assert_eq!(keep(""), "");
        let text = r#"{"policy": "/p.json", "events": "file:\/e", "image": {"name": "shop"}}"#;
        let mut notes = Vec::new();
        let file = parse(text, "c", &mut notes);
        assert!(notes.is_empty(), "{notes:?}");
        assert!(matches!(file.policy, Some(Text(Cow::Borrowed("/p.json")))));
        assert!(matches!(file.events.as_ref(), Some(Text(Cow::Owned(e))) if e == "file:/e"));
        assert!(matches!(
            file.image.and_then(|i| i.name),
            Some(Text(Cow::Borrowed("shop")))
        ));
        // Values of the wrong type are reported as for a `String`.
        parse(r#"{"policy": 1, "cacheDir": null}"#, "c", &mut notes);
        assert_eq!(
            notes,
            ["c:1:12: invalid type: integer `1`, expected a string at line 1 column 12; ignoring the file"]
        );
        let s = run(Some(text), &[], &[]);
        assert_eq!(s.policy, Some("/p.json"));
        assert_eq!(s.events, SinkSpec::File(std::path::Path::new("/e").into()));
        assert_eq!(s.image, Some("shop"));
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
            |n| env.get(n).map(String::as_str),
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
        assert_eq!(s.policy, Some("/p.json"));
        assert_eq!(s.events, SinkSpec::File(std::path::Path::new("/e").into()));
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
        assert_eq!(s.baked_policy, Some("/etc/ldguard/policy.json"));
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
        assert_eq!(s.policy, Some("/b.json"));
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
            s.policy,
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
        assert_eq!(s.policy, Some("/p.json"));
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
