//! Globs over paths (`/` separated) and host names (`.` separated).
//!
//! `*` matches any run of characters inside one segment, `?` exactly one
//! character of a segment, and `**` (only as a whole segment) any number of
//! segments, zero included: `/etc/**` matches `/etc`, `/etc/passwd` and
//! `/etc/ssl/certs/x.pem`; `/usr/**/bin/*` matches `/usr/bin/ls`.
//!
//! Matching works on bytes and allocates nothing. Time is bounded by
//! O(pattern × text); there is no exponential backtracking.

use std::borrow::Cow;
use std::fmt;

/// What a glob is matched against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GlobStyle {
    /// File, exec and program paths: absolute, `/` separated.
    Path,
    /// Unix socket paths: like [`GlobStyle::Path`], or starting with `@` for
    /// abstract sockets.
    Unix,
    /// DNS names: `.` separated labels, ASCII case-insensitive.
    Host,
}

impl GlobStyle {
    const fn separator(self) -> u8 {
        match self {
            GlobStyle::Path | GlobStyle::Unix => b'/',
            GlobStyle::Host => b'.',
        }
    }
}

/// A compiled glob.
#[derive(Clone, PartialEq, Eq)]
pub struct Glob {
    text: Box<str>,
    /// The pattern bytes as matched (lower-cased for hosts).
    bytes: Box<[u8]>,
    style: GlobStyle,
    /// Length of the literal prefix every match starts with.
    prefix_len: usize,
    /// No wildcard at all: a plain comparison decides.
    literal: bool,
    /// Start of the literal text after the last wildcard: every match of an
    /// absolute path ends with `bytes[suffix_start..]`.
    suffix_start: usize,
}

impl fmt::Debug for Glob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Glob({:?})", self.text)
    }
}

/// Common glob forms with a constant-time test once the literal prefix is
/// known to match.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GlobShape {
    /// No wildcard: the text equals the prefix.
    Literal,
    /// `PREFIX/**`: the text is the prefix or continues with `/`.
    Subtree,
    /// `DIR/*`: the rest after the prefix has no separator.
    Children,
    /// `PREFIX` + wildcards within the last segment (`/usr/bin/*sh`,
    /// `/usr/bin/python3*`): the rest has no separator and matches the tail.
    LastSegment,
    /// `**/SEGMENT` with wildcards only inside that one segment: only the
    /// last segment of the text matters.
    Basename,
    /// `**/LITERAL/**`: the literal segments appear anywhere in the text.
    Contains,
    /// Anything else: run the matcher.
    General,
}

/// Why a pattern is not a valid glob.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GlobError {
    /// Byte offset into the pattern where the problem starts.
    pub offset: usize,
    /// Length of the offending part, in bytes (at least 1 when the pattern is
    /// non-empty).
    pub len: usize,
    pub message: String,
    pub hint: Option<String>,
}

impl GlobError {
    fn new(offset: usize, len: usize, message: impl Into<String>, hint: Option<String>) -> Self {
        GlobError {
            offset,
            len,
            message: message.into(),
            hint,
        }
    }
}

impl Glob {
    /// Parses and validates `pattern` for `style`.
    pub fn new(pattern: &str, style: GlobStyle) -> Result<Glob, GlobError> {
        validate(pattern, style)?;
        let bytes: Box<[u8]> = match style {
            GlobStyle::Host => pattern.to_ascii_lowercase().into_bytes().into(),
            _ => pattern.as_bytes().into(),
        };
        let sep = style.separator();
        let first_wild = bytes.iter().position(|&b| b == b'*' || b == b'?');
        let (prefix_len, literal) = match first_wild {
            None => (bytes.len(), true),
            Some(i) => {
                // `/etc/**` also matches `/etc`: the separator in front of a
                // `**` segment is optional, so it is not part of the prefix.
                let deep = bytes[i..].starts_with(b"**");
                if deep && i > 0 && bytes[i - 1] == sep {
                    (i - 1, false)
                } else {
                    (i, false)
                }
            }
        };
        let suffix_start = bytes
            .iter()
            .rposition(|&b| b == b'*' || b == b'?')
            .map_or(0, |i| i + 1);
        Ok(Glob {
            text: pattern.into(),
            bytes,
            style,
            prefix_len,
            literal,
            suffix_start,
        })
    }

    /// The glob as the matcher sees it.
    #[inline]
    pub(crate) fn view(&self) -> GlobRef<'_> {
        GlobRef {
            bytes: &self.bytes,
            style: self.style,
            prefix_len: self.prefix_len,
            literal: self.literal,
            suffix_start: self.suffix_start,
        }
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn style(&self) -> GlobStyle {
        self.style
    }

    /// The literal bytes every matching text starts with (lower-cased for
    /// host globs).
    pub fn literal_prefix(&self) -> &[u8] {
        &self.bytes[..self.prefix_len]
    }

    /// Whether the glob has no wildcard.
    pub fn is_literal(&self) -> bool {
        self.literal
    }

