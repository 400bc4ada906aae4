//! The compiled table in a flat, versioned byte form, so that a process can
//! take a [`RuleTable`] from a file instead of parsing, validating and
//! indexing the policy at start-up.
//!
//! This module knows bytes only: the preload library reads the file, and
//! the layer builder writes one into an image.
//!
//! Layout (little endian; offsets from the start):
//!
//! | offset | size | field |
//! | --- | --- | --- |
//! | 0 | 8 | magic `LDGTABLE` |
//! | 8 | 4 | [`FORMAT_VERSION`] |
//! | 12 | 4 | flags: bit 0 = specialised for the program below; bit 1 = the policy file's identity below was recorded |
//! | 16 | 32 | library version (UTF-8, NUL padded) |
//! | 48 | 32 | SHA-256 of the policy text |
//! | 80 | 4 | program length |
//! | 84 | 4 | payload length |
//! | 88 | 4 | policy text length |
//! | 92 | 4 | reserved (0) |
//! | 96 | 8 | checksum of everything before the policy text but itself |
//! | 104 | 8 | reserved (0) |
//! | 112 | 56 | the policy file's identity ([`PolicyIdentity`]: `st_dev`, `st_ino`, `st_size`, `st_mtime` seconds and nanoseconds, `st_ctime` seconds and nanoseconds, 8 bytes each) as the writer saw it before reading the text, or zeros |
//! | 168 | … | program, payload, policy text; each starts 8-aligned |
//!
//! Reading checks the header (magic, format, library version, program,
//! lengths) in constant time, asks the caller whether the embedded policy
//! text is the policy's (telling it the recorded identity: the preload
//! library takes an identical file identity, long enough after the last
//! change, for "the same bytes", and otherwise compares the text byte for
//! byte, so a table is only ever used for exactly the text it was compiled
//! from; see its `table_file` module), verifies the checksum
//! (any changed byte of the header or payload is caught), and then reads
//! the payload in place: every array (rule outcomes, names and program
//! globs, candidates, glob records and patterns, the path radix trees, the
//! network tables, the syscall table, the guarded patterns) is borrowed
//! from the file's bytes, and decoding checks only the few dozen lengths
//! that delimit them. Lookups read every index through a bounds-checked
//! access, so values that a buggy or hostile writer produced and the
//! checksum cannot know about give wrong answers at worst (a rule index
//! the table does not have is refused), never an access out of bounds, a
//! panic or a loop. The network interval tables' values (sorted starts,
//! monotone buckets, no bit past the last rule) are also checked once when
//! the table is written. Nothing is parsed from JSON, validated with
//! spans, indexed, allocated per rule or hashed: the full policy document
//! is parsed from the embedded text only if something asks for it
//! ([`RuleTable::policy`]).

use std::fmt;

use crate::compile::RuleTable;
use crate::glob::{GlobTable, GLOB_RECORD};

/// Bumped whenever the payload's layout or meaning changes (5: the policy
/// file's identity in the header).
pub const FORMAT_VERSION: u32 = 5;

const MAGIC: &[u8; 8] = b"LDGTABLE";
const IDENTITY_AT: usize = 112;
const IDENTITY_LEN: usize = 56;
const HEADER: usize = IDENTITY_AT + IDENTITY_LEN;
const VERSION_LEN: usize = 32;
const FLAG_SPECIALISED: u32 = 1;
const FLAG_IDENTITY: u32 = 2;

/// What `stat` said of the policy file a table was compiled from, taken
/// before its text was read: the fields that change when a file is
/// replaced (`dev`, `ino`) or written (`size`, `mtime`, and `ctime`, which
/// no unprivileged program can set back).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PolicyIdentity {
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
    pub mtime_sec: i64,
    pub mtime_nsec: i64,
    pub ctime_sec: i64,
    pub ctime_nsec: i64,
}

