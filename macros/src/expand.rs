//! The expansion of `lexicons!`, independent of the compiler's
//! `proc_macro` API so it can be tested directly.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::OnceLock;

use atproto_codegen::naming::{nsid_module_segments, LEXICONS_MODULE};
use atproto_codegen::{generate, CodegenError, ModuleStyle, Options, SourceEmbedding};
use atproto_lexicon::{Catalog, Diagnostic, DocId, LexiconError};
use proc_macro2::{Group, Punct, Spacing, Span, TokenStream, TokenTree};
use quote::quote;
use syn::parse::{Parse, ParseStream};
use syn::{Ident, LitStr, Token};

include!(concat!(env!("OUT_DIR"), "/vendored.rs"));

/// Path of the runtime crate in generated code.
const RUNTIME: &str = "::atproto_types";

/// The macro's arguments: `"dir"` then optional `key = "value"` pairs.
pub(crate) struct Args {
    /// Lexicon directory, relative to `CARGO_MANIFEST_DIR`.
    pub dir: LitStr,
    /// Path of the module the macro is invoked in (`crate`).
    pub crate_root: Option<LitStr>,
}

impl Parse for Args {
    fn parse(input: ParseStream<'_>) -> syn::Result<Args> {
        let dir: LitStr = input.parse()?;
        let mut crate_root = None;
        while !input.is_empty() {
            input.parse::<Token![,]>()?;
            if input.is_empty() {
                break;
            }
            let key: Ident = input.parse()?;
            input.parse::<Token![=]>()?;
            let value: LitStr = input.parse()?;
            match key.to_string().as_str() {
                "crate_root" if crate_root.is_none() => crate_root = Some(value),
                "crate_root" => return Err(syn::Error::new(key.span(), "duplicate `crate_root`")),
                other => {
                    return Err(syn::Error::new(
                        key.span(),
                        format!("unknown argument `{other}` (expected `crate_root`)"),
                    ))
                }
            }
        }
        Ok(Args { dir, crate_root })
    }
}

/// Why the macro can not expand.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    /// Reading the lexicon directory or a file failed.
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    /// The directory holds no `*.json` file.
    #[error("no lexicon documents (*.json) under {0}")]
    Empty(String),
    /// `crate_root` is not a path.
    #[error("crate_root {0:?} is not a Rust path: {1}")]
    CrateRoot(String, String),
    /// The application's lexicons are invalid: one rendered diagnostic per
    /// error.
    #[error("{}", .0.join("\n"))]
    Lexicon(Vec<String>),
    /// The vendored lexicons embedded in the macro do not load (a bug of
    /// this workspace).
    #[error("the vendored lexicons do not load: {0}")]
    Vendored(LexiconError),
    /// The generator failed for another reason.
    #[error("{0}")]
    Codegen(CodegenError),
    /// The generator produced code that does not parse (a bug).
    #[error("generated {file} does not parse: {message}")]
    Generated { file: String, message: String },
}

impl Error {
    /// One message per compile error to report.
    fn messages(&self) -> Vec<String> {
        match self {
            Error::Lexicon(lines) => lines
                .iter()
                .map(|l| format!("invalid lexicon: {l}"))
                .collect(),
            other => vec![other.to_string()],
        }
    }
}

/// Expand `lexicons!(args)` for a crate at `manifest_dir`: the generated
/// module, or `compile_error!`s.
pub(crate) fn lexicons(args: &Args, manifest_dir: &Path) -> TokenStream {
    let crate_root = args
        .crate_root
        .as_ref()
        .map_or_else(|| "crate".to_owned(), LitStr::value);
    match expand(manifest_dir, Path::new(&args.dir.value()), &crate_root) {
        Ok(tokens) => tokens,
        Err(e) => {
            let span = args.dir.span();
            e.messages()
                .into_iter()
                .map(|m| syn::Error::new(span, m).to_compile_error())
                .collect()
        }
    }
}

/// One lexicon file of the application.
struct SourceFile {
    /// Absolute path (for `include_str!`).
    abs: PathBuf,
    /// Path as given (relative to the manifest directory), for messages.
    shown: String,
}

/// Every `*.json` file under `dir`, sorted.
fn json_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), Error> {
    let io = |source| Error::Io {
        path: dir.display().to_string(),
        source,
    };
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        let meta = std::fs::metadata(&path).map_err(|source| Error::Io {
            path: path.display().to_string(),
            source,
        })?;
        if meta.is_dir() {
            json_files(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "json") {
            out.push(path);
        }
    }
    Ok(())
}