    /// The glob's shape, which lets the path index decide most candidates
    /// without running the general matcher.
    pub fn shape(&self) -> GlobShape {
        if self.literal {
            return GlobShape::Literal;
        }
        let tail = &self.bytes[self.prefix_len..];
        let sep = self.style.separator();
        if self.style != GlobStyle::Host && tail == b"/**" && self.prefix_len > 0 {
            return GlobShape::Subtree;
        }
        if tail == b"*" && self.bytes[..self.prefix_len].last() == Some(&sep) {
            return GlobShape::Children;
        }
        if self.style != GlobStyle::Host && self.prefix_len > 0 && !tail.contains(&sep) {
            return GlobShape::LastSegment;
        }
        if self.style != GlobStyle::Host
            && self.bytes.len() > 6
            && self.bytes.starts_with(b"**/")
            && self.bytes.ends_with(b"/**")
            && !self.bytes[3..self.bytes.len() - 3]
                .iter()
                .any(|&b| b == b'*' || b == b'?')
        {
            return GlobShape::Contains;
        }
        if self.style != GlobStyle::Host
            && self.prefix_len == 0
            && self.bytes.starts_with(b"**/")
            && !self.bytes[3..].contains(&sep)
            && !self.bytes[3..].starts_with(b"**")
        {
            return GlobShape::Basename;
        }
        GlobShape::General
    }

    /// The literal text after the last wildcard (all of it for a literal
    /// glob). A path glob can only match an absolute path ending with it.
    pub fn literal_suffix(&self) -> &[u8] {
        &self.bytes[self.suffix_start..]
    }

    /// For [`GlobShape::LastSegment`] globs: whether `rest`, the text after
    /// the literal prefix, matches the tail (with [`Glob::is_match`]'s
    /// answer when the prefix matched and the text is not `/`).
    pub fn tail_matches(&self, rest: &[u8]) -> bool {
        self.view().tail_matches(rest)
    }

    /// For [`GlobShape::Basename`] globs: whether the last segment of `text`
    /// matches (equivalent to [`Glob::is_match`] for them).
    pub fn basename_matches(&self, text: &[u8]) -> bool {
        self.view().basename_matches(text)
    }

    /// For [`GlobShape::Contains`] globs and an absolute `text`: whether the
    /// literal segments occur as whole segments (equivalent to
    /// [`Glob::is_match`] for them).
    pub fn contains_matches(&self, text: &[u8]) -> bool {
        self.view().contains_matches(text)
    }

    /// Whether `text` matches the whole glob.
    pub fn is_match(&self, text: &[u8]) -> bool {
        self.view().is_match(text)
    }
}

/// A glob as the matcher uses it, borrowed from a [`Glob`] or from a
/// [`GlobTable`] (and so from a mapped compiled-table file). Every method
/// is safe on any bytes and parts: a damaged table can give a wrong
/// answer, never a panic.
#[derive(Clone, Copy, Debug)]
pub(crate) struct GlobRef<'a> {
    bytes: &'a [u8],
    style: GlobStyle,
    prefix_len: usize,
    literal: bool,
    suffix_start: usize,
}

impl<'a> GlobRef<'a> {
    #[inline]
    pub fn literal_suffix(&self) -> &'a [u8] {
        self.bytes.get(self.suffix_start..).unwrap_or_default()
    }

    #[inline]
    pub fn tail_matches(&self, rest: &[u8]) -> bool {
        let tail = self.bytes.get(self.prefix_len..).unwrap_or_default();
        !rest.contains(&b'/') && match_segment::<false>(tail, rest)
    }

    pub fn basename_matches(&self, text: &[u8]) -> bool {
        let last = match text.iter().rposition(|&b| b == b'/') {
            Some(i) => &text[i + 1..],
            None => text,
        };
        match_segment::<false>(self.bytes.get(3..).unwrap_or_default(), last)
    }

    /// The `/LITERAL` of a `**/LITERAL/**` glob (its leading `/` included,
    /// so that it starts at a segment).
    #[inline]
    pub fn contains_needle(&self) -> &'a [u8] {
        self.bytes
            .get(2..self.bytes.len().saturating_sub(3))
            .unwrap_or_default()
    }

    pub fn contains_matches(&self, text: &[u8]) -> bool {
        let needle = self.contains_needle();
        if needle.is_empty() || text.len() < needle.len() {
            return false;
        }
        // Byte loops rather than `starts_with`: the needles are short and a
        // library memcmp call per `/` costs more than the comparison.
        (0..=text.len() - needle.len()).any(|i| {
            let end = i + needle.len();
            text[i] == b'/'
                && (end == text.len() || text[end] == b'/')
                && text[i + 1..end]
                    .iter()
                    .zip(&needle[1..])
                    .all(|(a, b)| a == b)
        })
    }

    pub fn is_match(&self, text: &[u8]) -> bool {
        match self.style {
            GlobStyle::Host => {
                let text = text.strip_suffix(b".").unwrap_or(text);
                if self.literal {
                    return text.eq_ignore_ascii_case(self.bytes);
                }
                match_segments::<true>(self.bytes, text, b'.')
            }
            _ => {
                if self.literal {
                    return *text == *self.bytes;
                }
                match_segments::<false>(self.bytes, text, b'/')
            }
        }
    }
}