impl PolicyIdentity {
    fn words(&self) -> [u64; 7] {
        [
            self.dev,
            self.ino,
            self.size,
            self.mtime_sec as u64,
            self.mtime_nsec as u64,
            self.ctime_sec as u64,
            self.ctime_nsec as u64,
        ]
    }

    fn from_bytes(b: &[u8]) -> PolicyIdentity {
        let w = |i: usize| u64::from_le_bytes(b[i * 8..i * 8 + 8].try_into().expect("8 bytes"));
        PolicyIdentity {
            dev: w(0),
            ino: w(1),
            size: w(2),
            mtime_sec: w(3) as i64,
            mtime_nsec: w(4) as i64,
            ctime_sec: w(5) as i64,
            ctime_nsec: w(6) as i64,
        }
    }
}

/// What a table file must match to be used.
#[derive(Clone, Copy, Debug)]
pub struct Expect<'a> {
    /// The reading library's version (see [`encode`]).
    pub library_version: &'a str,
    /// The executable of the reading process: a table specialised for
    /// another program is refused; a generic one is accepted.
    pub program: &'a [u8],
    /// The policy text the caller would otherwise parse.
    pub policy_text: &'a [u8],
}

/// Why a table file was not used. Every case falls back to parsing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FlatError {
    /// Shorter than its header or than the lengths it declares.
    Truncated,
    BadMagic,
    OtherFormat(u32),
    OtherLibrary(String),
    OtherProgram,
    OtherPolicy,
    Checksum,
    /// The payload does not decode (bad index, bad value).
    Damaged(&'static str),
}

impl fmt::Display for FlatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FlatError::Truncated => f.write_str("truncated"),
            FlatError::BadMagic => f.write_str("not a compiled table (bad magic)"),
            FlatError::OtherFormat(v) => write!(f, "table format {v}, expected {FORMAT_VERSION}"),
            FlatError::OtherLibrary(v) => write!(f, "written by library version {v:?}"),
            FlatError::OtherProgram => f.write_str("specialised for another program"),
            FlatError::OtherPolicy => f.write_str("compiled from another policy text"),
            FlatError::Checksum => f.write_str("checksum mismatch (damaged)"),
            FlatError::Damaged(what) => write!(f, "damaged ({what})"),
        }
    }
}

impl std::error::Error for FlatError {}

/// A table taken from its flat form.
pub struct Decoded {
    pub table: RuleTable,
    /// SHA-256 of the policy text, as recorded by the writer.
    pub policy_sha256: [u8; 32],
}

/// The flat form of `table`, which must have been compiled from
/// `policy_text` (whose SHA-256 is `policy_sha256`). A table specialised by
/// [`RuleTable::for_program`] is only accepted by that program; a generic
/// one (such as the layer builder writes) by any. `library_version` (at
/// most 32 bytes) must equal the reader's for the file to be used.
pub fn encode(
    table: &RuleTable,
    policy_text: &str,
    policy_sha256: [u8; 32],
    library_version: &str,
) -> Vec<u8> {
    encode_with_identity(table, policy_text, policy_sha256, library_version, None)
}

