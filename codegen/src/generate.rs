//! The whole generator: catalog in, source files out.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use atproto_lexicon::{Catalog, Diagnostic, DocId, LexDoc, Severity};

use crate::emit::{lit, push_doc, Emitter};
use crate::error::CodegenError;
use crate::features::{namespace, FeatureRules};
use crate::graph;
use crate::ir;
use crate::naming::{self, Names, LEXICONS_MODULE};

/// How generated modules find their submodules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModuleStyle {
    /// `pub mod x { include!(concat!(env!("OUT_DIR"), "/lexicons/.../x/mod.rs")); }`:
    /// for code written by a build script into `OUT_DIR`.
    IncludeOutDir,
    /// `pub mod x;`: for code written into a source tree (`lexicons/` is
    /// then a normal module directory made of `mod.rs` files).
    Files,
}

/// How `lexicon_sources.rs` embeds the lexicon documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceEmbedding {
    /// No `lexicon_sources.rs`.
    None,
    /// `include_str!("<source path>")`, with the path each document was
    /// loaded from (load the catalog from an absolute directory).
    IncludeStr,
    /// The document text, re-serialized from the model, as a literal.
    Inline,
}

/// Generator settings.
#[derive(Debug, Clone)]
pub struct Options {
    /// Path of the crate whose root holds the `lexicons` module, as written
    /// in the generated code (`crate`).
    pub crate_root: String,
    /// Path of the crate providing the runtime (`lex`, `syntax`, `data` and
    /// the `lex_*!` macros): `crate` inside `atproto-types`,
    /// `::atproto_types` elsewhere.
    pub runtime_root: String,
    /// How modules include their submodules.
    pub module_style: ModuleStyle,
    /// Namespace features (`#[cfg(feature = "...")]` on namespace modules);
    /// `None` compiles everything unconditionally.
    pub features: Option<FeatureRules>,
    /// Whether and how to write `lexicon_sources.rs`.
    pub sources: SourceEmbedding,
    /// Whether to append the server route traits (`crate::routes`, behind
    /// the `server` feature) to the namespace modules.
    pub routes: bool,
}

impl Default for Options {
    /// The settings of the `atproto-types` build script.
    fn default() -> Self {
        Options {
            crate_root: "crate".to_owned(),
            runtime_root: "crate".to_owned(),
            module_style: ModuleStyle::IncludeOutDir,
            features: Some(FeatureRules::default()),
            sources: SourceEmbedding::IncludeStr,
            routes: true,
        }
    }
}

impl Options {
    /// Settings for reading: plain module files, runtime from
    /// `::atproto_types`, no feature gates, sources inline.
    pub fn for_source_tree() -> Options {
        Options {
            crate_root: "crate".to_owned(),
            runtime_root: "::atproto_types".to_owned(),
            module_style: ModuleStyle::Files,
            features: None,
            sources: SourceEmbedding::Inline,
            routes: true,
        }
    }
}

/// One generated file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedFile {
    /// Path relative to the output directory
    /// (`lexicons/com/atproto/repo/create_record/mod.rs`).
    pub path: PathBuf,
    /// The Rust source.
    pub contents: String,
}

/// A node of the module tree: a namespace and/or a document.
#[derive(Debug, Default)]
struct Node {
    /// The NSID prefix this module stands for (`app.bsky`).
    prefix: String,
    /// The document of this exact NSID, if any (catalog position).
    doc: Option<usize>,
    children: BTreeMap<String, Node>,
}