/// Bytes of a record of a [`GlobTable`]: the pattern's offset and length in
/// the table's text, its literal prefix's length and the start of its
/// literal suffix (little-endian `u32`s), then its style, whether it is
/// literal, and a byte its owner may use (the path index stores each
/// glob's test there), and one byte of padding.
pub(crate) const GLOB_RECORD: usize = 20;

/// Globs as the compiled table stores them: fixed-size records and the
/// patterns' bytes (as matched), both borrowed from the mapped table file
/// when read from one (nothing is copied or allocated at start-up) and
/// owned when built from a policy. [`GlobTable::get`] checks every bound
/// of the record it reads.
#[derive(Clone, Debug, Default)]
pub(crate) struct GlobTable {
    records: Cow<'static, [u8]>,
    text: Cow<'static, [u8]>,
}

/// The little-endian `u32` at byte `at` of `bytes`, if there is one.
#[inline(always)]
pub(crate) fn le_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes(b.try_into().ok()?))
}

impl GlobTable {
    /// `globs` with each one's extra byte (see [`GLOB_RECORD`]).
    pub fn build<'g>(globs: impl IntoIterator<Item = (&'g Glob, u8)>) -> GlobTable {
        let mut records = Vec::new();
        let mut text = Vec::new();
        for (g, extra) in globs {
            for x in [text.len(), g.bytes.len(), g.prefix_len, g.suffix_start] {
                records.extend_from_slice(&(x as u32).to_le_bytes());
            }
            records.extend_from_slice(&[style_byte(g.style), g.literal as u8, extra, 0]);
            text.extend_from_slice(&g.bytes);
        }
        GlobTable {
            records: records.into(),
            text: text.into(),
        }
    }

    /// Records and text as they are stored: the caller places the text
    /// (see `crate::flat::Writer::glob_table`).
    pub fn parts(&self) -> (&[u8], &[u8]) {
        (&self.records, &self.text)
    }

    /// The table over `records`, whose offsets point into `text`.
    pub fn borrowed(records: &'static [u8], text: &'static [u8]) -> GlobTable {
        GlobTable {
            records: Cow::Borrowed(records),
            text: Cow::Borrowed(text),
        }
    }

    pub fn len(&self) -> usize {
        self.records.len() / GLOB_RECORD
    }

    /// Bytes of its records and text together (see [`GlobTable::with_byte`]).
    #[cfg(test)]
    pub fn stored_len(&self) -> usize {
        self.records.len() + self.text.len()
    }

    /// The table with byte `at` of its records, then of its text, set to
    /// `value` (damage, for tests).
    #[cfg(test)]
    pub fn with_byte(&self, at: usize, value: u8) -> GlobTable {
        let (mut records, mut text) = (self.records.to_vec(), self.text.to_vec());
        match at.checked_sub(records.len()) {
            None => records[at] = value,
            Some(i) => text[i] = value,
        }
        GlobTable {
            records: records.into(),
            text: text.into(),
        }
    }

    /// Whether the records are borrowed (read in place from a table).
    #[cfg(test)]
    pub fn is_borrowed(&self) -> bool {
        matches!(self.records, Cow::Borrowed(_)) && matches!(self.text, Cow::Borrowed(_))
    }

    /// Glob `i` and its extra byte; `None` when the table has no such
    /// glob or its record does not fit its text.
    #[inline]
    pub fn get(&self, i: usize) -> Option<(GlobRef<'_>, u8)> {
        let at = i.checked_mul(GLOB_RECORD)?;
        let rec = self.records.get(at..at.checked_add(GLOB_RECORD)?)?;
        let field = |k: usize| le_u32(rec, k * 4).map(|x| x as usize);
        let (start, len) = (field(0)?, field(1)?);
        let bytes = self.text.get(start..start.checked_add(len)?)?;
        let (prefix_len, suffix_start) = (field(2)?, field(3)?);
        if prefix_len > len || suffix_start > len {
            return None;
        }
        let style = match rec[16] {
            0 => GlobStyle::Path,
            1 => GlobStyle::Unix,
            2 => GlobStyle::Host,
            _ => return None,
        };
        Some((
            GlobRef {
                bytes,
                style,
                prefix_len,
                literal: rec[17] != 0,
                suffix_start,
            },
            rec[18],
        ))
    }

    /// Glob `i`'s pattern bytes alone (as matched).
    #[inline(always)]
    pub fn bytes_of(&self, i: usize) -> Option<&[u8]> {
        let at = i.checked_mul(GLOB_RECORD)?;
        let start = le_u32(&self.records, at)? as usize;
        let len = le_u32(&self.records, at.checked_add(4)?)? as usize;
        self.text.get(start..start.checked_add(len)?)
    }

    /// Glob `i`'s extra byte alone.
    #[inline(always)]
    pub fn extra(&self, i: usize) -> Option<u8> {
        self.records
            .get(i.checked_mul(GLOB_RECORD)?.checked_add(18)?)
            .copied()
    }

    /// Whether glob `i` matches `text` (`false` for a glob the table does
    /// not have).
    #[inline]
    pub fn is_match(&self, i: usize, text: &[u8]) -> bool {
        self.get(i).is_some_and(|(g, _)| g.is_match(text))
    }
}

fn style_byte(style: GlobStyle) -> u8 {
    match style {
        GlobStyle::Path => 0,
        GlobStyle::Unix => 1,
        GlobStyle::Host => 2,
    }
}