/// [`encode`], recording `identity`: what `stat` said of the policy file
/// before `policy_text` was read from it.
pub fn encode_with_identity(
    table: &RuleTable,
    policy_text: &str,
    policy_sha256: [u8; 32],
    library_version: &str,
    identity: Option<&PolicyIdentity>,
) -> Vec<u8> {
    let mut w = Writer::default();
    table.encode_payload(&mut w);
    let mut payload = Vec::with_capacity(4 + w.strings.len() + w.buf.len());
    payload.extend_from_slice(&(w.strings.len() as u32).to_le_bytes());
    payload.extend_from_slice(&w.strings);
    payload.extend_from_slice(&w.buf);
    let program = table.program().unwrap_or(b"");
    let mut out =
        Vec::with_capacity(HEADER + program.len() + payload.len() + policy_text.len() + 16);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    let mut flags = if table.program().is_some() {
        FLAG_SPECIALISED
    } else {
        0
    };
    if identity.is_some() {
        flags |= FLAG_IDENTITY;
    }
    out.extend_from_slice(&flags.to_le_bytes());
    let mut version = [0u8; VERSION_LEN];
    let v = library_version.as_bytes();
    version[..v.len().min(VERSION_LEN)].copy_from_slice(&v[..v.len().min(VERSION_LEN)]);
    out.extend_from_slice(&version);
    out.extend_from_slice(&policy_sha256);
    for len in [program.len(), payload.len(), policy_text.len(), 0] {
        out.extend_from_slice(&(len as u32).to_le_bytes());
    }
    out.extend_from_slice(&[0u8; 16]);
    for word in identity.copied().unwrap_or_default().words() {
        out.extend_from_slice(&word.to_le_bytes());
    }
    debug_assert_eq!(out.len(), HEADER);
    out.extend_from_slice(program);
    pad8(&mut out);
    out.extend_from_slice(&payload);
    pad8(&mut out);
    let text_at = out.len();
    out.extend_from_slice(policy_text.as_bytes());
    let sum = checksum(&out[..96], &out[104..text_at]);
    out[96..104].copy_from_slice(&sum.to_le_bytes());
    out
}

/// Length of a table file's header: what [`header_with_identity`] returns.
pub const HEADER_LEN: usize = HEADER;

/// The header of the table file `bytes` with `identity` recorded in it and
/// the checksum recomputed, everything else as it was: written followed by
/// `bytes[HEADER_LEN..]`, it is the file [`encode_with_identity`] would
/// have written for the same table and text (so the preload library can
/// turn a baked table, which records no identity, into a cached one
/// without copying or re-encoding it). `None` when `bytes` is not a whole
/// table file of this format whose checksum holds, or when `identity`'s
/// size is not the length of the policy text the table holds (it cannot
/// be the identity of the file that text was read from).
pub fn header_with_identity(bytes: &[u8], identity: &PolicyIdentity) -> Option<[u8; HEADER]> {
    let mut head: [u8; HEADER] = bytes.get(..HEADER)?.try_into().ok()?;
    if head.get(..8)? != MAGIC {
        return None;
    }
    let u32_at = |h: &[u8; HEADER], at: usize| -> Option<u32> {
        Some(u32::from_le_bytes(h.get(at..at + 4)?.try_into().ok()?))
    };
    if u32_at(&head, 8)? != FORMAT_VERSION {
        return None;
    }
    let (program_len, payload_len, text_len) = (
        u32_at(&head, 80)? as usize,
        u32_at(&head, 84)? as usize,
        u32_at(&head, 88)? as usize,
    );
    let text_at = align8(align8(HEADER + program_len) + payload_len);
    if bytes.len() != text_at + text_len || identity.size != text_len as u64 {
        return None;
    }
    let rest = bytes.get(HEADER..text_at)?;
    let stored = u64::from_le_bytes(head.get(96..104)?.try_into().ok()?);
    if checksum_split(head.get(..96)?, head.get(104..)?, rest) != stored {
        return None;
    }
    let flags = u32_at(&head, 12)? | FLAG_IDENTITY;
    head.get_mut(12..16)?.copy_from_slice(&flags.to_le_bytes());
    for (slot, word) in head
        .get_mut(IDENTITY_AT..)?
        .chunks_exact_mut(8)
        .zip(identity.words())
    {
        slot.copy_from_slice(&word.to_le_bytes());
    }
    let sum = checksum_split(head.get(..96)?, head.get(104..)?, rest);
    head.get_mut(96..104)?.copy_from_slice(&sum.to_le_bytes());
    Some(head)
}

