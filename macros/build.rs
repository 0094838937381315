//! Embeds the vendored lexicons (`../lexicons`, the documents
//! `atproto-types` is generated from) into the macro, so references from an
//! application's lexicons to them resolve to `::atproto_types::lexicons`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let manifest_dir = PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").ok_or("CARGO_MANIFEST_DIR is not set")?,
    );
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").ok_or("OUT_DIR is not set")?);
    let dir = manifest_dir.join("../lexicons");
    let dir = std::fs::canonicalize(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    println!("cargo:rerun-if-changed={}", dir.display());
    println!("cargo:rerun-if-changed=build.rs");

    let mut files = Vec::new();
    collect(&dir, &mut files)?;
    files.sort();
    if files.is_empty() {
        return Err(format!("no lexicon documents in {}", dir.display()));
    }
    let mut out = String::from(
        "/// The vendored lexicon documents, as `(path relative to lexicons/, JSON text)`.\n\
         pub(crate) static VENDORED: &[(&str, &str)] = &[\n",
    );
    for file in &files {
        let rel = file
            .strip_prefix(&dir)
            .map_err(|e| format!("{}: {e}", file.display()))?;
        let rel = rel
            .to_str()
            .ok_or_else(|| format!("{} is not UTF-8", rel.display()))?;
        let abs = file
            .to_str()
            .ok_or_else(|| format!("{} is not UTF-8", file.display()))?;
        out.push_str(&format!("    ({rel:?}, include_str!({abs:?})),\n"));
    }
    out.push_str("];\n");
    let target = out_dir.join("vendored.rs");
    std::fs::write(&target, out).map_err(|e| format!("{}: {e}", target.display()))
}

fn collect(dir: &Path, files: &mut Vec<PathBuf>) -> Result<(), String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for entry in entries {
        let entry = entry.map_err(|e| format!("{}: {e}", dir.display()))?;
        let path = entry.path();
        let kind = entry
            .file_type()
            .map_err(|e| format!("{}: {e}", path.display()))?;
        if kind.is_dir() {
            collect(&path, files)?;
        } else if path.extension().is_some_and(|e| e == "json") {
            files.push(path);
        }
    }
    Ok(())
}
