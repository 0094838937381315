//! `atproto lexicon`: check lexicon documents, validate records against
//! them, and print what the code generator makes of them (OpenAPI, Rust).
//!
//! Output formats:
//!
//! * `check FILE` prints `valid` or `invalid: <reason>`; `check DIR` prints
//!   `<path>: valid` or `<path>: invalid: <reason>` for every `*.json` file
//!   under DIR, sorted by path. A reason is `<JSON path>: <message>` (just
//!   the message for the document as a whole); several problems of one file
//!   are joined with `; `. Warnings go to stderr. Exit 1 if any file is
//!   invalid.
//! * `validate` prints `valid`, or one `invalid: <reason>` line per problem
//!   (`<path>: <message>` for a problem inside the record). Exit 1 unless
//!   valid.
//! * `openapi` prints the OpenAPI 3.1 document as pretty JSON.
//! * `gen` writes the generated Rust modules (the source-tree form of what
//!   the `atproto-types` build script generates) and prints
//!   `<n> files written to <dir>`.

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use atproto_codegen::{generate, openapi::openapi, warnings, write_to_dir, Options};
use atproto_types::data::Value;
use atproto_types::lexicon::{parse_document, Catalog, Diagnostic};
use atproto_types::syntax::Nsid;
use clap::Subcommand;

/// `atproto lexicon <command>`.
#[derive(Subcommand)]
pub enum LexiconCommand {
    /// Check lexicon documents (a file, or every `*.json` under a directory,
    /// including references between them); prints `valid` or `invalid: <reason>` per file.
    Check { path: PathBuf },
    /// Validate a record (atproto-JSON on stdin) against its lexicon; prints
    /// `valid` or `invalid: <path>: <reason>` lines.
    Validate {
        /// Directory of lexicon documents.
        #[arg(long)]
        lexicons: PathBuf,
        /// The record type (collection NSID).
        nsid: String,
    },
    /// Print the OpenAPI document of the lexicons' XRPC methods.
    Openapi {
        /// Directory of lexicon documents.
        #[arg(long)]
        lexicons: PathBuf,
    },
    /// Write the Rust code generated from the lexicons to a directory, for reading.
    Gen {
        /// Directory of lexicon documents.
        #[arg(long)]
        lexicons: PathBuf,
        /// Output directory (created if missing).
        #[arg(long)]
        out: PathBuf,
    },
}

/// Run one `lexicon` command.
pub fn run(command: LexiconCommand) -> ExitCode {
    match command {
        LexiconCommand::Check { path } => check(&path),
        LexiconCommand::Validate { lexicons, nsid } => validate(&lexicons, &nsid),
        LexiconCommand::Openapi { lexicons } => print_openapi(&lexicons),
        LexiconCommand::Gen { lexicons, out } => gen(&lexicons, &out),
    }
}

/// `<JSON path>: <message>`, on one line.
fn reason(d: &Diagnostic) -> String {
    let text = if d.path.is_empty() {
        d.message.clone()
    } else {
        format!("{}: {}", d.path, d.message)
    };
    one_line(&text)
}

fn one_line(s: &str) -> String {
    s.replace(['\r', '\n'], " ")
}

fn join_reasons<'a>(diags: impl IntoIterator<Item = &'a Diagnostic>) -> String {
    let reasons: Vec<String> = diags.into_iter().map(reason).collect();
    reasons.join("; ")
}

fn warn(path: &Path, d: &Diagnostic) {
    eprintln!("warning: {}: {}", path.display(), reason(d));
}

fn write_lines(lines: &[String]) -> Result<(), String> {
    let mut out = std::io::stdout().lock();
    for line in lines {
        writeln!(out, "{line}").map_err(|e| format!("writing stdout: {e}"))?;
    }
    out.flush().map_err(|e| format!("writing stdout: {e}"))
}

/// One file read and parsed on its own.
struct Parsed {
    path: PathBuf,
    /// The document's JSON and `id`, when it parsed without errors.
    json: Option<(serde_json::Value, String)>,
    /// Errors found so far (empty when valid so far).
    errors: Vec<Diagnostic>,
}

