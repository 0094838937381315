//! Build script of `atproto-types` (`build = "../build.rs"`): generates the
//! Rust types of every lexicon in `lexicons/` into `OUT_DIR` and checks
//! that the crate's namespace features follow the lexicon reference graph.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use atproto_codegen::features::{
    check_declared, feature_dependencies, parse_cargo_features, FeatureRules,
};
use atproto_codegen::{generate, warnings, write_to_dir, Options};
use atproto_lexicon::Catalog;

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
    let lexicons = absolute(&manifest_dir.join("../lexicons"));
    let manifest = manifest_dir.join("Cargo.toml");
    println!("cargo:rerun-if-changed={}", lexicons.display());
    println!("cargo:rerun-if-changed={}", manifest.display());
    println!("cargo:rerun-if-changed=../build.rs");

    let catalog = Catalog::from_dir(&lexicons)
        .map_err(|e| format!("the lexicons in {} do not load:\n{e}", lexicons.display()))?;

    let rules = FeatureRules::default();
    let required = feature_dependencies(&catalog, &rules).map_err(|e| e.to_string())?;
    let toml = std::fs::read_to_string(&manifest)
        .map_err(|e| format!("reading {}: {e}", manifest.display()))?;
    let problems = check_declared(&required, &parse_cargo_features(&toml), &rules);
    if !problems.is_empty() {
        return Err(format!(
            "the [features] of {} do not match the lexicon reference graph:\n  {}",
            manifest.display(),
            problems.join("\n  ")
        ));
    }

    for w in catalog.warnings() {
        println!("cargo:warning=lexicon: {w}");
    }
    let opts = Options::default();
    for w in warnings(&catalog, &opts) {
        println!("cargo:warning=lexicon: {w}");
    }
    let files = generate(&catalog, &opts).map_err(|e| e.to_string())?;
    write_to_dir(&files, &out_dir).map_err(|e| e.to_string())?;
    Ok(())
}

/// `path` made absolute (so `include_str!` in generated code finds the
/// lexicon files from `OUT_DIR`).
fn absolute(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}