/// Generate the Rust modules for every document of `catalog`.
///
/// Files: `lexicons/mod.rs` and one `mod.rs` per namespace and document
/// under `lexicons/` (see [`naming::module_file`]), plus
/// `lexicon_sources.rs` unless [`SourceEmbedding::None`].
pub fn generate(catalog: &Catalog, opts: &Options) -> Result<Vec<GeneratedFile>, CodegenError> {
    let names = Names::new(catalog, &opts.crate_root);
    let mut diagnostics = Vec::new();
    let root = module_tree(catalog, &mut diagnostics);
    let lowered = ir::lower(catalog, &names);
    diagnostics.extend(lowered.diagnostics.iter().cloned());
    if diagnostics.iter().any(Diagnostic::is_error) {
        return Err(CodegenError::Lexicon(diagnostics));
    }
    let comps = graph::components(&lowered);
    let emitter = Emitter {
        names: &names,
        lowered: &lowered,
        comps: &comps,
        rt: &opts.runtime_root,
    };
    let mut files = Vec::new();
    let mut path = Vec::new();
    write_node(catalog, opts, &emitter, &root, &mut path, &mut files)?;
    // Server route traits (feature `server`), appended to each namespace
    // module; see `crate::routes`.
    if opts.routes {
        crate::routes::append_routes(catalog, &names, &opts.runtime_root, &mut files)?;
    }
    if opts.sources != SourceEmbedding::None {
        files.push(GeneratedFile {
            path: PathBuf::from("lexicon_sources.rs"),
            contents: sources_file(catalog, opts.sources)?,
        });
    }
    Ok(files)
}

/// The warnings the generator would report for `catalog` (unsupported
/// definitions, duplicate union members, ...), without generating.
pub fn warnings(catalog: &Catalog, opts: &Options) -> Vec<Diagnostic> {
    let names = Names::new(catalog, &opts.crate_root);
    ir::lower(catalog, &names)
        .diagnostics
        .into_iter()
        .filter(|d| !d.is_error())
        .collect()
}

/// Write generated files under `dir`, creating directories; files whose
/// contents are unchanged are not rewritten.
pub fn write_to_dir(files: &[GeneratedFile], dir: &Path) -> Result<(), CodegenError> {
    for f in files {
        let path = dir.join(&f.path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|source| CodegenError::Io {
                path: parent.to_path_buf(),
                source,
            })?;
        }
        if std::fs::read_to_string(&path).is_ok_and(|old| old == f.contents) {
            continue;
        }
        std::fs::write(&path, &f.contents).map_err(|source| CodegenError::Io {
            path: path.clone(),
            source,
        })?;
    }
    Ok(())
}

fn module_tree(catalog: &Catalog, diagnostics: &mut Vec<Diagnostic>) -> Node {
    let mut root = Node::default();
    for (i, doc) in catalog.docs().iter().enumerate() {
        let nsid = doc.id.as_str();
        let segments: Vec<&str> = nsid.split('.').collect();
        let mut node = &mut root;
        for (depth, seg) in segments.iter().enumerate() {
            let prefix = segments[..=depth].join(".");
            let module = naming::module_ident(seg);
            let child = node.children.entry(module.clone()).or_insert_with(|| Node {
                prefix: prefix.clone(),
                ..Node::default()
            });
            if child.prefix != prefix {
                diagnostics.push(Diagnostic {
                    severity: Severity::Error,
                    doc: nsid.to_owned(),
                    path: String::new(),
                    message: format!(
                        "`{prefix}` and `{}` both map to the Rust module `{module}`",
                        child.prefix
                    ),
                });
            }
            node = child;
        }
        node.doc = Some(i);
    }
    root
}

fn header(node: &Node, catalog: &Catalog) -> String {
    match node.doc.and_then(|d| catalog.docs().get(d)) {
        Some(doc) => format!(
            "// @generated by atproto-codegen from the lexicon `{}` ({}).\n// Do not edit: change the lexicon and rebuild.\n\n",
            doc.id.as_str(),
            Catalog::conventional_path(doc.id.as_str()).display()
        ),
        None if node.prefix.is_empty() => {
            "// @generated by atproto-codegen: the lexicon modules.\n// Do not edit: change the lexicons and rebuild.\n\n".to_owned()
        }
        None => format!(
            "// @generated by atproto-codegen: the `{}` namespace.\n// Do not edit: change the lexicons and rebuild.\n\n",
            node.prefix
        ),
    }
}