/// Read and check one document by itself (no cross-document references).
fn parse_file(path: &Path) -> Parsed {
    let source = path.display().to_string();
    let error = |message: String| Parsed {
        path: path.to_path_buf(),
        json: None,
        errors: vec![Diagnostic {
            severity: atproto_types::lexicon::Severity::Error,
            doc: source.clone(),
            path: String::new(),
            message,
        }],
    };
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => return error(format!("can not read: {e}")),
    };
    let json: serde_json::Value = match serde_json::from_str(&text) {
        Ok(j) => j,
        Err(e) => return error(format!("not valid JSON: {e}")),
    };
    let (doc, diags) = parse_document(&json, &source);
    let (errors, warnings): (Vec<Diagnostic>, Vec<Diagnostic>) =
        diags.into_iter().partition(Diagnostic::is_error);
    for w in &warnings {
        warn(path, w);
    }
    match doc {
        Some(doc) if errors.is_empty() => {
            let id = doc.id.as_str().to_owned();
            Parsed {
                path: path.to_path_buf(),
                json: Some((json, id)),
                errors,
            }
        }
        _ => Parsed {
            path: path.to_path_buf(),
            json: None,
            errors,
        },
    }
}

/// `check FILE` or `check DIR`.
fn check(path: &Path) -> ExitCode {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) => return crate::fail(format_args!("{}: {e}", path.display())),
    };
    let result = if meta.is_dir() {
        check_dir(path)
    } else {
        Ok(check_file(path))
    };
    let (lines, all_valid) = match result {
        Ok(r) => r,
        Err(e) => return crate::fail(e),
    };
    if let Err(e) = write_lines(&lines) {
        return crate::fail(e);
    }
    if all_valid {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// A single document: its own checks, plus its references to its own
/// definitions (references to other documents can not be checked alone).
fn check_file(path: &Path) -> (Vec<String>, bool) {
    let parsed = parse_file(path);
    let Some((json, id)) = parsed.json else {
        return (
            vec![format!("invalid: {}", join_reasons(&parsed.errors))],
            false,
        );
    };
    let mut builder = Catalog::builder().allow_unresolved_refs(true);
    builder.add_json(&path.display().to_string(), &json);
    let errors: Vec<Diagnostic> = match builder.build() {
        Ok(catalog) => catalog
            .warnings()
            .iter()
            .filter(|d| is_local_unresolved(d, &id))
            .cloned()
            .collect(),
        Err(e) => e
            .diagnostics
            .into_iter()
            .filter(|d| d.is_error() || is_local_unresolved(d, &id))
            .collect(),
    };
    if errors.is_empty() {
        (vec!["valid".to_owned()], true)
    } else {
        (vec![format!("invalid: {}", join_reasons(&errors))], false)
    }
}

/// Whether `d` reports an unresolved reference into document `nsid`
/// itself (a missing local definition).
fn is_local_unresolved(d: &Diagnostic, nsid: &str) -> bool {
    let Some(target) = d.message.strip_prefix("unknown ref ") else {
        return false;
    };
    let target_nsid = target.split_once('#').map_or(target, |(n, _)| n);
    target_nsid == nsid
}

/// Every `*.json` file under `dir`, sorted.
fn json_files(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        let entries = std::fs::read_dir(&d).map_err(|e| format!("{}: {e}", d.display()))?;
        for entry in entries {
            let entry = entry.map_err(|e| format!("{}: {e}", d.display()))?;
            let path = entry.path();
            let meta = std::fs::metadata(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            if meta.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "json") {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

/// Every document under `dir`, each checked alone and then all together
/// (references between them, duplicate ids).
fn check_dir(dir: &Path) -> Result<(Vec<String>, bool), String> {
    let mut parsed: Vec<Parsed> = json_files(dir)?.iter().map(|p| parse_file(p)).collect();

    // Documents that are fine alone, checked together.
    let mut by_id: HashMap<String, Vec<usize>> = HashMap::new();
    let mut builder = Catalog::builder();
    for (i, p) in parsed.iter().enumerate() {
        if let Some((json, id)) = &p.json {
            by_id.entry(id.clone()).or_default().push(i);
            builder.add_json(&p.path.display().to_string(), json);
        }
    }
    if let Err(e) = builder.build() {
        // Parse problems were reported per file already; what is left
        // names documents by id (unknown refs, misdirected refs,
        // duplicate ids).
        let mut extra: BTreeMap<usize, Vec<Diagnostic>> = BTreeMap::new();
        for d in e.diagnostics.into_iter().filter(Diagnostic::is_error) {
            match by_id.get(&d.doc) {
                Some(files) => {
                    for &f in files {
                        extra.entry(f).or_default().push(d.clone());
                    }
                }
                None => {
                    return Err(format!("unexpected lexicon error: {d}"));
                }
            }
        }
        for (i, diags) in extra {
            if let Some(p) = parsed.get_mut(i) {
                p.errors.extend(diags);
            }
        }
    }

    let mut all_valid = true;
    let lines = parsed
        .iter()
        .map(|p| {
            if p.errors.is_empty() {
                format!("{}: valid", p.path.display())
            } else {
                all_valid = false;
                format!("{}: invalid: {}", p.path.display(), join_reasons(&p.errors))
            }
        })
        .collect();
    Ok((lines, all_valid))
}

fn load_catalog(dir: &Path) -> Result<Catalog, String> {
    let catalog = Catalog::from_dir(dir)
        .map_err(|e| format!("the lexicons in {} do not load: {e}", dir.display()))?;
    if catalog.is_empty() {
        return Err(format!("no lexicon documents in {}", dir.display()));
    }
    Ok(catalog)
}

/// `validate --lexicons DIR NSID`, record on stdin.
fn validate(lexicons: &Path, nsid: &str) -> ExitCode {
    let catalog = match load_catalog(lexicons) {
        Ok(c) => c,
        Err(e) => return crate::fail(e),
    };
    let mut input = String::new();
    if let Err(e) = std::io::stdin().read_to_string(&mut input) {
        return crate::fail(format_args!("reading stdin: {e}"));
    }
    let lines = match validate_input(&catalog, nsid, &input) {
        Ok(()) => vec!["valid".to_owned()],
        Err(problems) => problems
            .iter()
            .map(|p| format!("invalid: {}", one_line(p)))
            .collect(),
    };
    let valid = lines.len() == 1 && lines[0] == "valid";
    if let Err(e) = write_lines(&lines) {
        return crate::fail(e);
    }
    if valid {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// The problems of a record, one per entry.
fn validate_input(catalog: &Catalog, nsid: &str, input: &str) -> Result<(), Vec<String>> {
    let collection: Nsid = nsid
        .parse()
        .map_err(|e| vec![format!("invalid NSID {nsid:?}: {e}")])?;
    if catalog.doc_by_nsid(nsid).is_none() {
        return Err(vec![format!("unknown lexicon {nsid}")]);
    }
    let json: serde_json::Value =
        serde_json::from_str(input).map_err(|e| vec![format!("invalid JSON: {e}")])?;
    let value =
        Value::from_json_object(&json).map_err(|e| vec![format!("invalid atproto data: {e}")])?;
    catalog
        .validate_record(&collection, &value)
        .map_err(|errors| errors.iter().map(ToString::to_string).collect())
}

/// `openapi --lexicons DIR`.
fn print_openapi(lexicons: &Path) -> ExitCode {
    let catalog = match load_catalog(lexicons) {
        Ok(c) => c,
        Err(e) => return crate::fail(e),
    };
    match serde_json::to_string_pretty(&openapi(&catalog)) {
        Ok(text) => match write_lines(&[text]) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => crate::fail(e),
        },
        Err(e) => crate::fail(format_args!("serializing the OpenAPI document: {e}")),
    }
}

/// `gen --lexicons DIR --out DIR`.
fn gen(lexicons: &Path, out: &Path) -> ExitCode {
    let catalog = match load_catalog(lexicons) {
        Ok(c) => c,
        Err(e) => return crate::fail(e),
    };
    let opts = Options::for_source_tree();
    for w in catalog
        .warnings()
        .iter()
        .cloned()
        .chain(warnings(&catalog, &opts))
    {
        eprintln!("{w}");
    }
    let files = match generate(&catalog, &opts) {
        Ok(f) => f,
        Err(e) => return crate::fail(e),
    };
    if let Err(e) = write_to_dir(&files, out) {
        return crate::fail(e);
    }
    match write_lines(&[format!(
        "{} files written to {}",
        files.len(),
        out.display()
    )]) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => crate::fail(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use atproto_types::lexicon::Severity;

    fn diag(message: &str) -> Diagnostic {
        Diagnostic {
            severity: Severity::Warning,
            doc: "com.example.a".into(),
            path: "defs.main".into(),
            message: message.into(),
        }
    }

    #[test]
    fn local_unresolved_refs() {
        assert!(is_local_unresolved(
            &diag("unknown ref com.example.a#nope"),
            "com.example.a"
        ));
        assert!(is_local_unresolved(
            &diag("unknown ref com.example.a"),
            "com.example.a"
        ));
        assert!(!is_local_unresolved(
            &diag("unknown ref com.example.ab#x"),
            "com.example.a"
        ));
        assert!(!is_local_unresolved(
            &diag("unknown ref com.example.b#x"),
            "com.example.a"
        ));
        assert!(!is_local_unresolved(
            &diag("unknown field"),
            "com.example.a"
        ));
    }

    #[test]
    fn reasons_are_one_line() {
        let mut d = diag("a\nb");
        assert_eq!(reason(&d), "defs.main: a b");
        d.path.clear();
        assert_eq!(reason(&d), "a b");
    }
}
