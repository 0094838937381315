//! Errors of the generator.

use std::path::PathBuf;

use atproto_lexicon::Diagnostic;

/// Why code generation failed.
#[derive(Debug, thiserror::Error)]
pub enum CodegenError {
    /// The lexicons can not be turned into Rust (dangling or misdirected
    /// references, clashing module names, ...). Warnings found along the
    /// way are included.
    #[error("{}", render_diagnostics(.0))]
    Lexicon(Vec<Diagnostic>),
    /// The Cargo features of the generated crate do not match the
    /// reference graph between lexicon namespaces.
    #[error("Cargo features do not match the lexicon reference graph:\n  {}", .0.join("\n  "))]
    Features(Vec<String>),
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The generator produced something it can not format (a bug).
    #[error("internal code generation error: {0}")]
    Internal(String),
}

fn render_diagnostics(diags: &[Diagnostic]) -> String {
    let errors = diags.iter().filter(|d| d.is_error()).count();
    let mut out = format!(
        "{errors} lexicon error{} prevent code generation",
        if errors == 1 { "" } else { "s" }
    );
    for d in diags {
        out.push_str("\n  ");
        out.push_str(&d.to_string());
    }
    out
}
