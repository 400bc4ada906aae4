//! Compiled-table files: how a process takes its rule table without
//! parsing, validating or indexing the policy (see `ldguard_policy::flat`
//! for the format and what reading checks).
//!
//! Where a process looks, for a policy file at `P`:
//! 1. `<cacheDir>/tables/<key>.table`, specialised for this program. `key`
//!    hashes (P, the program, the library version); the file itself records
//!    the policy's SHA-256 and holds the policy text it was compiled from,
//!    which must equal P's bytes, so a changed policy is never paired with
//!    an old table. The first process that parses a policy writes it
//!    (temporary file, then `rename`: a reader sees a whole file or none),
//!    with P's identity as `fstat` gave it before the text was read.
//! 2. `P.table`, written next to a baked policy by `ldguard-layer`: generic
//!    (any program), so even the first process of a container parses
//!    nothing. It records no identity (the file's in a container is not
//!    known when the image is built). A process that uses it, having
//!    compared P's bytes with its copy, writes it to 1. for its program
//!    (best effort, as a parsed table): the same bytes with a new header
//!    recording P's identity as `fstat` gave it when P was opened for the
//!    comparison, and the checksum recomputed
//!    ([`flat::header_with_identity`]). The table stays generic, which any
//!    program's cache name accepts, so nothing is looked for that was not
//!    before; the next processes of that program find it first and, P's
//!    change being the image's, take it by one `stat` instead of reading
//!    P. Nothing is written when the baked table did not match, or was
//!    taken by an identity (nothing new to record).
//!
//! Any mismatch or damage means "not found": the caller parses the policy.
//!
//! What "P's bytes equal the table's text" takes, in the manner of git's
//! index ("racy git"): when the table records an identity, one `stat` of P
//! (following symlinks, as opening it does). The same device, inode,
//! size, modification time and change time (seconds and nanoseconds), with
//! the recorded change time at least [`SETTLED`] older than the table
//! file's own modification time, is taken for "the same bytes" without
//! opening P. Writing a file in place or replacing it changes its change
//! time or its inode, and no unprivileged program can set a change time
//! back; the margin covers a write within the file system's timestamp
//! granularity of the change the table saw (such a write leaves every
//! field as it was; only a table written at least that much later tells
//! it apart). Anything else (no identity, any field different, a change
//! too recent, `stat` failing) compares P with the table's copy byte for
//! byte, as a table without an identity always does: the identity only
//! ever shortcuts to "equal", never to "different".
//!
//! The table file is mapped read-only, never copied: its pages are the page
//! cache's, so a process faults in a few pages of the file instead of
//! writing 70 KB of fresh memory (page faults are most of what a process
//! start costs, BENCHMARKS.md section 11). The policy file is opened only
//! when it must be compared or parsed, compared with the table's copy of
//! it a few KiB at a time, and read whole only when no table matches. A
//! mapped file truncated in place would fault the processes that use it:
//! the library never rewrites a table in place (temporary file, then
//! `rename`), and only the files' owner (this user or root, below) could.
//!
//! Only files owned by this user (or root) that nobody else can write are
//! read, and the cache directory is created private (0700), as for the
//! shared policy cache: a table is as trusted as the policy itself.

use std::fs;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use ldguard_policy::flat::{self, Expect, FlatError, PolicyIdentity};
use ldguard_policy::RuleTable;

/// What a table must have been written by: this library's version and
/// table format. A different build of the same version that compiles
/// differently must change the format version.
pub const LIBRARY_VERSION: &str = concat!("ldguard ", env!("CARGO_PKG_VERSION"));

/// Suffix of a table baked next to its policy file.
pub const BAKED_SUFFIX: &str = ".table";

/// How much of the policy file one `pread` compares with the table's copy.
/// Larger pieces make fewer system calls but write more fresh stack pages:
/// 16 KiB saved 7 of the 9 reads of the 31 KB benchmark policy (~2.6 µs)
/// and added 2 stack pages (~2.4 µs) to every process (BENCHMARKS.md
/// section 21).
const COMPARED_PIECE: usize = 4 << 10;

/// Largest table file read (policies are limited to a few MiB upstream).
const MAX_TABLE_BYTES: u64 = 64 << 20;

/// How much older than the table file the policy's recorded change must be
/// for its identity to stand for its bytes: more than any file system's
/// timestamp granularity (one or two seconds for the coarsest; nanoseconds
/// for ext4, XFS, btrfs, tmpfs and overlayfs' upper layers).
pub const SETTLED: i64 = 2;

/// A table found for a policy, with the policy's SHA-256 (hex).
pub struct Found {
    pub table: RuleTable,
    pub sha256_hex: String,
}