/// Doc lines of a document module: the document's description, or its
/// main definition's.
fn module_doc(doc: &LexDoc) -> Vec<String> {
    let mut lines = ir::doc_lines(
        doc.description
            .as_deref()
            .or_else(|| doc.main().and_then(|m| m.description())),
    );
    if !lines.is_empty() {
        lines.push(String::new());
    }
    lines.push(format!("Lexicon `{}`.", doc.id.as_str()));
    lines
}

fn write_node(
    catalog: &Catalog,
    opts: &Options,
    emitter: &Emitter<'_>,
    node: &Node,
    path: &mut Vec<String>,
    files: &mut Vec<GeneratedFile>,
) -> Result<(), CodegenError> {
    let mut out = header(node, catalog);
    if let Some(d) = node.doc {
        out.push_str(&emitter.module_items(d)?);
    }
    for (name, child) in &node.children {
        if !out.ends_with("\n\n") {
            out.push('\n');
        }
        let doc = match child.doc.and_then(|d| catalog.docs().get(d)) {
            Some(doc) => module_doc(doc),
            None => vec![format!("The `{}` namespace.", child.prefix)],
        };
        push_doc(&mut out, "", &doc);
        let depth = path.len() + 1;
        if depth == 2 {
            if let Some(feature) = opts
                .features
                .as_ref()
                .and_then(|r| r.feature_for_namespace(namespace(&child.prefix)))
            {
                out.push_str(&format!("#[cfg(feature = {})]\n", lit(&feature)));
            }
        }
        match opts.module_style {
            ModuleStyle::Files => out.push_str(&format!("pub mod {name};\n")),
            ModuleStyle::IncludeOutDir => {
                let mut file = String::from(LEXICONS_MODULE);
                for p in path.iter() {
                    file.push('/');
                    file.push_str(p);
                }
                file.push('/');
                file.push_str(name);
                file.push_str("/mod.rs");
                out.push_str(&format!(
                    "pub mod {name} {{\n    include!(concat!(env!(\"OUT_DIR\"), \"/{file}\"));\n}}\n"
                ));
            }
        }
    }
    let mut file = PathBuf::from(LEXICONS_MODULE);
    for p in path.iter() {
        file.push(p);
    }
    file.push("mod.rs");
    files.push(GeneratedFile {
        path: file,
        contents: out,
    });
    for (name, child) in &node.children {
        path.push(name.clone());
        write_node(catalog, opts, emitter, child, path, files)?;
        path.pop();
    }
    Ok(())
}

fn sources_file(catalog: &Catalog, mode: SourceEmbedding) -> Result<String, CodegenError> {
    let mut out = String::from(
        "// @generated by atproto-codegen: the lexicon documents the types were generated from.\n\n",
    );
    out.push_str("/// Every lexicon document, as `(NSID, JSON text)`, sorted by NSID.\n");
    out.push_str("pub static LEXICON_SOURCES: &[(&str, &str)] = &[\n");
    for (i, doc) in catalog.docs().iter().enumerate() {
        let nsid = doc.id.as_str();
        let text = match mode {
            SourceEmbedding::IncludeStr => {
                let id = DocId(i as u32);
                let source = catalog.source(id).unwrap_or(nsid);
                format!("include_str!({})", lit(source))
            }
            SourceEmbedding::Inline | SourceEmbedding::None => {
                let json = serde_json::to_string_pretty(doc)
                    .map_err(|e| CodegenError::Internal(format!("serializing {nsid}: {e}")))?;
                raw_lit(&json)
            }
        };
        out.push_str(&format!("    ({}, {text}),\n", lit(nsid)));
    }
    out.push_str("];\n");
    Ok(out)
}

/// A raw string literal holding `s`.
fn raw_lit(s: &str) -> String {
    let mut hashes = 1;
    while s.contains(&format!("\"{}", "#".repeat(hashes))) {
        hashes += 1;
    }
    let h = "#".repeat(hashes);
    format!("r{h}\"{s}\"{h}")
}
