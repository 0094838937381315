//! Snapshot tests of the code generated for the sample lexicons in
//! `tests/samples/` (every lexicon type and naming edge case), and a check
//! that the copy compiled by `tests/samples_compile.rs` is up to date.
//!
//! Review snapshot changes with `cargo insta review`, or accept them with
//! `INSTA_UPDATE=always`; rewrite `tests/samples_generated/` with
//! `UPDATE_SAMPLES=1`.

use std::path::{Path, PathBuf};

use atproto_codegen::features::{feature_dependencies, FeatureRules};
use atproto_codegen::{
    generate, CodegenError, GeneratedFile, ModuleStyle, Options, SourceEmbedding,
};
use atproto_lexicon::Catalog;

fn dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join(name)
}

fn catalog() -> Catalog {
    match Catalog::from_dir(dir("samples")) {
        Ok(c) => c,
        Err(e) => panic!("sample lexicons do not load: {e}"),
    }
}

/// The settings of the compiled copy: runtime from `::atproto_types`,
/// plain module files, no features, and no server routes (those have their
/// own tests in `tests/routes.rs`).
fn options() -> Options {
    Options {
        crate_root: "crate".to_owned(),
        runtime_root: "::atproto_types".to_owned(),
        module_style: ModuleStyle::Files,
        features: None,
        sources: SourceEmbedding::None,
        routes: false,
    }
}

fn gen(opts: &Options) -> Vec<GeneratedFile> {
    match generate(&catalog(), opts) {
        Ok(f) => f,
        Err(e) => panic!("{e}"),
    }
}

fn snapshot_name(f: &GeneratedFile) -> String {
    f.path
        .to_string_lossy()
        .trim_end_matches("/mod.rs")
        .trim_end_matches(".rs")
        .replace(['/', '\\'], "__")
}

#[test]
fn snapshots() {
    let files = gen(&options());
    for f in &files {
        insta::assert_snapshot!(snapshot_name(f), f.contents);
    }
}

#[test]
fn build_script_style() {
    let opts = Options {
        runtime_root: "crate".to_owned(),
        routes: false,
        features: Some(FeatureRules {
            always_on: vec!["com.example".to_owned()],
            all_feature: Some("full".to_owned()),
        }),
        ..Options::default()
    };
    let files = gen(&opts);
    for f in files.iter().filter(|f| {
        let p = f.path.to_string_lossy();
        p == "lexicons/mod.rs" || p == "lexicons/org/mod.rs" || p == "lexicons/com/example/mod.rs"
    }) {
        insta::assert_snapshot!(format!("out_dir__{}", snapshot_name(f)), f.contents);
    }
    let sources = files
        .iter()
        .find(|f| f.path == Path::new("lexicon_sources.rs"))
        .map(|f| f.contents.clone())
        .unwrap_or_default();
    assert!(sources.contains("(\"com.example.defs\", include_str!("));
    assert_eq!(sources.matches("include_str!").count(), catalog().len());
}

#[test]
fn feature_rules_catch_always_on_refs_into_gated_namespaces() {
    let rules = FeatureRules {
        always_on: vec!["com.example".to_owned()],
        all_feature: None,
    };
    match feature_dependencies(&catalog(), &rules) {
        Err(CodegenError::Features(problems)) => {
            assert!(
                problems.iter().any(|p| p.contains("org.other.strongRef")),
                "{problems:?}"
            );
        }
        other => panic!("expected a feature error, got {other:?}"),
    }
    let rules = FeatureRules {
        always_on: vec![],
        all_feature: None,
    };
    let deps = match feature_dependencies(&catalog(), &rules) {
        Ok(d) => d,
        Err(e) => panic!("{e}"),
    };
    assert_eq!(
        deps.get("com-example")
            .map(|s| s.iter().cloned().collect::<Vec<_>>()),
        Some(vec!["org-other".to_owned()])
    );
    assert_eq!(deps.get("org-other").map(|s| s.len()), Some(0));
}

#[test]
fn clashing_module_names_are_diagnostics() {
    let doc = |id: &str| {
        format!(r#"{{"lexicon": 1, "id": "{id}", "defs": {{"main": {{"type": "token"}}}}}}"#)
    };
    let a = doc("com.example.getFoo");
    let b = doc("com.example.getFOO");
    let catalog = match Catalog::from_json_strs([("a.json", a.as_str()), ("b.json", b.as_str())]) {
        Ok(c) => c,
        Err(e) => panic!("{e}"),
    };
    match generate(&catalog, &options()) {
        Err(CodegenError::Lexicon(diags)) => {
            let text: Vec<String> = diags.iter().map(|d| d.to_string()).collect();
            assert!(
                text.iter()
                    .any(|t| t.contains("get_foo") && t.contains("com.example.getFOO")),
                "{text:?}"
            );
        }
        other => panic!("expected diagnostics, got {other:?}"),
    }
}

#[test]
fn generated_samples_are_up_to_date() {
    let files = gen(&options());
    let out = dir("samples_generated");
    if std::env::var_os("UPDATE_SAMPLES").is_some() {
        let _ = std::fs::remove_dir_all(&out);
        if let Err(e) = atproto_codegen::write_to_dir(&files, &out) {
            panic!("{e}");
        }
        return;
    }
    for f in &files {
        let path = out.join(&f.path);
        let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            on_disk == f.contents,
            "{} is stale: rerun with UPDATE_SAMPLES=1",
            path.display()
        );
    }
}