/// The policy file a table must have been compiled from: looked at
/// (`stat`), opened and read only as far as the comparison with a table
/// needs.
pub struct PolicyFile<'a> {
    path: &'a str,
    opened: std::cell::OnceCell<std::io::Result<Opened>>,
}

struct Opened {
    file: fs::File,
    st: libc::stat,
}

/// The identity `stat` gives of a file ([`PolicyIdentity`]).
pub fn identity_of(st: &libc::stat) -> PolicyIdentity {
    PolicyIdentity {
        dev: st.st_dev,
        ino: st.st_ino,
        size: st.st_size as u64,
        mtime_sec: st.st_mtime,
        mtime_nsec: st.st_mtime_nsec,
        ctime_sec: st.st_ctime,
        ctime_nsec: st.st_ctime_nsec,
    }
}

impl<'a> PolicyFile<'a> {
    /// The file at `path`, not opened yet.
    pub fn new(path: &'a str) -> PolicyFile<'a> {
        PolicyFile {
            path,
            opened: std::cell::OnceCell::new(),
        }
    }

    /// The file opened (once) with its `fstat`, or why not.
    fn opened(&self) -> Result<&Opened, &std::io::Error> {
        self.opened
            .get_or_init(|| {
                crate::os::sys::open_read(self.path.as_bytes(), 0)
                    .map(|(file, st)| Opened { file, st })
            })
            .as_ref()
    }

    /// Whether the file has been opened (tests: a table whose recorded
    /// identity stands for the file's bytes never opens it).
    pub fn was_opened(&self) -> bool {
        self.opened.get().is_some()
    }

    /// The file's identity as `fstat` gave it when it was opened, before
    /// anything was read from it.
    pub fn identity(&self) -> Option<PolicyIdentity> {
        self.opened().ok().map(|o| identity_of(&o.st))
    }

    /// [`identity`](Self::identity) if the file was opened, without
    /// opening it.
    fn opened_identity(&self) -> Option<PolicyIdentity> {
        match self.opened.get() {
            Some(Ok(o)) => Some(identity_of(&o.st)),
            _ => None,
        }
    }

    /// Whether the file still has the identity `recorded`, which changed
    /// last at least [`SETTLED`] before `table_mtime` (the table file's
    /// modification time, seconds and nanoseconds): then its bytes are the
    /// ones the table was compiled from (module documentation). One `stat`
    /// of the path; the file is not opened.
    pub fn unchanged_since(&self, recorded: &PolicyIdentity, table_mtime: (i64, i64)) -> bool {
        if (
            recorded.ctime_sec.saturating_add(SETTLED),
            recorded.ctime_nsec,
        ) > table_mtime
        {
            return false;
        }
        let Ok(path) = std::ffi::CString::new(self.path) else {
            return false;
        };
        crate::os::sys::fstatat(libc::AT_FDCWD, path.as_ptr(), 0)
            .is_ok_and(|st| identity_of(&st) == *recorded)
    }

    /// Whether the file holds exactly `text`, compared in pieces through a
    /// buffer on the stack (no copy of the whole policy in fresh memory).
    pub fn holds(&self, text: &[u8]) -> bool {
        use std::os::fd::AsRawFd;
        let Ok(opened) = self.opened() else {
            return false;
        };
        if opened.st.st_size as u64 != text.len() as u64 {
            return false;
        }
        // Not zeroed first: `pread` writes what is compared.
        let mut buf = std::mem::MaybeUninit::<[u8; COMPARED_PIECE]>::uninit();
        let mut at = 0usize;
        loop {
            // The system call (libc's `pread64` would be one more lazy
            // binding at start-up): it writes at most COMPARED_PIECE bytes
            // into `buf`, which has room for them; the fd stays open for
            // `self`'s lifetime.
            let n = crate::os::sys::syscall6(
                libc::SYS_pread64,
                [
                    opened.file.as_raw_fd() as libc::c_long,
                    buf.as_mut_ptr() as libc::c_long,
                    COMPARED_PIECE as libc::c_long,
                    at as libc::c_long,
                    0,
                    0,
                ],
            );
            if n == 0 {
                return at == text.len();
            }
            if n < 0 {
                if n == -(libc::EINTR as libc::c_long) {
                    continue;
                }
                return false;
            }
            let n = n as usize;
            // SAFETY: `pread` initialised the first `n` bytes of `buf`.
            let read = unsafe { std::slice::from_raw_parts(buf.as_ptr().cast::<u8>(), n) };
            match text.get(at..at + n) {
                Some(expected) if expected == read => at += n,
                _ => return false,
            }
            // A short read of a regular file is its end: all of `text` was
            // there, and nothing after it (a longer file would have filled
            // the piece). One system call fewer than reading on to 0.
            if n < COMPARED_PIECE && at == text.len() {
                return true;
            }
        }
    }

    /// The whole file, for parsing.
    pub fn read_all(&self) -> std::io::Result<Vec<u8>> {
        // The same kind and message as the error of opening it.
        let opened = self
            .opened()
            .map_err(|e| std::io::Error::new(e.kind(), e.to_string()))?;
        let mut bytes = Vec::with_capacity(opened.st.st_size as usize);
        let mut buf = [0u8; 8192];
        loop {
            match opened.file.read_at(&mut buf, bytes.len() as u64) {
                Ok(0) => return Ok(bytes),
                Ok(n) => bytes.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

/// The table for the policy file `location` (open as `policy`), for
/// `program`: from the cache directory, else baked next to the policy.
/// `Err` says why the last candidate was refused (`None`: no file at all).
pub fn load(
    cache_dir: &Path,
    location: &str,
    policy: &PolicyFile,
    program: &[u8],
) -> Result<Found, Option<String>> {
    let mut why = None;
    let cached = cached_path(cache_dir, location, program);
    match read(&cached, policy, program) {
        Ok((found, _)) => return Ok(found),
        Err(None) => {}
        Err(Some(e)) => why = Some(format!("{}: {e}", cached.display())),
    }
    let baked = baked_path(location);
    match read(&baked, policy, program) {
        Ok((found, bytes)) => {
            // Proved by comparing the policy's bytes (the file was opened
            // for it): the next process of this program finds the same
            // table in the cache, with the identity that stands for them.
            // Best effort, as `store`.
            if let Some(identity) = policy.opened_identity() {
                let _ = store_baked(&cached, cache_dir, bytes, &identity);
            }
            Ok(found)
        }
        Err(None) => Err(why),
        Err(Some(e)) => Err(Some(format!("{}: {e}", baked.display()))),
    }
}

/// A table read from the file at `path`, with the file's bytes (mapped
/// for the life of the process).
fn read(
    path: &Path,
    policy: &PolicyFile,
    program: &[u8],
) -> Result<(Found, &'static [u8]), Option<String>> {
    use std::os::unix::ffi::OsStrExt;
    let (file, st) = match crate::os::sys::open_read(path.as_os_str().as_bytes(), libc::O_NOFOLLOW)
    {
        Ok(opened) => opened,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(None),
        Err(e) => return Err(Some(e.to_string())),
    };
    if !trusted(&st) {
        return Err(Some(
            "not a regular file owned by this user or root and writable only by its owner".into(),
        ));
    }
    let len = st.st_size as u64;
    if len > MAX_TABLE_BYTES {
        return Err(Some("too large".into()));
    }
    let Some(bytes) = map_whole(&file, len as usize) else {
        return Err(Some(format!(
            "cannot be mapped: {}",
            std::io::Error::last_os_error()
        )));
    };
    let table_mtime = (st.st_mtime, st.st_mtime_nsec);
    match flat::decode_for(bytes, LIBRARY_VERSION, program, &mut |text, recorded| {
        recorded.is_some_and(|id| policy.unchanged_since(id, table_mtime)) || policy.holds(text)
    }) {
        // Rule tables are never freed (see `active`); neither is the
        // mapping they borrow from.
        Ok(d) => Ok((
            Found {
                table: d.table,
                sha256_hex: hex(&d.policy_sha256),
            },
            bytes,
        )),
        Err(e) => {
            if !bytes.is_empty() {
                // SAFETY: unmaps exactly the mapping `map_whole` made; the
                // failed decode borrowed nothing from it (its error owns
                // its text) and `bytes` is not used again.
                unsafe { libc::munmap(bytes.as_ptr() as *mut libc::c_void, bytes.len()) };
            }
            Err(Some(e.to_string()))
        }
    }
}

/// `len` bytes of `file` mapped read-only and private, for the life of the
/// process unless the caller unmaps them; `None` when mmap fails (errno
/// says why). An empty file is an empty slice (mmap refuses length 0).
fn map_whole(file: &fs::File, len: usize) -> Option<&'static [u8]> {
    use std::os::fd::AsRawFd;
    if len == 0 {
        return Some(&[]);
    }
    // SAFETY: a fresh read-only private mapping of an open file: no
    // existing memory is affected, and the result is checked.
    let at = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ,
            libc::MAP_PRIVATE,
            file.as_raw_fd(),
            0,
        )
    };
    if at == libc::MAP_FAILED {
        return None;
    }
    // SAFETY: `len` readable bytes at `at`, mapped until someone unmaps
    // them (only `read`, after a failed decode).
    Some(unsafe { std::slice::from_raw_parts(at as *const u8, len) })
}

fn trusted(st: &libc::stat) -> bool {
    // The effective uid is asked only for a file root does not own: root's
    // files are trusted whoever we are (most containers' processes run as
    // root and find root's tables), and the system call is one of start-up.
    st.st_mode & libc::S_IFMT == libc::S_IFREG
        && (st.st_uid == 0 || st.st_uid == crate::os::sys::geteuid())
        && st.st_mode & 0o022 == 0
}

/// Writes the table of `text` (compiled and specialised for `program`)
/// into the cache directory for the next process, with `identity`: what
/// `fstat` said of the policy file before `text` was read from it. Best
/// effort: the caller only reports a failure.
pub fn store(
    cache_dir: &Path,
    location: &str,
    text: &str,
    identity: Option<&PolicyIdentity>,
    table: &RuleTable,
    program: &[u8],
) -> Result<(), String> {
    private_tables_dir(cache_dir)?;
    use sha2::Digest as _;
    let sha: [u8; 32] = sha2::Sha256::digest(text.as_bytes()).into();
    let bytes = flat::encode_with_identity(table, text, sha, LIBRARY_VERSION, identity);
    let path = cached_path(cache_dir, location, program);
    write_atomically(&path, &bytes)
}

/// Writes the baked table `baked` (the bytes of the file just used, which
/// matched the policy's bytes) to `cached`, its cache name for this
/// program, with `identity` (what `fstat` said of the policy file when it
/// was opened to be compared) recorded and the checksum recomputed: the
/// same table, which any program accepts (a generic table is accepted
/// under any program's name), found first and by its identity from then
/// on. Not re-encoded or copied: a new header on the stack, then the rest
/// of the mapped file. Best effort, as [`store`]; nothing is written when
/// the bytes do not make a whole, undamaged table or the identity's size
/// is not the length of its text.
fn store_baked(
    cached: &Path,
    cache_dir: &Path,
    baked: &[u8],
    identity: &PolicyIdentity,
) -> Result<(), String> {
    let head = flat::header_with_identity(baked, identity).ok_or("not a whole table")?;
    let rest = baked.get(flat::HEADER_LEN..).unwrap_or_default();
    private_tables_dir(cache_dir)?;
    write_parts_atomically(cached, &[&head, rest])
}

/// `<cacheDir>/tables`, created private (0700) if need be, and refused
/// unless it is a directory of this user that only it can write.
fn private_tables_dir(cache_dir: &Path) -> Result<(), String> {
    let dir = tables_dir(cache_dir);
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?;
    let meta = fs::symlink_metadata(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    // SAFETY: as in `trusted`.
    let euid = unsafe { libc::geteuid() };
    if !meta.is_dir() || meta.uid() != euid || meta.mode() & 0o022 != 0 {
        return Err(format!(
            "{}: not a directory of this user that only it can write",
            dir.display()
        ));
    }
    Ok(())
}

/// The flat form of `table`, compiled from `text`, for this library.
pub fn encode(table: &RuleTable, text: &str) -> Vec<u8> {
    use sha2::Digest as _;
    let sha: [u8; 32] = sha2::Sha256::digest(text.as_bytes()).into();
    flat::encode(table, text, sha, LIBRARY_VERSION)
}

/// Temporary file in the same directory, then `rename`: readers see the
/// old file, the new one, or none, never a partial one.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), String> {
    write_parts_atomically(path, &[bytes])
}

/// [`write_atomically`] of `parts` one after the other.
fn write_parts_atomically(path: &Path, parts: &[&[u8]]) -> Result<(), String> {
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    let result = (|| {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&tmp)?;
        for part in parts {
            f.write_all(part)?;
        }
        drop(f);
        fs::rename(&tmp, path)
    })();
    result.map_err(|e| {
        let _ = fs::remove_file(&tmp);
        format!("{}: {e}", path.display())
    })
}

fn tables_dir(cache_dir: &Path) -> PathBuf {
    cache_dir.join("tables")
}

/// `<cacheDir>/tables/<hash of location, program, library version and build>.table`.
pub fn cached_path(cache_dir: &Path, location: &str, program: &[u8]) -> PathBuf {
    // FNV-1a: a name, not a check (the file's content is checked).
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in [
        location.as_bytes(),
        program,
        LIBRARY_VERSION.as_bytes(),
        build_id(),
    ] {
        for &b in part.iter().chain(&[0u8]) {
            h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
        }
    }
    // Written out rather than two `join`s and a `format!`: every process
    // with a policy file asks for this name at start-up.
    use std::os::unix::ffi::{OsStrExt, OsStringExt};
    let dir = cache_dir.as_os_str().as_bytes();
    let mut name = Vec::with_capacity(dir.len() + 30);
    name.extend_from_slice(dir);
    if !dir.ends_with(b"/") {
        name.push(b'/');
    }
    name.extend_from_slice(b"tables/");
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    name.extend((0..16).rev().map(|i| DIGITS[(h >> (i * 4)) as usize & 15]));
    name.extend_from_slice(b".table");
    PathBuf::from(std::ffi::OsString::from_vec(name))
}

/// Where `ldguard-layer` bakes the generic table of the policy file `location`.
pub fn baked_path(location: &str) -> PathBuf {
    PathBuf::from(format!("{location}{BAKED_SUFFIX}"))
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

/// The GNU build ID of this library as loaded, read from its own program
/// headers in memory (no file access); empty when it has none. Two builds
/// of the same version that compile policies differently must not share
/// cached tables: the cache name includes it.
fn build_id() -> &'static [u8] {
    static ID: std::sync::OnceLock<Box<[u8]>> = std::sync::OnceLock::new();
    ID.get_or_init(|| read_build_id().unwrap_or_default())
}

fn read_build_id() -> Option<Box<[u8]>> {
    extern "C" {
        /// The ELF header of the object this code is linked into, defined
        /// by the linker (GNU ld, gold, lld): our own load address, without
        /// asking the loader (`dladdr` searches every loaded object).
        static __ehdr_start: libc::Elf64_Ehdr;
    }
    // SAFETY: the linker defines the symbol at the start of our first
    // loaded segment, where the ELF header lies, mapped for our lifetime.
    let ehdr: &libc::Elf64_Ehdr = unsafe { &__ehdr_start };
    let base = ehdr as *const libc::Elf64_Ehdr as *const u8;
    if &ehdr.e_ident[..4] != b"\x7fELF" {
        return None;
    }
    // SAFETY: as above: e_phnum headers at e_phoff, all mapped.
    let phdrs = unsafe {
        std::slice::from_raw_parts(
            base.add(ehdr.e_phoff as usize) as *const libc::Elf64_Phdr,
            ehdr.e_phnum as usize,
        )
    };
    // The load bias: first PT_LOAD's vaddr is mapped at base (shared objects link at 0).
    let first_load = phdrs.iter().find(|p| p.p_type == libc::PT_LOAD)?;
    let bias = base as usize - (first_load.p_vaddr as usize & !0xfff);
    for p in phdrs.iter().filter(|p| p.p_type == libc::PT_NOTE) {
        // SAFETY: PT_NOTE segments lie inside a PT_LOAD segment of the
        // loaded object, mapped readable for its lifetime.
        let notes = unsafe {
            std::slice::from_raw_parts((bias + p.p_vaddr as usize) as *const u8, p.p_memsz as usize)
        };
        let mut at = 0usize;
        while at + 12 <= notes.len() {
            let word =
                |i: usize| u32::from_ne_bytes(notes[i..i + 4].try_into().expect("4")) as usize;
            let (namesz, descsz, kind) = (word(at), word(at + 4), word(at + 8));
            let name_at = at + 12;
            let desc_at = name_at + namesz.div_ceil(4) * 4;
            let end = desc_at + descsz.div_ceil(4) * 4;
            if desc_at + descsz > notes.len() {
                break;
            }
            if kind == 3 && &notes[name_at..name_at + namesz] == b"GNU\0" {
                return Some(notes[desc_at..desc_at + descsz].into());
            }
            at = end;
        }
    }
    None
}

/// Why decoding refused a file, for tests.
#[doc(hidden)]
pub fn check(bytes: &'static [u8], text: &[u8], program: &[u8]) -> Result<(), FlatError> {
    flat::decode(
        bytes,
        &Expect {
            library_version: LIBRARY_VERSION,
            program,
            policy_text: text,
        },
    )
    .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The name written out by hand is `<cacheDir>/tables/<16 hex>.table`,
    /// as `Path::join` would make it, with or without a trailing `/`.
    #[test]
    fn cached_path_is_the_joined_name() {
        for dir in ["/run/ldguard", "/run/ldguard/", "/"] {
            let got = cached_path(Path::new(dir), "/etc/ldguard/policy.json", b"/bin/true");
            let name = got.file_name().unwrap().to_str().unwrap();
            assert_eq!(name.len(), 16 + ".table".len(), "{got:?}");
            assert!(name[..16]
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
            assert_eq!(got, Path::new(dir).join("tables").join(name));
            assert_eq!(got.to_str().unwrap().matches("//").count(), 0, "{got:?}");
        }
        let a = cached_path(Path::new("/c"), "/p", b"/bin/true");
        assert_ne!(a, cached_path(Path::new("/c"), "/p", b"/bin/false"));
        assert_ne!(a, cached_path(Path::new("/c"), "/q", b"/bin/true"));
    }

    /// The policy is compared in 4 KiB pieces: a difference anywhere,
    /// at a piece's first or last byte included, or a file longer or
    /// shorter than the table's copy, is no match.
    #[test]
    fn policy_file_comparison_sees_every_byte() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("policy.json");
        let len = 2 * COMPARED_PIECE + 1_000;
        let text: Vec<u8> = (0..len as u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &text).unwrap();
        let file = PolicyFile::new(path.to_str().unwrap());
        assert!(file.holds(&text));
        let piece = COMPARED_PIECE;
        for at in [0, piece - 1, piece, 2 * piece - 1, 2 * piece, len - 1] {
            let mut other = text.clone();
            other[at] ^= 1;
            assert!(!file.holds(&other), "byte {at} differs");
        }
        assert!(!file.holds(&text[..len - 1]));
        let mut longer = text.clone();
        longer.push(0);
        assert!(!file.holds(&longer));
        assert_eq!(file.read_all().unwrap(), text);
        // A file of whole pieces ends with a read of 0 bytes; one that
        // grows after it was opened is refused.
        let whole = &text[..2 * piece];
        std::fs::write(&path, whole).unwrap();
        let file = PolicyFile::new(path.to_str().unwrap());
        assert!(file.holds(whole));
        std::fs::write(&path, &text).unwrap();
        assert!(!file.holds(whole), "grown since it was opened");
    }

    /// A table is taken from a mapping of its file (never a copy), and a
    /// file that does not decode is refused and unmapped.
    #[test]
    fn tables_are_mapped_and_bad_ones_refused() {
        let dir = tempfile::tempdir().unwrap();
        let policy_path = dir.path().join("policy.json");
        let text = r#"{"apiVersion":"ldguard.policy/v1","name":"t","mode":"enforce","log":["deny"],
            "rules":[{"name":"r","kind":"file","access":["read"],"path":["/x/**"],"action":"deny"}]}"#;
        std::fs::write(&policy_path, text).unwrap();
        let location = policy_path.to_str().unwrap();
        let program = b"/bin/cat";
        let table = ldguard_policy::compile_str_for_program(text, location, program).unwrap();
        let cache = dir.path().join("cache");
        store(&cache, location, text, None, &table, program).unwrap();
        let policy = PolicyFile::new(location);
        let found = load(&cache, location, &policy, program).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(found.table.rule_count(), 1);
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
        let table_path = cached_path(&cache, location, program);
        assert!(
            maps.contains(table_path.to_str().unwrap()),
            "the table is mapped:\n{maps}"
        );
        // Damaged: refused, and its mapping is gone.
        let other = dir.path().join("other.json");
        std::fs::write(&other, text).unwrap();
        let other_location = other.to_str().unwrap();
        let bad = cached_path(&cache, other_location, program);
        let mut bytes = std::fs::read(&table_path).unwrap();
        let mid = bytes.len() / 3;
        bytes[mid] ^= 0x40;
        std::fs::write(&bad, &bytes).unwrap();
        let other_policy = PolicyFile::new(other_location);
        assert!(load(&cache, other_location, &other_policy, program).is_err());
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
        assert!(!maps.contains(bad.to_str().unwrap()), "{maps}");
    }

