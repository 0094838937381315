//! Diagnostics produced while reading and checking lexicon documents.

use std::fmt;

/// How serious a [`Diagnostic`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Severity {
    /// Something unusual that does not stop the document from loading, such
    /// as an unrecognised schema type (kept as
    /// [`LexType::Unsupported`](crate::LexType::Unsupported)) or an unknown
    /// field.
    Warning,
    /// The document (or the catalog) is invalid.
    Error,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Warning => "warning",
            Severity::Error => "error",
        })
    }
}

/// One problem found in a lexicon document, located by document and JSON
/// path.
///
/// `Display` renders `<doc>: <path>: <message>`, for example
/// `app.bsky.feed.post: defs.main.record.properties.embed.refs[2]: unknown ref app.bsky.embed.nope`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Warning or error.
    pub severity: Severity,
    /// The document: its `id` when known, otherwise the source name (file
    /// path or the name given to an in-memory document).
    pub doc: String,
    /// JSON path inside the document, such as `defs.main.record.properties.text`;
    /// empty for the document root.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl Diagnostic {
    /// Whether this is an error (as opposed to a warning).
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.severity == Severity::Warning {
            f.write_str("warning: ")?;
        }
        f.write_str(&self.doc)?;
        if !self.path.is_empty() {
            write!(f, ": {}", self.path)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Lexicon documents failed to load: every error found (and the warnings
/// seen along the way), in document order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", render_diagnostics(.diagnostics))]
pub struct LexiconError {
    /// All diagnostics; at least one of them is an error.
    pub diagnostics: Vec<Diagnostic>,
}

impl LexiconError {
    /// Only the errors.
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics.iter().filter(|d| d.is_error())
    }

    /// Only the warnings.
    pub fn warnings(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics.iter().filter(|d| !d.is_error())
    }
}

fn render_diagnostics(diagnostics: &[Diagnostic]) -> String {
    let errors = diagnostics.iter().filter(|d| d.is_error()).count();
    let mut out = format!(
        "{errors} lexicon error{}",
        if errors == 1 { "" } else { "s" }
    );
    for d in diagnostics.iter().filter(|d| d.is_error()) {
        out.push_str("\n  ");
        out.push_str(&d.to_string());
    }
    out
}

/// One step of a JSON path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Seg<'a> {
    Key(&'a str),
    Index(usize),
}

/// Render path segments as `a.b[2].c`; keys that are not plain identifiers
/// are quoted (`a["x.y"]`).
pub(crate) fn render_path(segs: &[Seg<'_>]) -> String {
    let mut out = String::new();
    for seg in segs {
        match seg {
            Seg::Key(k) => {
                let plain = !k.is_empty()
                    && k.chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '$' | ':'));
                if plain {
                    if !out.is_empty() {
                        out.push('.');
                    }
                    out.push_str(k);
                } else {
                    out.push('[');
                    out.push_str(&format!("{k:?}"));
                    out.push(']');
                }
            }
            Seg::Index(i) => {
                out.push('[');
                out.push_str(&i.to_string());
                out.push(']');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_render() {
        let segs = [
            Seg::Key("defs"),
            Seg::Key("main"),
            Seg::Key("refs"),
            Seg::Index(2),
            Seg::Key("a.b"),
            Seg::Key("$type"),
        ];
        assert_eq!(render_path(&segs), r#"defs.main.refs[2]["a.b"].$type"#);
        assert_eq!(render_path(&[]), "");
        assert_eq!(render_path(&[Seg::Index(0), Seg::Key("x")]), "[0].x");
    }

    #[test]
    fn diagnostic_display() {
        let d = Diagnostic {
            severity: Severity::Error,
            doc: "app.bsky.feed.post".into(),
            path: "defs.main.record.properties.embed.refs[2]".into(),
            message: "unknown ref app.bsky.embed.nope".into(),
        };
        assert_eq!(
            d.to_string(),
            "app.bsky.feed.post: defs.main.record.properties.embed.refs[2]: unknown ref app.bsky.embed.nope"
        );
        let e = LexiconError {
            diagnostics: vec![d],
        };
        assert!(e
            .to_string()
            .starts_with("1 lexicon error\n  app.bsky.feed.post"));
    }
}