/// The policy file's identity a table file records, if it records one
/// (tests and tools; reading a table gets it from [`decode_for`]).
pub fn recorded_identity(bytes: &[u8]) -> Option<PolicyIdentity> {
    let flags = u32::from_le_bytes(bytes.get(12..16)?.try_into().ok()?);
    (flags & FLAG_IDENTITY != 0)
        .then(|| {
            bytes
                .get(IDENTITY_AT..HEADER)
                .map(PolicyIdentity::from_bytes)
        })
        .flatten()
}

/// Reads a table file's bytes; `bytes` must live as long as the table
/// (the preload library maps the file and never unmaps it).
pub fn decode(bytes: &'static [u8], expect: &Expect<'_>) -> Result<Decoded, FlatError> {
    decode_for(
        bytes,
        expect.library_version,
        expect.program,
        &mut |text: &[u8], _| text == expect.policy_text,
    )
}

/// [`decode`] for a caller that does not hold the policy text in memory:
/// `same_text` is asked whether the embedded text (all of it) equals the
/// policy's, with the policy file's identity when the writer recorded one,
/// once the header matched and before anything else is read. (The
/// checksum, which also covers the identity, is verified after it.)
pub fn decode_for(
    bytes: &'static [u8],
    library_version: &str,
    expected_program: &[u8],
    same_text: &mut dyn FnMut(&[u8], Option<&PolicyIdentity>) -> bool,
) -> Result<Decoded, FlatError> {
    if bytes.len() < HEADER {
        return Err(FlatError::Truncated);
    }
    if &bytes[..8] != MAGIC {
        return Err(FlatError::BadMagic);
    }
    let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
    let format = u32_at(8);
    if format != FORMAT_VERSION {
        return Err(FlatError::OtherFormat(format));
    }
    let flags = u32_at(12);
    let version = &bytes[16..16 + VERSION_LEN];
    let version = &version[..version.iter().position(|&b| b == 0).unwrap_or(VERSION_LEN)];
    let want = library_version.as_bytes();
    if version != &want[..want.len().min(VERSION_LEN)] {
        return Err(FlatError::OtherLibrary(
            String::from_utf8_lossy(version).into_owned(),
        ));
    }
    let (program_len, payload_len, text_len) = (
        u32_at(80) as usize,
        u32_at(84) as usize,
        u32_at(88) as usize,
    );
    let program_at = HEADER;
    let payload_at = align8(program_at + program_len);
    let text_at = align8(payload_at + payload_len);
    if bytes.len() != text_at + text_len {
        return Err(FlatError::Truncated);
    }
    let program = &bytes[program_at..program_at + program_len];
    let specialised = flags & FLAG_SPECIALISED != 0;
    if specialised && program != expected_program {
        return Err(FlatError::OtherProgram);
    }
    let text = &bytes[text_at..];
    let identity = (flags & FLAG_IDENTITY != 0)
        .then(|| PolicyIdentity::from_bytes(&bytes[IDENTITY_AT..HEADER]));
    if !same_text(text, identity.as_ref()) {
        return Err(FlatError::OtherPolicy);
    }
    let payload = &bytes[payload_at..payload_at + payload_len];
    let stored = u64::from_le_bytes(bytes[96..104].try_into().expect("8 bytes"));
    if checksum(&bytes[..96], &bytes[104..text_at]) != stored {
        return Err(FlatError::Checksum);
    }
    let mut sha = [0u8; 32];
    sha.copy_from_slice(&bytes[48..80]);
    let mut reader = Reader {
        buf: payload,
        strings: &[],
    };
    reader.strings = reader.bytes()?;
    let table = RuleTable::decode_payload(&mut reader, specialised.then_some(program), text)?;
    if !reader.buf.is_empty() {
        return Err(FlatError::Damaged("bytes after the payload"));
    }
    Ok(Decoded {
        table,
        policy_sha256: sha,
    })
}

fn align8(n: usize) -> usize {
    n.div_ceil(8) * 8
}

fn pad8(out: &mut Vec<u8>) {
    out.resize(align8(out.len()), 0);
}

