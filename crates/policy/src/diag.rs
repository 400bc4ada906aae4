//! Diagnostics: what is wrong in a policy, where, what was expected and how
//! to fix it, rendered with the offending source line and a caret.

use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Warning,
    Error,
}

/// One problem in a policy document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub level: Level,
    /// Where the text came from (a file name or URL).
    pub origin: String,
    /// 1-based line and column (in characters) of the offending span.
    pub line: usize,
    pub col: usize,
    /// Byte range of the offending span in the source.
    pub span: (usize, usize),
    pub message: String,
    /// What would have been accepted here.
    pub expected: Option<String>,
    /// How to fix it.
    pub hint: Option<String>,
}

impl Diagnostic {
    pub fn is_error(&self) -> bool {
        self.level == Level::Error
    }

    /// The one-line form `file:line:col: message`.
    pub fn headline(&self) -> String {
        let level = match self.level {
            Level::Warning => "warning: ",
            Level::Error => "",
        };
        format!(
            "{}:{}:{}: {level}{}",
            self.origin, self.line, self.col, self.message
        )
    }

    /// The full form: headline, source excerpt with carets under the span,
    /// then `expected` and `hint` lines.
    pub fn render(&self, source: &str) -> String {
        // Diagnostics made by this crate always hold character-aligned spans
        // into `source`; clamp anyway, since a caller may pass another text.
        let floor = |mut i: usize| {
            i = i.min(source.len());
            while !source.is_char_boundary(i) {
                i -= 1;
            }
            i
        };
        let span = (floor(self.span.0), floor(self.span.1.max(self.span.0)));
        let mut out = self.headline();
        out.push('\n');
        let line_start = source[..span.0].rfind('\n').map_or(0, |i| i + 1);
        let line_end = source[line_start..]
            .find('\n')
            .map_or(source.len(), |i| line_start + i);
        let text = &source[line_start..line_end];
        let gutter = self.line.to_string();
        let pad = " ".repeat(gutter.len());
        let caret_start = source[line_start..span.0.min(line_end)].chars().count();
        let caret_len = source[span.0.min(line_end)..span.1.clamp(span.0, line_end)]
            .chars()
            .count()
            .max(1);
        // Tabs would misalign the caret; show them as single spaces.
        let shown: String = text
            .chars()
            .map(|c| if c == '\t' { ' ' } else { c })
            .collect();
        out.push_str(&format!("{pad} |\n{gutter} | {shown}\n{pad} | "));
        out.push_str(&" ".repeat(caret_start));
        out.push_str(&"^".repeat(caret_len));
        out.push('\n');
        if let Some(e) = &self.expected {
            out.push_str(&format!("{pad} = expected: {e}\n"));
        }
        if let Some(h) = &self.hint {
            out.push_str(&format!("{pad} = hint: {h}\n"));
        }
        out
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.headline())?;
        if let Some(e) = &self.expected {
            write!(f, " (expected {e})")?;
        }
        if let Some(h) = &self.hint {
            write!(f, "; hint: {h}")?;
        }
        Ok(())
    }
}

/// Every problem found in one document, in source order. Returned as the
/// error of [`crate::compile_str`] when at least one is an error.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    pub fn iter(&self) -> std::slice::Iter<'_, Diagnostic> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn has_errors(&self) -> bool {
        self.0.iter().any(Diagnostic::is_error)
    }

    /// Every diagnostic rendered against `source`, separated by blank lines.
    pub fn render(&self, source: &str) -> String {
        self.0
            .iter()
            .map(|d| d.render(source))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

impl IntoIterator for Diagnostics {
    type Item = Diagnostic;
    type IntoIter = std::vec::IntoIter<Diagnostic>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}