/// Splits off the next segment of `s` at `sep`.
#[inline]
fn next_segment(s: &[u8], sep: u8) -> (&[u8], Option<&[u8]>) {
    match s.iter().position(|&b| b == sep) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    }
}

/// Segment-level matching with `**` as the only multi-segment wildcard.
///
/// The greedy algorithm with a single backtrack point (the most recent `**`)
/// is exact here because each non-`**` pattern segment matches exactly one
/// text segment with a yes/no answer.
fn match_segments<const FOLD: bool>(pat: &[u8], text: &[u8], sep: u8) -> bool {
    // `None` means "no segments left"; `Some(rest)` is the unconsumed part
    // starting at a segment.
    let mut p: Option<&[u8]> = Some(pat);
    let mut t: Option<&[u8]> = Some(text);
    // The root path "/" is one empty segment, like the pattern "/".
    if text.len() == 1 && text[0] == sep {
        t = Some(&text[..0]);
    }
    if pat.len() == 1 && pat[0] == sep {
        p = Some(&pat[..0]);
    }
    // (pattern rest after the `**`, text rest it resumes from)
    type Resume<'a> = (Option<&'a [u8]>, Option<&'a [u8]>);
    let mut back: Option<Resume> = None;
    loop {
        let pseg = p.map(|rest| next_segment(rest, sep));
        if let Some((b"**", prest)) = pseg {
            // Try zero segments first; remember where to resume with one
            // more text segment swallowed.
            back = Some((prest, t));
            p = prest;
            continue;
        }
        match (pseg, t) {
            (None, None) => return true,
            (Some((ps, prest)), Some(trest)) => {
                let (ts, tnext) = next_segment(trest, sep);
                if match_segment::<FOLD>(ps, ts) {
                    p = prest;
                    t = tnext;
                    continue;
                }
            }
            _ => {}
        }
        // Mismatch: let the last `**` swallow one more text segment.
        match back {
            Some((bp, Some(bt))) => {
                let (_, tnext) = next_segment(bt, sep);
                back = Some((bp, tnext));
                p = bp;
                t = tnext;
            }
            _ => return false,
        }
    }
}

#[inline]
fn eq_byte<const FOLD: bool>(p: u8, t: u8) -> bool {
    if FOLD {
        p == t.to_ascii_lowercase()
    } else {
        p == t
    }
}

/// Length of the character starting at `t[0]`: a whole UTF-8 sequence when
/// it is one, else one byte (paths need not be UTF-8).
#[inline]
fn char_len(t: &[u8]) -> usize {
    let want = match t[0] {
        0xC2..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xF4 => 4,
        _ => return 1,
    };
    if t.len() >= want && t[1..want].iter().all(|&b| b & 0xC0 == 0x80) {
        want
    } else {
        1
    }
}

/// Matches one segment with `*` and `?` (classic two-pointer algorithm).
fn match_segment<const FOLD: bool>(pat: &[u8], text: &[u8]) -> bool {
    let (mut pi, mut ti) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < text.len() {
        if pi < pat.len() {
            match pat[pi] {
                b'*' => {
                    star = Some((pi + 1, ti));
                    pi += 1;
                    continue;
                }
                b'?' => {
                    pi += 1;
                    ti += char_len(&text[ti..]);
                    continue;
                }
                c if eq_byte::<FOLD>(c, text[ti]) => {
                    pi += 1;
                    ti += 1;
                    continue;
                }
                _ => {}
            }
        }
        match star {
            Some((sp, st)) => {
                let st = st + char_len(&text[st..]);
                star = Some((sp, st));
                pi = sp;
                ti = st;
            }
            None => return false,
        }
    }
    pat[pi..].iter().all(|&b| b == b'*')
}

/// Whether the path glob `pattern` (`/` separated, absolute or starting
/// with `**/`) can match something strictly below the directory `dir`
/// (absolute, normalised) by way of `dir`'s own name, without matching
/// `dir` itself: renaming `dir`, or making it the root, gives everything
/// below another path, and such a match would not hold under the new one.
/// (A pattern that matches `dir` too, `/tmp/**` for `/tmp/x`, covers it:
/// the checks of `dir` as an object decide.) A floating pattern `**/R`
/// whose `R` matches within what lies below `dir` alone keeps matching
/// under any new name, so only matches of `R` that start in one of `dir`'s
/// segments count (`**/.ssh/id_*` counts for `/home/u/.ssh`, not for
/// `/home/u`). Allocates nothing; a pattern of more than 64 segments is
/// assumed to match (the safe answer).
pub fn may_match_below(pattern: &[u8], dir: &[u8]) -> bool {
    let dir = if dir == b"/" { &dir[..0] } else { dir };
    let segments = || dir.split(|&b| b == b'/');
    let below = match pattern.strip_prefix(b"**/") {
        None => {
            // Most patterns part from `dir` within their literal prefix: a
            // byte comparison decides, before any segment matching.
            let mut i = 0;
            while i < pattern.len() && i < dir.len() {
                let p = pattern[i];
                if p == b'*' || p == b'?' {
                    break;
                }
                if p != dir[i] {
                    return false;
                }
                i += 1;
            }
            if i == dir.len() {
                // `dir` lies on the literal path (or is all of it).
                pattern.get(i) == Some(&b'/')
            } else {
                Segments::of(pattern).is_none_or(|p| p.live_after(segments()))
            }
        }
        // `**` swallows the first `k` segments of `dir` (the root's empty
        // one first), then `R` takes over inside `dir`, starting with a
        // segment its first one matches.
        Some(rest) => {
            let first = rest.split(|&b| b == b'/').next().unwrap_or_default();
            let literal = !first.iter().any(|&b| b == b'*' || b == b'?');
            let starts = |seg: &[u8]| {
                if literal {
                    seg == first
                } else {
                    first == b"**" || match_segment::<false>(first, seg)
                }
            };
            segments().any(starts)
                && Segments::of(rest).is_none_or(|r| {
                    segments()
                        .enumerate()
                        .any(|(k, seg)| starts(seg) && r.live_after(segments().skip(k)))
                })
        }
    };
    below && !match_segments::<false>(pattern, if dir.is_empty() { b"/" } else { dir }, b'/')
}