/// Words summed per round: eight lanes of little-endian 64-bit words,
/// which compilers keep in SIMD registers (SSE2's 64-bit adds are part of
/// the x86-64 baseline).
const LANES: usize = 8;

/// A 64-bit checksum of `head` then `body` (Fletcher's construction over
/// 64-bit words, modulo 2^64, in [`LANES`] lanes): lane `i` takes every
/// `LANES`-th word and keeps the sum of its words and the sum of those
/// running sums; the lanes and each part's length are then folded by
/// steps that are bijective in the state and in the word. So any single
/// changed word (any changed or flipped byte) changes the result, as do
/// two words swapped within a lane unless `(a - b) * distance` is a
/// multiple of 2^64, and two in different lanes unless they were equal.
/// Two instructions per 16 bytes where the multiplicative hash it replaces
/// took about eight (BENCHMARKS.md section 17). Not a MAC: it finds
/// damage, not forgery.
fn checksum(head: &[u8], body: &[u8]) -> u64 {
    checksum_split(head, &[], body)
}

/// The header's bytes after the checksum, up to the program: one whole
/// round of [`checksum`]'s lanes, so that a new header's checksum can be
/// taken with the rest of the file where it lies ([`checksum_split`]).
const _: () = assert!((HEADER - 104).is_multiple_of(8 * LANES));

/// [`checksum`] of `head` and of the body `body_lead` then `body`, not
/// copied together: `body_lead` must be whole rounds (a multiple of
/// `8 * LANES` bytes long), as the header's tail is.
fn checksum_split(head: &[u8], body_lead: &[u8], body: &[u8]) -> u64 {
    const K: u64 = 0x9E37_79B9_7F4A_7C15;
    let step = |h: u64, w: u64| (h ^ w).wrapping_mul(K).rotate_left(29);
    debug_assert!(body_lead.len().is_multiple_of(8 * LANES));
    let mut sum = [0u64; LANES];
    let mut sums = [0u64; LANES];
    let mut lengths = 0x6C64_6774_6162_6C65u64;
    for (lead, part) in [(&[][..], head), (body_lead, body)] {
        add_rounds(lead, &mut sum, &mut sums);
        let whole = part.len() / (8 * LANES) * (8 * LANES);
        let (rounds, tail) = part.split_at(whole);
        add_rounds(rounds, &mut sum, &mut sums);
        let mut last = [0u8; 8 * LANES];
        for (to, from) in last.iter_mut().zip(tail) {
            *to = *from;
        }
        add_rounds(&last, &mut sum, &mut sums);
        lengths = step(lengths, (lead.len() + part.len()) as u64);
    }
    sum.iter()
        .zip(&sums)
        .fold(lengths, |h, (&a, &b)| step(step(h, a), b))
}

/// The rounds of [`checksum`] over `blocks` (a multiple of `8 * LANES`
/// bytes long). Written so that the lanes stay in vector registers, and
/// not inlined: inlined into its caller, it was compiled to scalar adds.
#[inline(never)]
fn add_rounds(blocks: &[u8], sum: &mut [u64; LANES], sums: &mut [u64; LANES]) {
    let (mut a, mut b) = (*sum, *sums);
    for block in blocks.chunks_exact(8 * LANES) {
        let block: &[u8; 8 * LANES] = block.try_into().expect("a whole block");
        for i in 0..LANES {
            let w = u64::from_le_bytes(block[i * 8..i * 8 + 8].try_into().expect("8 bytes"));
            a[i] = a[i].wrapping_add(w);
            b[i] = b[i].wrapping_add(a[i]);
        }
    }
    *sum = a;
    *sums = b;
}

/// Appends the payload's values.
#[derive(Default)]
pub(crate) struct Writer {
    buf: Vec<u8>,
    /// The patterns of every glob table, which records point into.
    strings: Vec<u8>,
}