    /// A policy, its cached table written with the identity its first
    /// reader saw, and what a later process finds for it.
    struct Cached {
        _dir: tempfile::TempDir,
        cache: PathBuf,
        policy: PathBuf,
        text: String,
    }

    const PROGRAM: &[u8] = b"/bin/cat";

    /// The policy of the baked-table tests.
    const TEXT: &str = r#"{"apiVersion":"ldguard.policy/v1","name":"t","mode":"enforce","log":["deny"],
        "rules":[{"name":"r","kind":"file","access":["read"],"path":["/x/**"],"action":"deny"}]}"#;

    impl Cached {
        fn new() -> Cached {
            let dir = tempfile::tempdir().unwrap();
            let policy = dir.path().join("policy.json");
            let text = r#"{"apiVersion":"ldguard.policy/v1","name":"t","mode":"enforce","log":["deny"],
                "rules":[{"name":"r","kind":"file","access":["read"],"path":["/x/**"],"action":"deny"}]}"#;
            std::fs::write(&policy, text).unwrap();
            let cache = dir.path().join("cache");
            let c = Cached {
                _dir: dir,
                cache,
                policy,
                text: text.to_owned(),
            };
            c.store();
            c
        }

        fn location(&self) -> &str {
            self.policy.to_str().unwrap()
        }

        /// As the process that parses the policy stores its table.
        fn store(&self) {
            let file = PolicyFile::new(self.location());
            let text = String::from_utf8(file.read_all().unwrap()).unwrap();
            let table =
                ldguard_policy::compile_str_for_program(&text, self.location(), PROGRAM).unwrap();
            let id = file.identity();
            assert!(id.is_some());
            store(
                &self.cache,
                self.location(),
                &text,
                id.as_ref(),
                &table,
                PROGRAM,
            )
            .unwrap();
        }

        /// The table file's modification time moved `by` seconds, as if it
        /// had been written that much later.
        fn age_table(&self, by: u64) {
            let path = cached_path(&self.cache, self.location(), PROGRAM);
            let t = std::fs::metadata(&path).unwrap().modified().unwrap();
            let f = std::fs::File::options().write(true).open(&path).unwrap();
            f.set_modified(t + std::time::Duration::from_secs(by))
                .unwrap();
        }

        /// What a new process finds: the table's rule count, or why not,
        /// and whether it opened the policy.
        fn find(&self) -> (Result<usize, String>, bool) {
            let policy = PolicyFile::new(self.location());
            let found = load(&self.cache, self.location(), &policy, PROGRAM)
                .map(|f| f.table.rule_count())
                .map_err(|e| e.unwrap_or_default());
            (found, policy.was_opened())
        }

        /// The policy written in place, same length, one byte changed.
        fn edit_in_place(&self) {
            use std::io::{Seek, Write};
            let mut f = std::fs::File::options()
                .write(true)
                .open(&self.policy)
                .unwrap();
            let at = self.text.find("/x/").unwrap() as u64 + 1;
            f.seek(std::io::SeekFrom::Start(at)).unwrap();
            f.write_all(b"y").unwrap();
        }
    }

    /// A recorded identity stands for the policy's bytes only once the
    /// table is at least SETTLED newer than the policy's last change; a
    /// fresh table, or any other identity, compares the bytes.
    #[test]
    fn a_settled_identity_stands_for_the_bytes() {
        let c = Cached::new();
        assert_eq!(c.find(), (Ok(1), true), "too recent: compared");
        c.age_table(SETTLED as u64 + 1);
        assert_eq!(c.find(), (Ok(1), false), "settled: not opened");
        // Touched (a new modification time, same bytes): compared, and
        // the table is still the right one.
        let now = std::time::SystemTime::now() + std::time::Duration::from_secs(1);
        std::fs::File::options()
            .write(true)
            .open(&c.policy)
            .unwrap()
            .set_modified(now)
            .unwrap();
        assert_eq!(c.find(), (Ok(1), true), "touched: compared");
    }

    /// A same-size edit in place right after the table was written: the
    /// identity may even look unchanged within the timestamp granularity,
    /// but the change is too recent to stand for anything.
    #[test]
    fn an_edit_right_after_the_table_is_seen() {
        let c = Cached::new();
        c.edit_in_place();
        let (found, opened) = c.find();
        assert!(found.unwrap_err().contains("another policy text"));
        assert!(opened);
    }

    /// A same-size edit in place long after the table, with the policy's
    /// modification time even set back to what the table recorded: its
    /// change time moved, so the bytes are compared and the table refused.
    #[test]
    fn a_later_edit_of_the_same_size_is_seen() {
        let c = Cached::new();
        c.age_table(SETTLED as u64 + 1);
        assert_eq!(c.find(), (Ok(1), false));
        let mtime = std::fs::metadata(&c.policy).unwrap().modified().unwrap();
        // A change time one tick of the coarsest clock later.
        std::thread::sleep(std::time::Duration::from_millis(20));
        c.edit_in_place();
        std::fs::File::options()
            .write(true)
            .open(&c.policy)
            .unwrap()
            .set_modified(mtime)
            .unwrap();
        let (found, opened) = c.find();
        assert!(found.unwrap_err().contains("another policy text"));
        assert!(opened);
    }

    /// The policy replaced (rename over it) by a file of the same bytes:
    /// another inode, so the bytes are compared, and they match.
    #[test]
    fn a_replaced_policy_of_the_same_bytes_is_compared() {
        let c = Cached::new();
        c.age_table(SETTLED as u64 + 1);
        let tmp = c.policy.with_extension("new");
        std::fs::write(&tmp, &c.text).unwrap();
        std::fs::rename(&tmp, &c.policy).unwrap();
        assert_eq!(c.find(), (Ok(1), true));
        // Gone: the table is refused, as the policy cannot be read.
        std::fs::remove_file(&c.policy).unwrap();
        let (found, _) = c.find();
        assert!(found.is_err());
    }

    /// A policy with only its baked (generic, identity-less) table next to
    /// it, as `ldguard-layer` leaves one, and a cache directory.
    fn baked(table_text: &str) -> Cached {
        let dir = tempfile::tempdir().unwrap();
        let policy = dir.path().join("policy.json");
        let c = Cached {
            cache: dir.path().join("cache"),
            policy,
            text: TEXT.to_owned(),
            _dir: dir,
        };
        std::fs::write(&c.policy, &c.text).unwrap();
        let table = ldguard_policy::compile_str(table_text, "baked").unwrap();
        std::fs::write(baked_path(c.location()), encode(&table, table_text)).unwrap();
        c
    }

    /// The process that uses a baked table (comparing the policy's bytes)
    /// leaves the same table in the cache with the identity `fstat` gave
    /// of the policy; the next process takes that one, and once settled
    /// without opening the policy.
    #[test]
    fn a_used_baked_table_is_cached_with_the_identity() {
        let c = baked(TEXT);
        let cached = cached_path(&c.cache, c.location(), PROGRAM);
        assert_eq!(c.find(), (Ok(1), true), "the baked table, compared");
        let bytes = std::fs::read(&cached).expect("the baked table was cached");
        let st = std::fs::metadata(&c.policy).unwrap();
        let id = flat::recorded_identity(&bytes).expect("with an identity");
        assert_eq!((id.dev, id.ino, id.size), (st.dev(), st.ino(), st.size()));
        assert_eq!((id.ctime_sec, id.ctime_nsec), (st.ctime(), st.ctime_nsec()));
        assert_eq!((id.mtime_sec, id.mtime_nsec), (st.mtime(), st.mtime_nsec()));
        // The same table otherwise: the baked file's bytes after the header.
        let baked = std::fs::read(baked_path(c.location())).unwrap();
        assert_eq!(bytes[flat::HEADER_LEN..], baked[flat::HEADER_LEN..]);
        // Taken from the cache (the baked table gone), settled: not opened.
        std::fs::remove_file(baked_path(c.location())).unwrap();
        c.age_table(SETTLED as u64 + 1);
        assert_eq!(c.find(), (Ok(1), false), "the cached copy, by identity");
        // Nothing rewritten by a process that did not use the baked table.
        let mtime = std::fs::metadata(&cached).unwrap().modified().unwrap();
        assert_eq!(c.find(), (Ok(1), false));
        assert_eq!(
            std::fs::metadata(&cached).unwrap().modified().unwrap(),
            mtime
        );
    }

    /// A baked table of another policy text is refused, and nothing is
    /// written to the cache.
    #[test]
    fn a_baked_table_that_does_not_match_writes_nothing() {
        let c = baked(&TEXT.replace("/x/", "/y/"));
        let (found, opened) = c.find();
        assert!(found.unwrap_err().contains("another policy text"));
        assert!(opened);
        assert!(!cached_path(&c.cache, c.location(), PROGRAM).exists());
        assert!(!c.cache.exists(), "not even the directory");
    }

    /// A cache directory that cannot be written (here a file where it
    /// should be): the baked table is used all the same, every time.
    #[test]
    fn a_baked_table_is_used_when_the_cache_cannot_be_written() {
        let c = baked(TEXT);
        std::fs::write(&c.cache, "not a directory").unwrap();
        assert_eq!(c.find(), (Ok(1), true));
        assert_eq!(c.find(), (Ok(1), true));
        assert_eq!(std::fs::read(&c.cache).unwrap(), b"not a directory");
    }

    /// A table of the previous format (without the identity) is refused:
    /// the caller parses the policy and writes a new one.
    #[test]
    fn a_table_of_the_previous_format_is_refused() {
        let c = Cached::new();
        let path = cached_path(&c.cache, c.location(), PROGRAM);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[8..12].copy_from_slice(&4u32.to_le_bytes());
        flat::reseal(&mut bytes);
        std::fs::write(&path, &bytes).unwrap();
        let (found, _) = c.find();
        let why = found.unwrap_err();
        assert!(why.contains("table format 4, expected 5"), "{why}");
        c.store();
        assert_eq!(c.find().0, Ok(1));
    }
}
