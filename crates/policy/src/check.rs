//! Validation of a policy document into a [`Policy`], reporting every
//! problem with its exact position, what was expected and a hint.

use crate::diag::{Diagnostic, Diagnostics, Level};
use crate::format::PolicyFormat;
use crate::glob::{Glob, GlobStyle};
use crate::json::{self, Json, Member, Span, Value};
use crate::model::{Backstop, LogSet, Policy, Rule};
use crate::net::{Cidr, PortRange};
use crate::{
    Access, Action, Call, Direction, Kind, LandlockLevel, LogClass, Mode, Protocol, Severity,
};

/// The only document version this engine reads.
pub const API_VERSION: &str = "ldguard.policy/v1";

const POLICY_FIELDS: &[&str] = &[
    "apiVersion",
    "name",
    "mode",
    "log",
    "defaults",
    "ignore",
    "description",
    "rules",
    "backstop",
    "drift",
];
const BACKSTOP_FIELDS: &[&str] = &["seccomp", "landlock"];
const RULE_FIELDS: &[&str] = &[
    "name",
    "kind",
    "action",
    "enabled",
    "severity",
    "errno",
    "description",
    "program",
    "path",
    "access",
    "direction",
    "address",
    "port",
    "protocol",
    "unix",
    "host",
    "call",
];

/// The matcher fields each kind accepts (`program` applies to all).
pub const fn matchers(kind: Kind) -> &'static [&'static str] {
    match kind {
        Kind::File => &["program", "path", "access"],
        Kind::Exec => &["program", "path"],
        Kind::Network => &[
            "program",
            "direction",
            "address",
            "port",
            "protocol",
            "unix",
            "host",
        ],
        Kind::Syscall => &["program", "call"],
    }
}

const ALL_MATCHERS: &[&str] = &[
    "program",
    "path",
    "access",
    "direction",
    "address",
    "port",
    "protocol",
    "unix",
    "host",
    "call",
];

/// Parses and validates `text`. Returns the policy when there is no error,
/// and every diagnostic (warnings included) either way, in source order.
pub fn check_str(text: &str, origin: &str) -> (Option<Policy>, Diagnostics) {
    check_source(text, origin, PolicyFormat::Json)
}

/// [`check_str`] for a document in `format` (JSON, or YAML with the `yaml`
/// feature); diagnostics point into `text` either way.
pub fn check_source(
    text: &str,
    origin: &str,
    format: PolicyFormat,
) -> (Option<Policy>, Diagnostics) {
    let mut c = Checker {
        text,
        origin,
        diags: Vec::new(),
    };
    let policy = match format.parse(text) {
        Ok(root) => c.policy(&root),
        Err(e) => {
            c.push(Level::Error, e.span, e.message, e.expected, e.hint);
            None
        }
    };
    c.diags.sort_by_key(|d| (d.span.0, d.level));
    let ok = !c.diags.iter().any(Diagnostic::is_error);
    (policy.filter(|_| ok), Diagnostics(c.diags))
}

struct Checker<'a> {
    text: &'a str,
    origin: &'a str,
    diags: Vec<Diagnostic>,
}

fn quote_list(items: &[&str]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| format!("`{s}`")).collect();
    match quoted.len() {
        0 => String::new(),
        1 => quoted[0].clone(),
        n => format!("{} or {}", quoted[..n - 1].join(", "), quoted[n - 1]),
    }
}

fn one_of(items: &[&str]) -> String {
    if items.len() == 1 {
        quote_list(items)
    } else {
        format!("one of {}", quote_list(items))
    }
}

/// Edit distance with adjacent swaps (optimal string alignment), for "did
/// you mean" hints: `mdoe` is one edit from `mode`.
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            d[i][j] = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d[i][j] = d[i][j].min(d[i - 2][j - 2] + 1);
            }
        }
    }
    d[a.len()][b.len()]
}

fn suggest<'c>(word: &str, candidates: impl IntoIterator<Item = &'c str>) -> Option<&'c str> {
    let lower = word.to_ascii_lowercase();
    candidates
        .into_iter()
        .map(|c| {
            (
                if c.to_ascii_lowercase() == lower {
                    0
                } else {
                    distance(&lower, &c.to_ascii_lowercase())
                },
                c,
            )
        })
        .filter(|&(d, c)| d <= (c.chars().count() / 3).max(1))
        .min_by_key(|&(d, _)| d)
        .map(|(_, c)| c)
}