impl Writer {
    #[cfg(test)]
    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }
    /// The payload's values and the glob patterns they point into.
    #[cfg(test)]
    pub fn into_parts(self) -> (Vec<u8>, Vec<u8>) {
        (self.buf, self.strings)
    }
    pub fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }
    pub fn bool(&mut self, v: bool) {
        self.buf.push(v as u8);
    }
    pub fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    pub fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    pub fn u128(&mut self, v: u128) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    /// Bytes without a length (the reader knows how many).
    pub fn raw(&mut self, b: &[u8]) {
        self.buf.extend_from_slice(b);
    }
    pub fn len(&mut self, n: usize) {
        self.u32(u32::try_from(n).expect("tables stay below 4 GiB"));
    }
    pub fn bytes(&mut self, b: &[u8]) {
        self.len(b.len());
        self.buf.extend_from_slice(b);
    }
    /// A glob table: its record count and records, its patterns' bytes
    /// appended to the payload's shared text (each record's offset moved
    /// accordingly), so that a reader borrows both in place.
    pub fn glob_table(&mut self, table: &GlobTable) {
        let (records, text) = table.parts();
        let base = u32::try_from(self.strings.len()).expect("tables stay below 4 GiB");
        self.len(records.len() / GLOB_RECORD);
        for rec in records.chunks_exact(GLOB_RECORD) {
            let at = u32::from_le_bytes(rec[..4].try_into().expect("4 bytes"));
            self.u32(base + at);
            self.raw(&rec[4..]);
        }
        self.strings.extend_from_slice(text);
    }
    /// Records of `size` bytes each, after their count (what
    /// [`Reader::records`] borrows).
    pub fn records(&mut self, size: usize, bytes: &[u8]) {
        debug_assert_eq!(bytes.len() % size, 0);
        self.len(bytes.len() / size);
        self.raw(bytes);
    }
}

/// Reads the payload's values; every read is bounds-checked.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    strings: &'a [u8],
}

pub(crate) type Read<T> = Result<T, FlatError>;

const SHORT: FlatError = FlatError::Damaged("payload ends early");

impl<'a> Reader<'a> {
    #[cfg(test)]
    pub fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf, strings: &[] }
    }
    /// A reader of `buf` whose glob tables point into `strings`.
    #[cfg(test)]
    pub fn with_strings(buf: &'a [u8], strings: &'a [u8]) -> Reader<'a> {
        Reader { buf, strings }
    }
    /// Whether every value was read.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }
    pub fn take(&mut self, n: usize) -> Read<&'a [u8]> {
        if self.buf.len() < n {
            return Err(SHORT);
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }
    pub fn u8(&mut self) -> Read<u8> {
        Ok(self.take(1)?[0])
    }
    pub fn bool(&mut self) -> Read<bool> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(FlatError::Damaged("bad flag")),
        }
    }
    pub fn u32(&mut self) -> Read<u32> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().expect("4")))
    }
    pub fn u128(&mut self) -> Read<u128> {
        Ok(u128::from_le_bytes(self.take(16)?.try_into().expect("16")))
    }
    /// A count of items of at least `min_size` bytes each, checked against
    /// what is left, so a damaged count cannot ask for a huge allocation.
    pub fn len(&mut self, min_size: usize) -> Read<usize> {
        let n = self.u32()? as usize;
        if n.saturating_mul(min_size) > self.buf.len() {
            return Err(SHORT);
        }
        Ok(n)
    }
    pub fn bytes(&mut self) -> Read<&'a [u8]> {
        let n = self.len(1)?;
        self.take(n)
    }
    pub fn str(&mut self) -> Read<&'a str> {
        std::str::from_utf8(self.bytes()?).map_err(|_| FlatError::Damaged("bad UTF-8"))
    }
    /// Records of `size` bytes written by [`Writer::records`], in place.
    pub fn records(&mut self, size: usize) -> Read<&'a [u8]> {
        let n = self.len(size)?;
        self.take(n * size)
    }
    /// One of `all`, by its index.
    pub fn pick<T: Copy>(&mut self, all: &[T]) -> Read<T> {
        all.get(self.u8()? as usize)
            .copied()
            .ok_or(FlatError::Damaged("bad enum value"))
    }
}