/// The vendored catalog, loaded once per compiler process.
fn vendored() -> Result<&'static Catalog, Error> {
    static CATALOG: OnceLock<Result<Catalog, LexiconError>> = OnceLock::new();
    CATALOG
        .get_or_init(|| {
            let mut b = Catalog::builder();
            for (path, text) in VENDORED {
                b.add_json_str(path, text);
            }
            b.build()
        })
        .as_ref()
        .map_err(|e| Error::Vendored(e.clone()))
}

/// `doc (file): path: message` for the errors among `diags`.
fn render(diags: &[Diagnostic], files: &HashMap<String, String>) -> Vec<String> {
    diags
        .iter()
        .filter(|d| d.is_error())
        .map(|d| {
            let doc = match files.get(&d.doc) {
                Some(file) if *file != d.doc => format!("{} ({file})", d.doc),
                _ => d.doc.clone(),
            };
            if d.path.is_empty() {
                format!("{doc}: {}", d.message)
            } else {
                format!("{doc}: {}: {}", d.path, d.message)
            }
        })
        .collect()
}

/// The whole expansion.
pub(crate) fn expand(
    manifest_dir: &Path,
    dir: &Path,
    crate_root: &str,
) -> Result<TokenStream, Error> {
    let root_path: syn::Path = syn::parse_str(crate_root)
        .map_err(|e| Error::CrateRoot(crate_root.to_owned(), e.to_string()))?;

    // The application's documents, checked alone (references to other
    // documents are resolved below).
    let full_dir = manifest_dir.join(dir);
    let mut paths = Vec::new();
    json_files(&full_dir, &mut paths)?;
    paths.sort();
    if paths.is_empty() {
        return Err(Error::Empty(full_dir.display().to_string()));
    }
    let mut builder = Catalog::builder().allow_unresolved_refs(true);
    let mut files: Vec<SourceFile> = Vec::with_capacity(paths.len());
    for abs in paths {
        let text = std::fs::read_to_string(&abs).map_err(|source| Error::Io {
            path: abs.display().to_string(),
            source,
        })?;
        let shown = abs
            .strip_prefix(manifest_dir)
            .unwrap_or(&abs)
            .display()
            .to_string();
        builder.add_json_str(&shown, &text);
        let abs = std::fs::canonicalize(&abs).unwrap_or(abs);
        files.push(SourceFile { abs, shown });
    }
    let app = builder
        .build()
        .map_err(|e| Error::Lexicon(render(&e.diagnostics, &HashMap::new())))?;
    // NSID -> file, for messages and `include_str!`.
    let mut file_of: HashMap<String, String> = HashMap::new();
    let mut abs_of: HashMap<String, PathBuf> = HashMap::new();
    for (i, doc) in app.docs().iter().enumerate() {
        let source = app.source(DocId(i as u32)).unwrap_or_default();
        if let Some(f) = files.iter().find(|f| f.shown == source) {
            file_of.insert(doc.id.as_str().to_owned(), f.shown.clone());
            abs_of.insert(doc.id.as_str().to_owned(), f.abs.clone());
        }
    }

    // With the vendored documents: every reference must resolve.
    let vendored = vendored()?;
    let mut builder = Catalog::builder();
    for doc in app.docs() {
        builder.add_doc(doc.clone());
    }
    for doc in vendored.docs() {
        if app.doc_id(doc.id.as_str()).is_none() {
            builder.add_doc(doc.clone());
        }
    }
    let combined = builder
        .build()
        .map_err(|e| Error::Lexicon(render(&e.diagnostics, &file_of)))?;

    // Only the documents the application's documents reach are needed.
    let mut needed: BTreeSet<DocId> = BTreeSet::new();
    for doc in app.docs() {
        if let Some(id) = combined.doc_id(doc.id.as_str()) {
            needed.extend(combined.doc_closure(id));
        }
    }
    let mut builder = Catalog::builder();
    for doc in needed.iter().filter_map(|&id| combined.doc(id)) {
        builder.add_doc(doc.clone());
    }
    let catalog = builder
        .build()
        .map_err(|e| Error::Lexicon(render(&e.diagnostics, &file_of)))?;

    let opts = Options {
        crate_root: crate_root.to_owned(),
        runtime_root: RUNTIME.to_owned(),
        module_style: ModuleStyle::Files,
        features: None,
        sources: SourceEmbedding::None,
        routes: false,
    };
    let generated = generate(&catalog, &opts).map_err(|e| match e {
        CodegenError::Lexicon(diags) => Error::Lexicon(render(&diags, &file_of)),
        other => Error::Codegen(other),
    })?;
    let generated: HashMap<PathBuf, String> = generated
        .into_iter()
        .map(|f| (f.path, f.contents))
        .collect();

    let mut app_modules: HashSet<Vec<String>> = HashSet::new();
    let mut keep: HashSet<Vec<String>> = HashSet::new();
    let mut external_modules: HashSet<Vec<String>> = HashSet::new();
    for doc in catalog.docs() {
        let segments = nsid_module_segments(doc.id.as_str());
        if app.doc_id(doc.id.as_str()).is_some() {
            for k in 1..=segments.len() {
                keep.insert(segments[..k].to_vec());
            }
            app_modules.insert(segments);
        } else {
            external_modules.insert(segments);
        }
    }
    let tree = Tree {
        files: &generated,
        keep: &keep,
        external: &external_modules,
    };
    let items = tree.module_items(&mut Vec::new())?;

    let sources: Vec<TokenStream> = app
        .docs()
        .iter()
        .filter_map(|doc| {
            let nsid = doc.id.as_str();
            let path = abs_of.get(nsid)?.to_str()?;
            Some(quote!((#nsid, ::core::include_str!(#path))))
        })
        .collect();
    let body = quote! {
        #(#items)*

        /// Every lexicon document these modules were generated from, as
        /// `(NSID, JSON text)`, sorted by NSID.
        pub static LEXICON_SOURCES: &[(&str, &str)] = &[#(#sources),*];
    };
    let rewrite = Rewrite {
        root: path_tokens(&quote!(#root_path)),
        runtime: TokenStream::from_str(RUNTIME).map_err(|e| Error::Generated {
            file: "runtime path".to_owned(),
            message: e.to_string(),
        })?,
        app: &app_modules,
        external: &external_modules,
    };
    let body = rewrite.stream(body);
    let module = Ident::new(LEXICONS_MODULE, Span::call_site());
    Ok(quote! {
        #[allow(
            dead_code,
            clippy::large_enum_variant,
            clippy::doc_lazy_continuation,
            clippy::too_long_first_doc_paragraph,
            rustdoc::bare_urls,
            rustdoc::broken_intra_doc_links,
            rustdoc::invalid_html_tags
        )]
        pub mod #module {
            #body
        }
    })
}

/// The generated files, assembled into one module tree.
struct Tree<'a> {
    files: &'a HashMap<PathBuf, String>,
    /// Module paths (under `lexicons`) to keep: the application's documents
    /// and the namespaces above them.
    keep: &'a HashSet<Vec<String>>,
    /// Module paths of vendored documents (their items are not emitted).
    external: &'a HashSet<Vec<String>>,
}

impl Tree<'_> {
    /// The items of the module at `path` (under `lexicons`), with its kept
    /// submodules inlined.
    fn module_items(&self, path: &mut Vec<String>) -> Result<Vec<syn::Item>, Error> {
        let mut file = PathBuf::from(LEXICONS_MODULE);
        file.extend(path.iter());
        file.push("mod.rs");
        let shown = file.display().to_string();
        let text = self.files.get(&file).ok_or_else(|| Error::Generated {
            file: shown.clone(),
            message: "missing".to_owned(),
        })?;
        let parsed = syn::parse_file(text).map_err(|e| Error::Generated {
            file: shown,
            message: e.to_string(),
        })?;
        let external = self.external.contains(path.as_slice());
        let mut items = Vec::with_capacity(parsed.items.len());
        for item in parsed.items {
            match item {
                syn::Item::Mod(mut m) if m.content.is_none() => {
                    path.push(m.ident.to_string());
                    if self.keep.contains(path.as_slice()) {
                        let inner = self.module_items(path)?;
                        m.content = Some((Default::default(), inner));
                        m.semi = None;
                        items.push(syn::Item::Mod(m));
                    }
                    path.pop();
                }
                // A vendored document's own items live in atproto_types.
                _ if external => {}
                other => items.push(other),
            }
        }
        Ok(items)
    }
}

/// A token of a path, compared by text.
#[derive(Debug, Clone, PartialEq, Eq)]
enum PathTok {
    Ident(String),
    Punct(char),
}

fn path_tokens(tokens: &TokenStream) -> Vec<PathTok> {
    tokens
        .clone()
        .into_iter()
        .filter_map(|t| match t {
            TokenTree::Ident(i) => Some(PathTok::Ident(i.to_string())),
            TokenTree::Punct(p) => Some(PathTok::Punct(p.as_char())),
            _ => None,
        })
        .collect()
}

fn tok_matches(t: &TokenTree, want: &PathTok) -> bool {
    match (t, want) {
        (TokenTree::Ident(i), PathTok::Ident(w)) => i == w,
        (TokenTree::Punct(p), PathTok::Punct(w)) => p.as_char() == *w,
        _ => false,
    }
}

/// Whether `tokens` end with `::` (a path continues: what follows is not
/// the start of a path).
fn ends_with_path_sep(tokens: &[TokenTree]) -> bool {
    match tokens {
        [.., TokenTree::Punct(a), TokenTree::Punct(b)] => {
            a.as_char() == ':' && a.spacing() == Spacing::Joint && b.as_char() == ':'
        }
        _ => false,
    }
}

fn is_colon(t: Option<&TokenTree>) -> bool {
    matches!(t, Some(TokenTree::Punct(p)) if p.as_char() == ':')
}

/// Rewrites `<crate_root>::lexicons::<vendored document>::...` paths to
/// `::atproto_types::lexicons::...`, in items and in macro input alike.
struct Rewrite<'a> {
    root: Vec<PathTok>,
    runtime: TokenStream,
    app: &'a HashSet<Vec<String>>,
    external: &'a HashSet<Vec<String>>,
}