/// A path pattern split at `/` (segment starts), for [`may_match_below`].
struct Segments<'a> {
    pattern: &'a [u8],
    /// Start of segment i; `starts[n]` is one past the end (as if a `/`
    /// followed the last segment).
    starts: [u16; 65],
    n: usize,
    /// Bit i: segment i is `**`.
    stars: u128,
}

impl<'a> Segments<'a> {
    fn of(pattern: &'a [u8]) -> Option<Segments<'a>> {
        let mut starts = [0u16; 65];
        let mut n = 0;
        for (i, &b) in pattern.iter().enumerate() {
            if b == b'/' {
                n += 1;
                *starts.get_mut(n)? = u16::try_from(i + 1).ok()?;
            }
        }
        n += 1;
        *starts.get_mut(n)? = u16::try_from(pattern.len() + 1).ok()?;
        let mut segs = Segments {
            pattern,
            starts,
            n,
            stars: 0,
        };
        for i in 0..n {
            if segs.seg(i) == b"**" {
                segs.stars |= 1 << i;
            }
        }
        Some(segs)
    }

    fn seg(&self, i: usize) -> &'a [u8] {
        &self.pattern[self.starts[i] as usize..self.starts[i + 1] as usize - 1]
    }

    /// Whether some position other than the pattern's end is reachable
    /// after matching the segments `text` (the pattern can go on matching).
    fn live_after<'t>(&self, text: impl Iterator<Item = &'t [u8]>) -> bool {
        // Bit i: the next pattern segment to match is segment i (bit n: all
        // matched). `**` also stands for zero segments: its successor is live.
        let close = |mut set: u128| loop {
            let more = set | ((set & self.stars) << 1);
            if more == set {
                return set;
            }
            set = more;
        };
        let mut live = close(1);
        for t in text {
            let mut next = live & self.stars;
            let mut rest = live & !self.stars;
            while rest != 0 {
                let i = rest.trailing_zeros() as usize;
                rest &= rest - 1;
                if i < self.n && match_segment::<false>(self.seg(i), t) {
                    next |= 1 << (i + 1);
                }
            }
            live = close(next);
            if live == 0 {
                return false;
            }
        }
        live & ((1 << self.n) - 1) != 0
    }
}