/// What is read in place borrows from the table, which lives for the
/// process.
impl Reader<'static> {
    /// A glob table written by [`Writer::glob_table`], in place: its
    /// records are checked when a glob is used ([`GlobTable::get`]).
    pub fn glob_table(&mut self) -> Read<GlobTable> {
        let records = self.records(GLOB_RECORD)?;
        Ok(GlobTable::borrowed(records, self.strings))
    }
}

pub(crate) fn damaged<T>(what: &'static str) -> Read<T> {
    Err(FlatError::Damaged(what))
}

/// Recomputes the checksum of a table file in place, for tests that damage
/// the payload itself and check that decoding still refuses or copes.
#[doc(hidden)]
pub fn reseal(bytes: &mut [u8]) {
    if bytes.len() < HEADER {
        return;
    }
    let len = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4")) as usize;
    let text_at = align8(align8(HEADER + len(80)) + len(84));
    if text_at > bytes.len() {
        return;
    }
    let sum = checksum(&bytes[..96], &bytes[104..text_at]);
    bytes[96..104].copy_from_slice(&sum.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::{
        checksum, checksum_split, decode_for, encode, encode_with_identity, header_with_identity,
        recorded_identity, reseal, PolicyIdentity, HEADER_LEN,
    };

    const TEXT: &str = r#"{"apiVersion":"ldguard.policy/v1","name":"t","mode":"enforce","log":["deny"],
        "rules":[{"name":"r","kind":"file","access":["read"],"path":["/x/**"],"action":"deny"}]}"#;

    fn identity(size: usize) -> PolicyIdentity {
        PolicyIdentity {
            dev: 0x803,
            ino: 1_234_567,
            size: size as u64,
            mtime_sec: 1_700_000_000,
            mtime_nsec: 123_456_789,
            ctime_sec: 1_700_000_001,
            ctime_nsec: 987_654_321,
        }
    }

    /// A table without an identity, given one by its header alone, is
    /// byte for byte the file written with that identity, generic or
    /// specialised, and decodes with it.
    #[test]
    fn a_header_with_an_identity_is_the_table_written_with_it() {
        let id = identity(TEXT.len());
        for table in [
            crate::compile_str(TEXT, "p").unwrap(),
            crate::compile_str_for_program(TEXT, "p", b"/bin/cat").unwrap(),
        ] {
            let plain = encode(&table, TEXT, [7; 32], "v1");
            assert_eq!(recorded_identity(&plain), None);
            let head = header_with_identity(&plain, &id).expect("a whole table");
            let mut restamped = head.to_vec();
            restamped.extend_from_slice(&plain[HEADER_LEN..]);
            assert_eq!(
                restamped,
                encode_with_identity(&table, TEXT, [7; 32], "v1", Some(&id))
            );
            assert_eq!(recorded_identity(&restamped), Some(id));
            let bytes: &'static [u8] = Box::leak(restamped.into_boxed_slice());
            let mut seen = None;
            let decoded = decode_for(bytes, "v1", b"/bin/cat", &mut |text, recorded| {
                seen = recorded.copied();
                text == TEXT.as_bytes()
            });
            assert!(decoded.is_ok());
            assert_eq!(seen, Some(id));
            // Given another identity again: only the identity changes.
            let other = PolicyIdentity { ino: 9, ..id };
            let head = header_with_identity(bytes, &other).unwrap();
            assert_eq!(recorded_identity(&head), Some(other));
            assert_eq!(head[..96], bytes[..96]);
        }
    }

    /// No header is made for bytes that are not a whole, undamaged table
    /// of this format, or for an identity whose size is not the text's.
    #[test]
    fn no_header_for_a_damaged_table_or_a_wrong_size() {
        let table = crate::compile_str(TEXT, "p").unwrap();
        let plain = encode(&table, TEXT, [7; 32], "v1");
        let id = identity(TEXT.len());
        assert!(header_with_identity(&plain, &id).is_some());
        assert!(header_with_identity(&plain, &identity(TEXT.len() + 1)).is_none());
        assert!(header_with_identity(&plain[..plain.len() - 1], &id).is_none());
        assert!(header_with_identity(&plain[..HEADER_LEN - 1], &id).is_none());
        assert!(header_with_identity(&[], &id).is_none());
        let mut longer = plain.clone();
        longer.push(0);
        assert!(header_with_identity(&longer, &id).is_none());
        // Any changed byte before the text (header or payload): the
        // checksum no longer holds, and no new one is made over it.
        let text_at = plain.len() - TEXT.len();
        for at in (0..text_at).filter(|at| !(96..104).contains(at)) {
            let mut b = plain.clone();
            b[at] ^= 0x10;
            assert!(header_with_identity(&b, &id).is_none(), "byte {at}");
        }
        // Another format, even resealed.
        let mut b = plain.clone();
        b[8..12].copy_from_slice(&4u32.to_le_bytes());
        reseal(&mut b);
        assert!(header_with_identity(&b, &id).is_none());
    }

    /// The checksum of a body split after whole rounds is the checksum of
    /// the body in one piece.
    #[test]
    fn a_split_body_has_the_same_checksum() {
        let head = sample(96);
        let body = sample(1000);
        for lead in [0, 64, 128, 960] {
            assert_eq!(
                checksum_split(&head, &body[..lead], &body[lead..]),
                checksum(&head, &body),
                "{lead}"
            );
        }
    }

    /// Bytes that look like a table: small integers, repeats and zeros.
    fn sample(len: usize) -> Vec<u8> {
        (0..len)
            .map(|i| match i % 37 {
                0..=9 => 0,
                10..=19 => (i / 37) as u8,
                _ => (i * 7 % 251) as u8,
            })
            .collect()
    }

    /// What the checksum promises: any changed byte (every bit of every
    /// position, in the head, the body, full blocks and the tail), words
    /// swapped (within a lane and across lanes), a zeroed word, and the
    /// split between head and body all change it.
    #[test]
    fn checksum_sees_changed_bytes_swapped_and_zeroed_words() {
        let head = sample(96);
        let body = sample(1000);
        let good = checksum(&head, &body);
        for at in 0..head.len() + body.len() {
            for bit in 0..8 {
                let (mut h, mut b) = (head.clone(), body.clone());
                match at.checked_sub(head.len()) {
                    None => h[at] ^= 1 << bit,
                    Some(i) => b[i] ^= 1 << bit,
                }
                assert_ne!(checksum(&h, &b), good, "byte {at} bit {bit}");
            }
        }
        let word = |b: &[u8], i: usize| b[i * 8..i * 8 + 8].to_vec();
        let words = body.len() / 8;
        for i in 0..words {
            for j in [i + 1, i + 8, i + 16, i + 3] {
                if j >= words || word(&body, i) == word(&body, j) {
                    continue;
                }
                let mut b = body.clone();
                let (wi, wj) = (word(&body, i), word(&body, j));
                b[i * 8..i * 8 + 8].copy_from_slice(&wj);
                b[j * 8..j * 8 + 8].copy_from_slice(&wi);
                assert_ne!(checksum(&head, &b), good, "words {i} and {j} swapped");
            }
            if word(&body, i) != [0; 8] {
                let mut b = body.clone();
                b[i * 8..i * 8 + 8].fill(0);
                assert_ne!(checksum(&head, &b), good, "word {i} zeroed");
            }
        }
        let mut moved = head.clone();
        moved.extend_from_slice(&body[..8]);
        assert_ne!(checksum(&moved, &body[8..]), good);
    }
}