fn did_you_mean(word: &str, candidates: &[&str]) -> Option<String> {
    suggest(word, candidates.iter().copied()).map(|s| format!("did you mean `{s}`?"))
}

/// What a rule's members look like before they become a [`Rule`].
struct RuleFields<'v> {
    open: Span,
    members: Vec<&'v Member>,
}

impl<'v> RuleFields<'v> {
    fn get(&self, key: &str) -> Option<&'v Member> {
        self.members.iter().copied().find(|m| m.key == key)
    }
}

impl Checker<'_> {
    fn push(
        &mut self,
        level: Level,
        span: Span,
        message: String,
        expected: Option<String>,
        hint: Option<String>,
    ) {
        let (line, col) = json::line_col(self.text, span.start);
        self.diags.push(Diagnostic {
            level,
            origin: self.origin.to_string(),
            line,
            col,
            span: (span.start, span.end),
            message,
            expected,
            hint,
        });
    }

    fn error(
        &mut self,
        span: Span,
        message: impl Into<String>,
        expected: Option<String>,
        hint: Option<String>,
    ) {
        self.push(Level::Error, span, message.into(), expected, hint);
    }

    /// The span of the opening `{` of an object (in YAML, the first
    /// character of its first key), for "missing field" errors.
    fn open_brace(&self, span: Span) -> Span {
        let len = self
            .text
            .get(span.start..)
            .and_then(|rest| rest.chars().next())
            .map_or(0, char::len_utf8);
        Span {
            start: span.start,
            end: span.start + len,
        }
    }

    /// The source span of `len` bytes at `offset` inside a string value,
    /// when the string has no escapes (else the whole string). The value is
    /// quoted (JSON, quoted YAML) or plain (YAML), so its text starts one
    /// byte or zero bytes into the span.
    fn inner_span(&self, v: &Value, offset: usize, len: usize) -> Span {
        let whole = self.text.get(v.span.start..v.span.end).unwrap_or("");
        let quoted = whole
            .get(1..whole.len().saturating_sub(1))
            .filter(|_| whole.len() >= 2 && matches!(whole.as_bytes()[0], b'"' | b'\''));
        let (raw, lead) = match quoted {
            Some(inner) => (inner, 1),
            None => (whole, 0),
        };
        match &v.json {
            Json::String(s) if s == raw && offset <= s.len() => {
                // Offsets come from byte-level checks: widen to whole
                // characters so the span can be sliced and underlined.
                let mut start = offset;
                while !s.is_char_boundary(start) {
                    start -= 1;
                }
                let mut end = (offset + len).min(s.len());
                while !s.is_char_boundary(end) {
                    end += 1;
                }
                Span {
                    start: v.span.start + lead + start,
                    end: v.span.start + lead + end,
                }
            }
            _ => v.span,
        }
    }

    fn type_error(&mut self, v: &Value, what: &str, field: &str, hint: Option<String>) {
        self.error(
            v.span,
            format!("`{field}` must be {what}, found {}", v.type_name()),
            Some(what.to_string()),
            hint,
        );
    }

    fn string<'v>(&mut self, v: &'v Value, field: &str) -> Option<&'v str> {
        match &v.json {
            Json::String(s) => Some(s),
            _ => {
                let hint = matches!(v.json, Json::Array(_))
                    .then(|| format!("`{field}` takes a single value"));
                self.type_error(v, "a string", field, hint);
                None
            }
        }
    }

    /// Object members with duplicate and unknown keys reported.
    fn members<'v>(
        &mut self,
        v: &'v Value,
        context: &str,
        known: &[&str],
        misplaced: &dyn Fn(&str) -> Option<String>,
    ) -> Option<Vec<&'v Member>> {
        let Json::Object(members) = &v.json else {
            self.error(
                v.span,
                format!("{context} must be an object, found {}", v.type_name()),
                Some("an object `{ … }`".into()),
                None,
            );
            return None;
        };
        let mut out: Vec<&Member> = Vec::new();
        for m in members {
            if let Some(first) = out.iter().find(|o| o.key == m.key) {
                let (line, _) = json::line_col(self.text, first.key_span.start);
                self.error(
                    m.key_span,
                    format!("duplicate field `{}` in {context}", m.key),
                    None,
                    Some(format!(
                        "`{}` is already set on line {line}; keep one",
                        m.key
                    )),
                );
                continue;
            }
            if !known.contains(&m.key.as_str()) {
                let hint = did_you_mean(&m.key, known).or_else(|| misplaced(&m.key));
                self.error(
                    m.key_span,
                    format!("unknown field `{}` in {context}", m.key),
                    Some(one_of(known)),
                    hint,
                );
                continue;
            }
            out.push(m);
        }
        Some(out)
    }

    fn enum_value<T: Copy>(
        &mut self,
        v: &Value,
        field: &str,
        what: &str,
        parse: fn(&str) -> Option<T>,
        all: &[&str],
        extra_hint: &dyn Fn(&str) -> Option<String>,
    ) -> Option<T> {
        let s = self.string(v, field)?;
        match parse(s) {
            Some(x) => Some(x),
            None => {
                let hint = did_you_mean(s, all).or_else(|| extra_hint(s));
                self.error(
                    v.span,
                    format!("unknown {what} `{s}`"),
                    Some(one_of(all)),
                    hint,
                );
                None
            }
        }
    }

    /// A list field: a non-empty array, or a single value standing for a
    /// one-element list.
    fn list<'v>(&mut self, v: &'v Value, field: &str, item: &str) -> Option<Vec<&'v Value>> {
        match &v.json {
            Json::Array(items) if items.is_empty() => {
                self.error(
                    v.span,
                    format!("empty `{field}` list matches nothing"),
                    Some(format!("at least one {item}")),
                    Some(format!(
                        "remove `{field}` to match any value, or list at least one {item}"
                    )),
                );
                None
            }
            Json::Array(items) => Some(items.iter().collect()),
            Json::Object(_) | Json::Null | Json::Bool(_) => {
                self.type_error(v, &format!("an array of {item}s"), field, None);
                None
            }
            _ => Some(vec![v]),
        }
    }

    fn enum_list<T: Copy>(
        &mut self,
        v: &Value,
        field: &str,
        what: &str,
        parse: fn(&str) -> Option<T>,
        all: &[&str],
    ) -> Option<Vec<T>> {
        let items = self.list(v, field, what)?;
        let mut out = Vec::new();
        let mut ok = true;
        for item in items {
            let synonym = |s: &str| {
                let same = match s {
                    "egress" | "out" | "connect" => "outbound",
                    "ingress" | "in" | "accept" => "inbound",
                    "bind" => "listen",
                    "rw" | "readwrite" => {
                        return Some("list both: `[\"read\", \"write\"]`".to_string())
                    }
                    _ => return None,
                };
                Some(format!("use `{same}`"))
            };
            match self.enum_value(item, field, what, parse, all, &synonym) {
                Some(x) => out.push(x),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    fn globs(&mut self, v: &Value, field: &str, style: GlobStyle) -> Option<Vec<Glob>> {
        let items = self.list(v, field, "glob")?;
        let mut out = Vec::new();
        let mut ok = true;
        for item in items {
            let Some(s) = self.string(item, field) else {
                ok = false;
                continue;
            };
            match Glob::new(s, style) {
                Ok(g) => out.push(g),
                Err(e) => {
                    let span = self.inner_span(item, e.offset, e.len.max(1));
                    let expected = match style {
                        GlobStyle::Path => {
                            "an absolute path glob such as `/usr/bin/*` or `/etc/**`"
                        }
                        GlobStyle::Unix => {
                            "a socket path glob such as `/var/run/*.sock` or `@name`"
                        }
                        GlobStyle::Host => "a host name glob such as `*.example.com`",
                    };
                    self.error(
                        span,
                        format!("bad glob `{s}` in `{field}`: {}", e.message),
                        Some(expected.into()),
                        e.hint,
                    );
                    ok = false;
                }
            }
        }
        ok.then_some(out)
    }

    fn cidrs(&mut self, v: &Value) -> Option<Vec<Cidr>> {
        let items = self.list(v, "address", "address")?;
        let mut out = Vec::new();
        let mut ok = true;
        for item in items {
            let Some(s) = self.string(item, "address") else {
                ok = false;
                continue;
            };
            match Cidr::parse(s) {
                Ok(c) => out.push(c),
                Err(e) => {
                    let span = self.inner_span(item, e.offset, s.len() - e.offset);
                    self.error(
                        span,
                        format!("bad CIDR `{s}` in `address`: {}", e.message),
                        Some(
                            "an IPv4 or IPv6 address or CIDR such as `10.0.0.0/8` or `fd00::/8`"
                                .into(),
                        ),
                        e.hint,
                    );
                    ok = false;
                }
            }
        }
        ok.then_some(out)
    }

    fn ports(&mut self, v: &Value) -> Option<Vec<PortRange>> {
        let items = self.list(v, "port", "port")?;
        let mut out = Vec::new();
        let mut ok = true;
        for item in items {
            let parsed = match &item.json {
                Json::String(s) => PortRange::parse(s).map_err(|e| {
                    let span = self.inner_span(item, e.offset, s.len() - e.offset);
                    (span, format!("bad port range `{s}`: {}", e.message), e.hint)
                }),
                Json::Number(n) => match n.parse::<u16>() {
                    Ok(p) => Ok(PortRange { lo: p, hi: p }),
                    Err(_) => Err((
                        item.span,
                        format!("bad port `{n}`: not a port number (0-65535)"),
                        None,
                    )),
                },
                _ => {
                    self.type_error(item, "a port number or a range string", "port", None);
                    ok = false;
                    continue;
                }
            };
            match parsed {
                Ok(r) => out.push(r),
                Err((span, message, hint)) => {
                    self.error(
                        span,
                        message,
                        Some("a port such as `443` or a range such as `\"8000-8999\"`".into()),
                        hint,
                    );
                    ok = false;
                }
            }
        }
        ok.then_some(out)
    }

    fn calls(&mut self, v: &Value, field: &str, only: Option<Kind>) -> Option<Vec<Call>> {
        let items = self.list(v, field, "call name")?;
        let mut out = Vec::new();
        let mut ok = true;
        let names: Vec<&str> = Call::ALL
            .iter()
            .filter(|c| only.is_none_or(|k| c.kind() == k))
            .map(|c| c.name())
            .collect();
        for item in items {
            let Some(s) = self.string(item, field) else {
                ok = false;
                continue;
            };
            match Call::from_name(s) {
                Some(c) if only.is_none_or(|k| c.kind() == k) => out.push(c),
                Some(c) => {
                    self.error(
                        item.span,
                        format!("`{s}` is not a syscall-kind call"),
                        Some("a call such as `ptrace`, `mount`, `unshare` or `setns`".into()),
                        Some(format!(
                            "`{s}` is governed by `{}` rules; write one of those instead",
                            c.kind()
                        )),
                    );
                    ok = false;
                }
                None => {
                    let hint = did_you_mean(s, &names).or_else(|| {
                        Some("see docs/policy.md for the list of interposed calls".into())
                    });
                    let expected = if only.is_some() {
                        "a syscall-kind call name"
                    } else {
                        "an interposed call name"
                    };
                    self.error(
                        item.span,
                        format!("unknown call `{s}`"),
                        Some(expected.into()),
                        hint,
                    );
                    ok = false;
                }
            }
        }
        ok.then_some(out)
    }

    fn policy(&mut self, root: &Value) -> Option<Policy> {
        let misplaced = |key: &str| {
            RULE_FIELDS
                .contains(&key)
                .then(|| format!("`{key}` is a rule field; put it inside a rule in `rules`"))
        };
        let members = self.members(root, "the policy", POLICY_FIELDS, &misplaced)?;
        let get = |key: &str| members.iter().copied().find(|m| m.key == key);
        let open = self.open_brace(root.span);
        let mut ok = true;

        match get("apiVersion") {
            None => {
                self.error(
                    open,
                    "missing field `apiVersion`",
                    Some(format!("`\"apiVersion\": \"{API_VERSION}\"`")),
                    None,
                );
                ok = false;
            }
            Some(m) => match self.string(&m.value, "apiVersion") {
                Some(API_VERSION) => {}
                Some(other) => {
                    self.error(
                        m.value.span,
                        format!("unsupported apiVersion `{other}`"),
                        Some(format!("`{API_VERSION}`")),
                        Some(format!(
                            "this version of ldguard reads `{API_VERSION}` documents"
                        )),
                    );
                    ok = false;
                }
                None => ok = false,
            },
        }
        let name = match get("name") {
            None => {
                self.error(
                    open,
                    "missing field `name`",
                    Some("`\"name\": \"…\"` naming the policy in events".into()),
                    None,
                );
                None
            }
            Some(m) => self.nonempty_string(&m.value, "name"),
        };
        let mode = match get("mode") {
            None => Some(Mode::Enforce),
            Some(m) => self.enum_value(&m.value, "mode", "mode", Mode::parse, Mode::NAMES, &|_| {
                None
            }),
        };
        let log = match get("log") {
            None => Some(LogSet::default()),
            Some(m) => self.log(&m.value),
        };
        let defaults = match get("defaults") {
            None => Some([Action::Allow; 4]),
            Some(m) => self.defaults(&m.value),
        };
        let ignore = match get("ignore") {
            None => Some(Vec::new()),
            Some(m) => match &m.value.json {
                // An empty ignore list is harmless: nothing is ignored.
                Json::Array(items) if items.is_empty() => Some(Vec::new()),
                _ => self.calls(&m.value, "ignore", None),
            },
        };
        let description = match get("description") {
            None => Some(None),
            Some(m) => self
                .string(&m.value, "description")
                .map(|s| Some(s.to_string())),
        };
        let rules = match get("rules") {
            None => Some(Vec::new()),
            Some(m) => self.rules(&m.value),
        };
        let backstop = match get("backstop") {
            None => Some(None),
            Some(m) => self.backstop(m, mode),
        };
        let drift = match get("drift") {
            None => Some(None),
            Some(m) => self
                .enum_value(
                    &m.value,
                    "drift",
                    "drift action",
                    Action::parse,
                    Action::NAMES,
                    &|s| {
                        matches!(s, "on" | "true" | "block").then(|| {
                            "the value is the action for a drifted executable, e.g. `deny`".into()
                        })
                    },
                )
                .map(Some),
        };
        if !ok {
            return None;
        }
        Some(Policy {
            name: name?,
            mode: mode?,
            log: log?,
            defaults: defaults?,
            ignore: ignore?,
            description: description?,
            rules: rules?,
            backstop: backstop?,
            drift: drift?,
        })
    }

    /// `backstop`: `{"seccomp": bool, "landlock": "off"|"best-effort"|"required"}`.
    fn backstop(&mut self, m: &Member, mode: Option<Mode>) -> Option<Option<Backstop>> {
        let v = &m.value;
        if let Json::Bool(_) | Json::String(_) = v.json {
            self.type_error(
                v,
                "an object",
                "backstop",
                Some("write `{\"seccomp\": true, \"landlock\": \"best-effort\"}`".into()),
            );
            return None;
        }
        let misplaced = |_: &str| None;
        let members = self.members(v, "`backstop`", BACKSTOP_FIELDS, &misplaced)?;
        // An unknown or duplicate field is already an error.
        let mut ok = matches!(&v.json, Json::Object(all) if all.len() == members.len());
        let mut backstop = Backstop {
            seccomp: false,
            landlock: LandlockLevel::Off,
        };
        for f in members {
            match f.key.as_str() {
                "seccomp" => match f.value.json {
                    Json::Bool(b) => backstop.seccomp = b,
                    _ => {
                        let hint =
                            matches!(&f.value.json, Json::String(s) if s == "true" || s == "false")
                                .then(|| "write true or false without quotes".to_string());
                        self.type_error(&f.value, "a boolean", "seccomp", hint);
                        ok = false;
                    }
                },
                _ => {
                    let hint = |s: &str| {
                        matches!(s, "on" | "true" | "enforce" | "yes").then(|| {
                            "use `best-effort`, or `required` to refuse kernels without it"
                                .to_string()
                        })
                    };
                    let level = if let Json::Bool(b) = f.value.json {
                        self.type_error(
                            &f.value,
                            "a string",
                            "landlock",
                            Some(
                                if b {
                                    "use `\"best-effort\"` or `\"required\"`"
                                } else {
                                    "use `\"off\"`"
                                }
                                .into(),
                            ),
                        );
                        None
                    } else {
                        self.enum_value(
                            &f.value,
                            "landlock",
                            "landlock level",
                            LandlockLevel::parse,
                            LandlockLevel::NAMES,
                            &hint,
                        )
                    };
                    match level {
                        Some(l) => backstop.landlock = l,
                        None => ok = false,
                    }
                }
            }
        }
        if !ok {
            return None;
        }
        if !backstop.any() {
            self.push(
                Level::Warning,
                m.key_span,
                "`backstop` turns nothing on".into(),
                None,
                Some("set `\"seccomp\": true` or `\"landlock\": \"best-effort\"`, or remove `backstop`".into()),
            );
        } else if let Some(mode @ (Mode::Permissive | Mode::Disabled)) = mode {
            self.push(
                Level::Warning,
                m.key_span,
                format!("`backstop` is not installed while the mode is `{mode}`"),
                None,
                Some("the kernel backstop is installed in `enforce` mode only; it takes effect once the policy enforces".into()),
            );
        }
        Some(Some(backstop))
    }

    fn nonempty_string(&mut self, v: &Value, field: &str) -> Option<String> {
        let s = self.string(v, field)?;
        if s.trim().is_empty() {
            self.error(
                v.span,
                format!("`{field}` must not be empty"),
                Some("a non-empty string".into()),
                None,
            );
            return None;
        }
        if s.chars().any(char::is_control) {
            self.error(
                v.span,
                format!("`{field}` must not contain control characters"),
                None,
                None,
            );
            return None;
        }
        Some(s.to_string())
    }

    fn log(&mut self, v: &Value) -> Option<LogSet> {
        let Json::Array(items) = &v.json else {
            self.type_error(
                v,
                "an array of outcomes",
                "log",
                Some("for example `[\"deny\", \"audit\"]`".into()),
            );
            return None;
        };
        let all = LogClass::NAMES;
        let mut set = LogSet::EMPTY;
        let mut ok = true;
        for item in items {
            let kill_hint = |s: &str| {
                (s == "kill").then(|| "`kill` outcomes are logged under `deny`".to_string())
            };
            match self.enum_value(item, "log", "log outcome", LogClass::parse, all, &kill_hint) {
                Some(c) => set = set.with(c),
                None => ok = false,
            }
        }
        ok.then_some(set)
    }

    fn defaults(&mut self, v: &Value) -> Option<[Action; 4]> {
        let kinds = Kind::NAMES;
        let members = self.members(v, "`defaults`", kinds, &|_| None)?;
        let actions = Action::NAMES;
        let mut out = [Action::Allow; 4];
        let mut ok = true;
        for m in members {
            let kind = Kind::parse(&m.key).expect("members() filtered unknown keys");
            match self.enum_value(&m.value, &m.key, "action", Action::parse, actions, &|_| {
                None
            }) {
                Some(a) => out[kind.index()] = a,
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    fn rules(&mut self, v: &Value) -> Option<Vec<Rule>> {
        let Json::Array(items) = &v.json else {
            self.type_error(v, "an array of rules", "rules", None);
            return None;
        };
        if items.is_empty() {
            self.error(
                v.span,
                "empty `rules` array",
                Some("at least one rule".into()),
                Some(
                    "add a rule, or leave `rules` out for a policy that only sets `defaults`"
                        .into(),
                ),
            );
            return None;
        }
        let mut out = Vec::new();
        let mut ok = true;
        let mut seen: Vec<(String, Span)> = Vec::new();
        for item in items {
            match self.rule(item, &mut seen) {
                Some(r) => out.push(r),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    fn rule(&mut self, v: &Value, seen: &mut Vec<(String, Span)>) -> Option<Rule> {
        let misplaced = |key: &str| {
            POLICY_FIELDS
                .contains(&key)
                .then(|| format!("`{key}` is a policy field; move it out of `rules`"))
        };
        let members = self.members(v, "rule", RULE_FIELDS, &misplaced)?;
        let f = RuleFields {
            open: self.open_brace(v.span),
            members,
        };
        if matches!(&v.json, Json::Object(m) if m.is_empty()) {
            self.error(
                f.open,
                "empty rule",
                Some("`name`, `kind`, `action` and at least one matcher".into()),
                Some("remove the empty `{}` or fill it in".into()),
            );
            return None;
        }
        let mut ok = true;
        let name = match f.get("name") {
            None => {
                self.error(
                    f.open,
                    "rule is missing field `name`",
                    Some("`\"name\": \"…\"`, unique in the policy".into()),
                    None,
                );
                None
            }
            Some(m) => {
                let name = self.nonempty_string(&m.value, "name");
                if let Some(n) = &name {
                    if let Some((_, first)) = seen.iter().find(|(s, _)| s == n) {
                        let (line, _) = json::line_col(self.text, first.start);
                        self.error(
                            m.value.span,
                            format!("duplicate rule name `{n}`"),
                            Some("a name no other rule uses".into()),
                            Some(format!("a rule named `{n}` is already defined on line {line}; events and `explain` name rules, so names must be unique")),
                        );
                        ok = false;
                    } else {
                        seen.push((n.clone(), m.value.span));
                    }
                }
                name
            }
        };
        let label = name
            .as_deref()
            .map_or_else(|| "rule".to_string(), |n| format!("rule `{n}`"));
        let kind = match f.get("kind") {
            None => {
                self.error(
                    f.open,
                    format!("{label} is missing field `kind`"),
                    Some(one_of(Kind::NAMES)),
                    None,
                );
                None
            }
            Some(m) => self.enum_value(&m.value, "kind", "kind", Kind::parse, Kind::NAMES, &|_| {
                None
            }),
        };
        let action = match f.get("action") {
            None => {
                self.error(
                    f.open,
                    format!("{label} is missing field `action`"),
                    Some(one_of(Action::NAMES)),
                    None,
                );
                None
            }
            Some(m) => self.enum_value(
                &m.value,
                "action",
                "action",
                Action::parse,
                Action::NAMES,
                &|s| (s == "block" || s == "reject").then(|| "use `deny`".to_string()),
            ),
        };
        let enabled = match f.get("enabled") {
            None => Some(true),
            Some(m) => match m.value.json {
                Json::Bool(b) => Some(b),
                _ => {
                    let hint =
                        matches!(&m.value.json, Json::String(s) if s == "true" || s == "false")
                            .then(|| "write true or false without quotes".to_string());
                    self.type_error(&m.value, "a boolean", "enabled", hint);
                    None
                }
            },
        };
        let severity = match f.get("severity") {
            None => Some(Severity::Medium),
            Some(m) => self.enum_value(
                &m.value,
                "severity",
                "severity",
                Severity::parse,
                Severity::NAMES,
                &|_| None,
            ),
        };
        let description = match f.get("description") {
            None => Some(None),
            Some(m) => self
                .string(&m.value, "description")
                .map(|s| Some(s.to_string())),
        };
        let errno = match f.get("errno") {
            None => Some(None),
            Some(m) => self.errno(m, action),
        };

        // Matchers: each must belong to the rule's kind.
        let mut rule = Rule {
            name: String::new(),
            kind: kind.unwrap_or(Kind::File),
            action: Action::Allow,
            enabled: true,
            severity: Severity::Medium,
            errno: None,
            description: None,
            program: None,
            path: None,
            access: None,
            direction: None,
            address: None,
            port: None,
            protocol: None,
            unix: None,
            host: None,
            call: None,
        };
        let mut any_matcher = false;
        for m in &f.members {
            let key = m.key.as_str();
            if !ALL_MATCHERS.contains(&key) {
                continue;
            }
            any_matcher = true;
            if let Some(kind) = kind {
                if !matchers(kind).contains(&key) {
                    let owners: Vec<&str> = Kind::ALL
                        .iter()
                        .filter(|k| matchers(**k).contains(&key))
                        .map(|k| k.as_str())
                        .collect();
                    let hint = match key {
                        "access" if kind == Kind::Exec => "exec rules match what is executed; use a `file` rule to restrict reads or writes".to_string(),
                        "path" => "use `unix` for socket paths, or make this a `file` or `exec` rule".to_string(),
                        _ => format!("`{key}` belongs to {} rules", quote_list(&owners)),
                    };
                    self.error(
                        m.key_span,
                        format!("`{key}` does not apply to `{kind}` rules"),
                        Some(format!(
                            "for `{kind}` rules: {}",
                            quote_list(matchers(kind))
                        )),
                        Some(hint),
                    );
                    ok = false;
                    continue;
                }
            }
            let v = &m.value;
            let parsed = match key {
                "program" => self
                    .globs(v, key, GlobStyle::Path)
                    .map(|g| rule.program = Some(g)),
                "path" => self
                    .globs(v, key, GlobStyle::Path)
                    .map(|g| rule.path = Some(g)),
                "unix" => self
                    .globs(v, key, GlobStyle::Unix)
                    .map(|g| rule.unix = Some(g)),
                "host" => self
                    .globs(v, key, GlobStyle::Host)
                    .map(|g| rule.host = Some(g)),
                "access" => self
                    .enum_list(v, key, "access", Access::parse, Access::NAMES)
                    .map(|x| rule.access = Some(x)),
                "direction" => self
                    .enum_list(v, key, "direction", Direction::parse, Direction::NAMES)
                    .map(|x| rule.direction = Some(x)),
                "protocol" => self
                    .enum_list(v, key, "protocol", Protocol::parse, Protocol::NAMES)
                    .map(|x| rule.protocol = Some(x)),
                "address" => self.cidrs(v).map(|x| rule.address = Some(x)),
                "port" => self.ports(v).map(|x| rule.port = Some(x)),
                "call" => self
                    .calls(v, key, Some(Kind::Syscall))
                    .map(|x| rule.call = Some(x)),
                _ => unreachable!("ALL_MATCHERS lists exactly these"),
            };
            ok &= parsed.is_some();
        }
        if let Some(unix) = f.get("unix") {
            let clash: Vec<&str> = ["address", "port", "protocol", "host"]
                .into_iter()
                .filter(|k| f.get(k).is_some())
                .collect();
            if !clash.is_empty() {
                self.error(
                    unix.key_span,
                    format!("`unix` and {} can never match together", quote_list(&clash)),
                    Some("either `unix`, or IP matchers (`address`, `port`, `protocol`, `host`)".into()),
                    Some("a socket is either a unix socket or an IP socket; split this into two rules".into()),
                );
                ok = false;
            }
        }
        if !any_matcher {
            if let Some(kind) = kind {
                self.error(
                    f.open,
                    format!("{label} has no matcher, so it would match every `{kind}` operation"),
                    Some(format!("at least one of {}", quote_list(matchers(kind)))),
                    Some(format!(
                        "set `defaults.{kind}` for a catch-all action, or add a matcher"
                    )),
                );
                ok = false;
            }
        }
        if !ok {
            return None;
        }
        rule.name = name?;
        rule.kind = kind?;
        rule.action = action?;
        rule.enabled = enabled?;
        rule.severity = severity?;
        rule.description = description?;
        rule.errno = errno?;
        Some(rule)
    }

    fn errno(&mut self, m: &Member, action: Option<Action>) -> Option<Option<i32>> {
        let s = self.string(&m.value, "errno")?;
        let names: Vec<&str> = crate::errno::TABLE.iter().map(|(n, _)| *n).collect();
        let Some(n) = crate::errno::from_name(s) else {
            let hint = did_you_mean(s, &names)
                .or_else(|| Some("errno names are upper case, like `ECONNREFUSED`".into()));
            self.error(
                m.value.span,
                format!("unknown errno `{s}`"),
                Some("an errno name such as `EACCES`, `EPERM` or `ECONNREFUSED`".into()),
                hint,
            );
            return None;
        };
        if action.is_some_and(|a| a != Action::Deny) {
            self.error(
                m.key_span,
                "`errno` only applies to rules whose action is `deny`",
                None,
                Some("remove `errno`, or make the action `deny`".into()),
            );
            return None;
        }
        Some(Some(n))
    }
}