fn validate(pattern: &str, style: GlobStyle) -> Result<(), GlobError> {
    let bytes = pattern.as_bytes();
    if bytes.is_empty() {
        return Err(GlobError::new(0, 0, "empty glob", None));
    }
    if let Some(i) = bytes.iter().position(|&b| b == 0) {
        return Err(GlobError::new(i, 1, "NUL byte in glob", None));
    }
    if let Some(i) = bytes.iter().position(|b| b"[]{}".contains(b)) {
        return Err(GlobError::new(
            i,
            1,
            format!(
                "`{}` is not supported in globs (no character classes or alternatives)",
                bytes[i] as char
            ),
            Some("list each alternative as a separate glob in the array".into()),
        ));
    }
    let sep = style.separator();
    match style {
        GlobStyle::Path | GlobStyle::Unix => {
            let abstract_ok = style == GlobStyle::Unix && bytes[0] == b'@';
            if bytes[0] != b'/' && !bytes.starts_with(b"**") && !abstract_ok {
                let what = if style == GlobStyle::Unix {
                    "unix socket glob must be absolute (start with `/`), start with `**`, or name an abstract socket with `@`"
                } else {
                    "path glob must be absolute (start with `/`) or start with `**`"
                };
                return Err(GlobError::new(
                    0,
                    1,
                    what,
                    Some(format!(
                        "paths are matched after being made absolute; write `/{pattern}` or `**/{pattern}`"
                    )),
                ));
            }
            if bytes.len() > 1 && bytes.ends_with(b"/") {
                let trimmed = pattern.trim_end_matches('/');
                return Err(GlobError::new(
                    bytes.len() - 1,
                    1,
                    "glob ends with `/`, but normalised paths never do",
                    Some(format!(
                        "write `{trimmed}` for the directory itself or `{trimmed}/**` for it and everything below"
                    )),
                ));
            }
        }
        GlobStyle::Host => {
            if let Some(i) = bytes
                .iter()
                .position(|&b| !(b.is_ascii_alphanumeric() || b"-_.*?".contains(&b)))
            {
                let ch = pattern[i..].chars().next().unwrap_or('?');
                return Err(GlobError::new(
                    i,
                    ch.len_utf8(),
                    format!("`{ch}` cannot appear in a host name glob"),
                    Some("host globs use letters, digits, `-`, `_`, `.`, `*` and `?` (IDN names in their `xn--` form)".into()),
                ));
            }
        }
    }
    // Segment checks.
    let mut offset = 0usize;
    let skip_first_empty = bytes[0] == sep;
    for (n, seg) in bytes.split(|&b| b == sep).enumerate() {
        let here = offset;
        offset += seg.len() + 1;
        if n == 0 && skip_first_empty {
            continue;
        }
        if bytes.len() == 1 {
            break;
        }
        if seg.is_empty() {
            let (msg, hint) = match style {
                GlobStyle::Host => (
                    "empty label in host glob (`..` or a leading or trailing `.`)",
                    "write the name without the extra `.`",
                ),
                _ => (
                    "empty path segment (`//`) in glob",
                    "normalised paths never contain `//`; remove the extra `/`",
                ),
            };
            return Err(GlobError::new(
                here.saturating_sub(1).min(bytes.len() - 1),
                1,
                msg,
                Some(hint.into()),
            ));
        }
        if style != GlobStyle::Host && (seg == b"." || seg == b"..") {
            return Err(GlobError::new(
                here,
                seg.len(),
                format!(
                    "`{}` segment in glob can never match a normalised path",
                    String::from_utf8_lossy(seg)
                ),
                Some("write the path without `.` and `..` segments".into()),
            ));
        }
        if seg.windows(2).any(|w| w == b"**") && seg != b"**" {
            let at = here + seg.windows(2).position(|w| w == b"**").unwrap_or(0);
            let s = sep as char;
            return Err(GlobError::new(
                at,
                seg.len() - (at - here),
                format!("`**` must be a whole segment (between `{s}`s)"),
                Some(format!(
                    "use `*` to match within one segment, or put `**` in its own segment like `{s}**{s}`"
                )),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn may_match_below_follows_wildcards_in_the_directory() {
        use super::may_match_below as below;
        // Literal prefix below the directory, or the directory inside it.
        assert!(below(b"/d/secret/**", b"/d"));
        // A pattern that matches the directory itself covers it: its own
        // checks decide.
        assert!(!below(b"/d/secret/**", b"/d/secret"));
        assert!(!below(b"/d/secret/**", b"/d/secret/sub"));
        assert!(!below(b"/tmp/**", b"/tmp/x/y"));
        assert!(!below(b"/d/secret/**", b"/d/pub"));
        assert!(
            !below(b"/d/secret/f", b"/d/secret/f"),
            "the object itself is not below"
        );
        // A wildcard before the protected part: the literal prefix `/d/`
        // lies above the directory, the rule still reaches below it.
        assert!(below(b"/d/*/inner/**", b"/d/secret"));
        assert!(!below(b"/d/*/inner/**", b"/d/secret/other"));
        assert!(below(b"/home/*/.ssh/**", b"/home/u"));
        assert!(!below(b"/home/*/.ssh/**", b"/home/u/project"));
        assert!(below(b"/usr/**/bin/*", b"/usr/local/share"));
        assert!(below(b"/etc/shadow", b"/"));
        // Floating: only a match that starts in the directory's own name.
        assert!(below(b"**/inner/f", b"/d/secret/inner"));
        assert!(!below(b"**/inner/f", b"/d/secret"));
        assert!(below(b"**/.ssh/id_*", b"/home/u/.ssh"));
        assert!(!below(b"**/.ssh/id_*", b"/home/u"));
        assert!(below(b"**/.config/gcloud/**", b"/root/.config"));
        assert!(!below(b"**/.config/gcloud/**", b"/root/.config/gcloud"));
        assert!(!below(b"**/.config/gcloud/**", b"/root/build"));
        assert!(!below(b"**/x", b"/"));
    }

    use super::*;

    fn m(pat: &str, text: &str) -> bool {
        Glob::new(pat, GlobStyle::Path)
            .unwrap()
            .is_match(text.as_bytes())
    }

    fn h(pat: &str, text: &str) -> bool {
        Glob::new(pat, GlobStyle::Host)
            .unwrap()
            .is_match(text.as_bytes())
    }

    #[test]
    fn literal_globs_match_exactly() {
        assert!(m("/bin/sh", "/bin/sh"));
        assert!(!m("/bin/sh", "/bin/sh2"));
        assert!(!m("/bin/sh", "/bin"));
        assert!(m("/", "/"));
        assert!(!m("/", "/etc"));
    }

    #[test]
    fn star_stays_inside_one_segment() {
        assert!(m("/usr/bin/*sh", "/usr/bin/bash"));
        assert!(m("/usr/bin/*sh", "/usr/bin/sh"));
        assert!(!m("/usr/bin/*sh", "/usr/bin/x/bash"));
        assert!(!m("/usr/*", "/usr/bin/ls"));
        assert!(m("/usr/*", "/usr/bin"));
        assert!(!m("/*", "/"));
        assert!(m("/home/*/.ssh/*", "/home/alice/.ssh/id_rsa"));
        assert!(!m("/home/*/.ssh/*", "/home/alice/x/.ssh/id_rsa"));
        assert!(m("/tmp/*.*", "/tmp/a.b"));
        assert!(!m("/tmp/*.*", "/tmp/ab"));
        assert!(m("/a*b*c", "/abbbc"));
        assert!(m("/a*b*c", "/abc"));
        assert!(!m("/a*b*c", "/acb"));
        assert!(m("/*", "/.hidden"));
    }

    #[test]
    fn question_mark_is_one_character_of_a_segment() {
        assert!(m("/bin/?sh", "/bin/zsh"));
        assert!(!m("/bin/?sh", "/bin/sh"));
        assert!(!m("/bin/?sh", "/bin/bash"));
        assert!(!m("/a?b", "/a/b"));
        assert!(m("/caf?", "/café"));
        // Invalid UTF-8 counts byte by byte.
        assert!(Glob::new("/x?", GlobStyle::Path)
            .unwrap()
            .is_match(b"/x\xff"));
        assert!(!Glob::new("/x?", GlobStyle::Path)
            .unwrap()
            .is_match(b"/x\xff\xfe"));
    }

    #[test]
    fn double_star_at_the_end() {
        assert!(m("/etc/**", "/etc"));
        assert!(m("/etc/**", "/etc/passwd"));
        assert!(m("/etc/**", "/etc/ssl/certs/ca.pem"));
        assert!(!m("/etc/**", "/etcetera"));
        assert!(!m("/etc/**", "/"));
        assert!(m("/**", "/"));
        assert!(m("/**", "/anything/at/all"));
    }

    #[test]
    fn double_star_at_the_start() {
        assert!(m("**/sh", "/sh"));
        assert!(m("**/sh", "/bin/sh"));
        assert!(m("**/sh", "/usr/local/bin/sh"));
        assert!(!m("**/sh", "/bin/bash"));
        assert!(m("**/.ssh/**", "/home/u/.ssh/id_rsa"));
        assert!(m("**", "/x/y"));
    }

    #[test]
    fn double_star_in_the_middle() {
        assert!(m("/usr/**/bin/*", "/usr/bin/ls"));
        assert!(m("/usr/**/bin/*", "/usr/local/bin/ls"));
        assert!(m("/usr/**/bin/*", "/usr/a/b/c/bin/ls"));
        assert!(!m("/usr/**/bin/*", "/usr/a/b/c/bin"));
        assert!(!m("/usr/**/bin/*", "/usr/lib/ls"));
        assert!(m("/a/**/b/**/c", "/a/b/c"));
        assert!(m("/a/**/b/**/c", "/a/x/b/y/z/c"));
        assert!(!m("/a/**/b/**/c", "/a/x/y/c"));
        assert!(m("/a/**/**/b", "/a/b"));
    }

    #[test]
    fn prefixes_are_what_every_match_starts_with() {
        let p = |s: &str| {
            String::from_utf8(
                Glob::new(s, GlobStyle::Path)
                    .unwrap()
                    .literal_prefix()
                    .to_vec(),
            )
            .unwrap()
        };
        assert_eq!(p("/etc/**"), "/etc");
        assert_eq!(p("/usr/bin/*sh"), "/usr/bin/");
        assert_eq!(p("/bin/sh"), "/bin/sh");
        assert_eq!(p("**/sh"), "");
        assert_eq!(p("/a/**/b"), "/a");
        assert_eq!(p("/a/b?"), "/a/b");
    }

    #[test]
    fn shapes_agree_with_the_matcher() {
        let shape = |s: &str| Glob::new(s, GlobStyle::Path).unwrap().shape();
        assert_eq!(shape("/bin/sh"), GlobShape::Literal);
        assert_eq!(shape("/etc/**"), GlobShape::Subtree);
        assert_eq!(shape("/usr/bin/*"), GlobShape::Children);
        assert_eq!(shape("/usr/bin/*sh"), GlobShape::LastSegment);
        assert_eq!(shape("/usr/bin/python3*"), GlobShape::LastSegment);
        assert_eq!(shape("/a/*/b"), GlobShape::General);
        assert_eq!(shape("/**"), GlobShape::General);
        assert_eq!(shape("**/x"), GlobShape::Basename);
        assert_eq!(shape("**/cpuminer*"), GlobShape::Basename);
        assert_eq!(shape("**/.aws/credentials"), GlobShape::General);
        assert_eq!(shape("**/**"), GlobShape::General);
        assert_eq!(shape("/a/**/b"), GlobShape::General);
        assert_eq!(
            Glob::new("*.x.com", GlobStyle::Host).unwrap().shape(),
            GlobShape::General
        );
    }

    #[test]
    fn suffixes_end_every_match() {
        let suffix = |s: &str| {
            String::from_utf8(
                Glob::new(s, GlobStyle::Path)
                    .unwrap()
                    .literal_suffix()
                    .to_vec(),
            )
            .unwrap()
        };
        assert_eq!(suffix("**/.aws/credentials"), "/.aws/credentials");
        assert_eq!(suffix("/usr/bin/*sh"), "sh");
        assert_eq!(suffix("/etc/**"), "");
        assert_eq!(suffix("/a/**/b"), "/b");
        assert_eq!(suffix("/bin/sh"), "/bin/sh");
        let g = Glob::new("**/cpuminer*", GlobStyle::Path).unwrap();
        for t in [
            "/cpuminer",
            "/tmp/x/cpuminer-avx",
            "/cpuminer/x",
            "/",
            "/bin/sh",
        ] {
            assert_eq!(
                g.basename_matches(t.as_bytes()),
                g.is_match(t.as_bytes()),
                "{t}"
            );
        }
        let all = Glob::new("**/*", GlobStyle::Path).unwrap();
        assert_eq!(all.basename_matches(b"/"), all.is_match(b"/"));
    }

    #[test]
    fn contains_shape_agrees_with_the_matcher() {
        let g = Glob::new("**/.config/gcloud/**", GlobStyle::Path).unwrap();
        assert_eq!(g.shape(), GlobShape::Contains);
        for t in [
            "/home/u/.config/gcloud/creds.json",
            "/.config/gcloud",
            "/x/.config/gcloud",
            "/x/.config/gcloudx/y",
            "/x/a.config/gcloud/y",
            "/x/.config/gcloud",
            "/.config",
            "/",
        ] {
            assert_eq!(
                g.contains_matches(t.as_bytes()),
                g.is_match(t.as_bytes()),
                "{t}"
            );
        }
    }

    #[test]
    fn last_segment_shape_agrees_with_the_matcher() {
        for (pat, texts) in [
            (
                "/usr/bin/*sh",
                &[
                    "/usr/bin/dash",
                    "/usr/bin/sh",
                    "/usr/bin/x/sh",
                    "/usr/bin/shx",
                ][..],
            ),
            (
                "/usr/bin/python3*",
                &[
                    "/usr/bin/python3",
                    "/usr/bin/python3.11",
                    "/usr/bin/python3/x",
                ],
            ),
            ("/?", &["/", "/a", "/ab"]),
            ("/x?y", &["/xay", "/x/y", "/xy"]),
        ] {
            let g = Glob::new(pat, GlobStyle::Path).unwrap();
            assert_eq!(g.shape(), GlobShape::LastSegment, "{pat}");
            let p = g.literal_prefix().len();
            for t in texts {
                let t = t.as_bytes();
                let fast =
                    t.starts_with(g.literal_prefix()) && t.len() > 1 && g.tail_matches(&t[p..]);
                assert_eq!(fast, g.is_match(t), "{pat} {}", String::from_utf8_lossy(t));
            }
        }
    }

    #[test]
    fn host_globs_use_labels_and_ignore_case() {
        assert!(h("*.example.com", "api.example.com"));
        assert!(h("*.example.com", "API.Example.COM"));
        assert!(h("*.EXAMPLE.com", "api.example.com"));
        assert!(!h("*.example.com", "example.com"));
        assert!(!h("*.example.com", "a.b.example.com"));
        assert!(h("**.example.com", "a.b.example.com"));
        assert!(h("**.example.com", "example.com"));
        assert!(h("metadata.google.internal", "metadata.google.internal."));
        assert!(!h("*.example.com", "api.example.com.evil.net"));
        assert!(h("api-?.example.com", "api-1.example.com"));
    }

    #[test]
    fn unix_globs_allow_abstract_sockets() {
        let g = Glob::new("@dbus-*", GlobStyle::Unix).unwrap();
        assert!(g.is_match(b"@dbus-1234"));
        assert!(Glob::new("/var/run/docker.sock", GlobStyle::Unix).is_ok());
        assert!(Glob::new("@x", GlobStyle::Path).is_err());
    }

    fn err(pat: &str, style: GlobStyle) -> GlobError {
        Glob::new(pat, style).unwrap_err()
    }

    #[test]
    fn rejects_bad_globs_with_positions() {
        let e = err("etc/passwd", GlobStyle::Path);
        assert_eq!(
            (e.offset, e.message.as_str()),
            (
                0,
                "path glob must be absolute (start with `/`) or start with `**`"
            )
        );
        let e = err("/usr/**bin", GlobStyle::Path);
        assert_eq!(e.offset, 5);
        assert!(e.message.contains("`**` must be a whole segment"));
        let e = err("/etc/", GlobStyle::Path);
        assert_eq!(e.offset, 4);
        let e = err("/a//b", GlobStyle::Path);
        assert_eq!(e.offset, 2);
        let e = err("/a/../b", GlobStyle::Path);
        assert_eq!((e.offset, e.len), (3, 2));
        let e = err("/bin/[ab]sh", GlobStyle::Path);
        assert_eq!(e.offset, 5);
        assert_eq!(err("", GlobStyle::Path).message, "empty glob");
        let e = err("*.exa mple.com", GlobStyle::Host);
        assert_eq!(e.offset, 5);
        let e = err("a..b", GlobStyle::Host);
        assert!(e.message.starts_with("empty label"));
        let e = err("/a***", GlobStyle::Path);
        assert_eq!(e.offset, 2);
    }
}