impl Rewrite<'_> {
    fn stream(&self, tokens: TokenStream) -> TokenStream {
        let tokens: Vec<TokenTree> = tokens.into_iter().collect();
        let mut out: Vec<TokenTree> = Vec::with_capacity(tokens.len());
        let mut i = 0;
        while let Some(t) = tokens.get(i) {
            if !ends_with_path_sep(&out) {
                if let Some(consumed) = self.external_prefix(&tokens[i..]) {
                    out.extend(self.runtime.clone());
                    out.push(TokenTree::Punct(Punct::new(':', Spacing::Joint)));
                    out.push(TokenTree::Punct(Punct::new(':', Spacing::Alone)));
                    out.push(TokenTree::Ident(Ident::new(
                        LEXICONS_MODULE,
                        Span::call_site(),
                    )));
                    i += consumed;
                    continue;
                }
            }
            match t {
                TokenTree::Group(g) => {
                    let mut new = Group::new(g.delimiter(), self.stream(g.stream()));
                    new.set_span(g.span());
                    out.push(TokenTree::Group(new));
                }
                other => out.push(other.clone()),
            }
            i += 1;
        }
        out.into_iter().collect()
    }

    /// If `tokens` start with `<root>::lexicons::a::b...` where the longest
    /// document module among the `a::b...` prefixes is a vendored one: the
    /// number of tokens up to and including `lexicons`.
    fn external_prefix(&self, tokens: &[TokenTree]) -> Option<usize> {
        let mut pattern = self.root.clone();
        pattern.extend([
            PathTok::Punct(':'),
            PathTok::Punct(':'),
            PathTok::Ident(LEXICONS_MODULE.to_owned()),
        ]);
        if tokens.len() < pattern.len()
            || !tokens.iter().zip(&pattern).all(|(t, w)| tok_matches(t, w))
        {
            return None;
        }
        let consumed = pattern.len();
        let mut segments = Vec::new();
        let mut j = consumed;
        while is_colon(tokens.get(j)) && is_colon(tokens.get(j + 1)) {
            match tokens.get(j + 2) {
                Some(TokenTree::Ident(id)) => segments.push(id.to_string()),
                _ => break,
            }
            j += 3;
        }
        for k in (1..=segments.len()).rev() {
            let prefix = &segments[..k];
            if self.app.contains(prefix) {
                return None;
            }
            if self.external.contains(prefix) {
                return Some(consumed);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, rel: &str, text: &str) {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create dirs");
        }
        std::fs::write(path, text).expect("write");
    }

    /// Expand the documents `(relative path, JSON)` placed under
    /// `<tmp>/lex`.
    fn run(docs: &[(&str, &str)], crate_root: &str) -> Result<String, Error> {
        let tmp = tempfile::tempdir().expect("tempdir");
        for (rel, text) in docs {
            write(&tmp.path().join("lex"), rel, text);
        }
        expand(tmp.path(), Path::new("lex"), crate_root).map(|t| t.to_string())
    }

    fn lexicon_errors(r: Result<String, Error>) -> Vec<String> {
        match r {
            Err(Error::Lexicon(lines)) => lines,
            Err(other) => panic!("not a lexicon error: {other}"),
            Ok(out) => panic!("expanded: {out}"),
        }
    }

    const NOTE: &str = r#"{"lexicon": 1, "id": "com.example.note", "defs": {"main": {
        "type": "record", "key": "tid", "record": {"type": "object", "properties": {
            "subject": {"type": "ref", "ref": "com.atproto.repo.strongRef"},
            "post": {"type": "ref", "ref": "app.bsky.feed.post"},
            "part": {"type": "ref", "ref": "com.example.defs#part"}}}}}}"#;

    const DEFS: &str = r#"{"lexicon": 1, "id": "com.example.defs", "defs": {
        "part": {"type": "object", "properties": {"n": {"type": "integer"}}}}}"#;

    #[test]
    fn references_to_vendored_documents_use_atproto_types() {
        let out = run(
            &[
                ("com/example/note.json", NOTE),
                ("com/example/defs.json", DEFS),
            ],
            "crate",
        )
        .expect("expands");
        assert!(out.starts_with("# [allow ("), "{out}");
        assert!(out.contains("pub mod lexicons {"), "{out}");
        assert!(
            out.contains(
                ":: atproto_types :: lexicons :: com :: atproto :: repo :: strong_ref :: Main"
            ),
            "{out}"
        );
        assert!(
            out.contains(":: atproto_types :: lexicons :: app :: bsky :: feed :: post :: Record"),
            "{out}"
        );
        // The application's own types keep crate paths.
        assert!(
            out.contains("crate :: lexicons :: com :: example :: defs :: Part"),
            "{out}"
        );
        // Nothing of the vendored documents is generated again.
        for absent in [
            "pub mod atproto",
            "pub mod app",
            "pub mod strong_ref",
            "pub mod post",
        ] {
            assert!(!out.contains(absent), "{absent}: {out}");
        }
        assert!(out.contains("pub mod example"), "{out}");
        assert!(out.contains("LEXICON_SOURCES"), "{out}");
        assert!(out.contains(":: core :: include_str !"), "{out}");
    }

    #[test]
    fn crate_root_prefixes_own_paths() {
        let out = run(
            &[("note.json", NOTE), ("defs.json", DEFS)],
            "crate::generated::inner",
        )
        .expect("expands");
        assert!(
            out.contains(
                "crate :: generated :: inner :: lexicons :: com :: example :: defs :: Part"
            ),
            "{out}"
        );
        assert!(
            out.contains(":: atproto_types :: lexicons :: com :: atproto"),
            "{out}"
        );
        assert!(!out.contains("crate :: lexicons"), "{out}");

        match run(&[("note.json", NOTE), ("defs.json", DEFS)], "not a path") {
            Err(Error::CrateRoot(root, _)) => assert_eq!(root, "not a path"),
            other => panic!("{:?}", other.map(|_| ())),
        }
    }

    #[test]
    fn an_application_document_replaces_a_vendored_one() {
        let mine = r#"{"lexicon": 1, "id": "com.atproto.repo.strongRef", "defs": {"main": {
            "type": "object", "properties": {"mine": {"type": "boolean"}}}}}"#;
        let out = run(
            &[
                ("com/example/note.json", NOTE),
                ("com/example/defs.json", DEFS),
                ("strong_ref.json", mine),
            ],
            "crate",
        )
        .expect("expands");
        assert!(
            out.contains("crate :: lexicons :: com :: atproto :: repo :: strong_ref :: Main"),
            "{out}"
        );
        assert!(out.contains("pub mine"), "{out}");
        assert!(
            !out.contains(":: atproto_types :: lexicons :: com :: atproto :: repo"),
            "{out}"
        );
    }

    #[test]
    fn dangling_refs_name_document_file_and_path() {
        let bad = r##"{"lexicon": 1, "id": "com.example.bad", "defs": {"main": {
            "type": "object", "properties": {
                "x": {"type": "ref", "ref": "com.atproto.repo.nope"},
                "y": {"type": "union", "refs": ["#missing"]}}}}}"##;
        let errors = lexicon_errors(run(&[("com/example/bad.json", bad)], "crate"));
        assert_eq!(
            errors,
            [
                "com.example.bad (lex/com/example/bad.json): defs.main.properties.x.ref: unknown ref com.atproto.repo.nope",
                "com.example.bad (lex/com/example/bad.json): defs.main.properties.y.refs[0]: unknown ref com.example.bad#missing",
            ]
        );
        let msgs = Error::Lexicon(errors).messages();
        assert!(msgs
            .iter()
            .all(|m| m.starts_with("invalid lexicon: com.example.bad")));
    }

    #[test]
    fn invalid_documents_are_reported() {
        let errors = lexicon_errors(run(&[("a.json", "{ nope")], "crate"));
        assert_eq!(errors.len(), 1);
        assert!(
            errors[0].starts_with("lex/a.json: not valid JSON"),
            "{errors:?}"
        );

        let errors = lexicon_errors(run(
            &[(
                "b.json",
                r#"{"lexicon": 1, "id": "com.example.b", "defs": {"main": {"type": "string", "maxLength": -1}}}"#,
            )],
            "crate",
        ));
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0].starts_with("com.example.b: defs.main.maxLength: "),
            "{errors:?}"
        );

        // A reference to a token is a generator error, reported the same way.
        let errors = lexicon_errors(run(
            &[(
                "c.json",
                r##"{"lexicon": 1, "id": "com.example.c", "defs": {"main": {"type": "object",
                    "properties": {"t": {"type": "ref", "ref": "#tok"}}}, "tok": {"type": "token"}}}"##,
            )],
            "crate",
        ));
        assert!(!errors.is_empty());
        assert!(
            errors.iter().all(|e| e.starts_with("com.example.c")),
            "{errors:?}"
        );
    }

    #[test]
    fn missing_or_empty_directories() {
        let tmp = tempfile::tempdir().expect("tempdir");
        match expand(tmp.path(), Path::new("absent"), "crate") {
            Err(Error::Io { path, .. }) => assert!(path.ends_with("absent"), "{path}"),
            other => panic!("{:?}", other.map(|_| ())),
        }
        std::fs::create_dir(tmp.path().join("empty")).expect("mkdir");
        assert!(matches!(
            expand(tmp.path(), Path::new("empty"), "crate"),
            Err(Error::Empty(_))
        ));
    }

    #[test]
    fn arguments() {
        let args: Args = syn::parse_str(r#""dir", crate_root = "crate::x","#).expect("parses");
        assert_eq!(args.dir.value(), "dir");
        assert_eq!(
            args.crate_root.map(|l| l.value()).as_deref(),
            Some("crate::x")
        );
        assert!(syn::parse_str::<Args>(r#""dir", other = "x""#).is_err());
        assert!(syn::parse_str::<Args>(r#""dir", crate_root = "a", crate_root = "b""#).is_err());
        assert!(syn::parse_str::<Args>("dir").is_err());
    }

    #[test]
    fn rewriting_stops_at_application_modules() {
        let app: HashSet<Vec<String>> = [vec![
            "com".into(),
            "atproto".into(),
            "repo".into(),
            "note".into(),
        ]]
        .into_iter()
        .collect();
        let external: HashSet<Vec<String>> = [vec![
            "com".into(),
            "atproto".into(),
            "repo".into(),
            "strong_ref".into(),
        ]]
        .into_iter()
        .collect();
        let rw = Rewrite {
            root: vec![PathTok::Ident("crate".into())],
            runtime: TokenStream::from_str(RUNTIME).expect("tokens"),
            app: &app,
            external: &external,
        };
        let input = TokenStream::from_str(
            "struct A { a: crate::lexicons::com::atproto::repo::strong_ref::Main, \
             b: Vec<crate::lexicons::com::atproto::repo::note::Main>, \
             c: ::x::crate::lexicons::com::atproto::repo::strong_ref::Main } \
             m! { V(crate::lexicons::com::atproto::repo::strong_ref::Main) }",
        )
        .expect("tokens");
        let out = rw.stream(input).to_string().replace(' ', "");
        assert_eq!(
            out,
            "struct A { a : :: atproto_types :: lexicons :: com :: atproto :: repo :: strong_ref :: Main , \
             b : Vec < crate :: lexicons :: com :: atproto :: repo :: note :: Main > , \
             c : :: x :: crate :: lexicons :: com :: atproto :: repo :: strong_ref :: Main } \
             m ! { V (:: atproto_types :: lexicons :: com :: atproto :: repo :: strong_ref :: Main) }"
            .replace(' ', "")
        );
    }
}
