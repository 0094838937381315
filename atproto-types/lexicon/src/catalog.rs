//! A set of lexicon documents with every reference resolved.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use serde_json::Value as Json;

use crate::diag::{Diagnostic, LexiconError, Severity};
use crate::model::*;
use crate::parse::parse_document;
use crate::walk::{render_steps, walk_def, walk_def_mut, PathStep, RefSite};

/// A loaded, checked set of lexicon documents in which every reference is
/// resolved to a [`DefId`].
///
/// Build one with [`Catalog::builder`] (or [`Catalog::from_dir`] /
/// [`Catalog::from_json_strs`]). Documents are kept sorted by NSID, so
/// [`DocId`]s and [`DefId`]s do not depend on loading order. A catalog is
/// immutable, `Send + Sync`, and cheap to share behind an `Arc`.
#[derive(Debug, Clone)]
pub struct Catalog {
    docs: Vec<LexDoc>,
    sources: Vec<String>,
    by_nsid: HashMap<String, DocId>,
    deps: Vec<BTreeSet<DocId>>,
    warnings: Vec<Diagnostic>,
}

/// Collects lexicon documents for a [`Catalog`].
///
/// Adding never fails: problems are recorded and reported all together by
/// [`CatalogBuilder::build`].
#[derive(Debug, Default)]
pub struct CatalogBuilder {
    docs: Vec<(LexDoc, String)>,
    diags: Vec<Diagnostic>,
    allow_unresolved: bool,
}

impl CatalogBuilder {
    /// An empty builder.
    pub fn new() -> CatalogBuilder {
        CatalogBuilder::default()
    }

    /// Report references to definitions missing from the catalog as
    /// warnings instead of errors (their [`LexRef::resolved`] stays `None`,
    /// and validating a value that reaches one fails). Useful to check a few
    /// documents that point into a larger set not loaded here.
    pub fn allow_unresolved_refs(mut self, allow: bool) -> CatalogBuilder {
        self.allow_unresolved = allow;
        self
    }

    /// Add a document from JSON text; `source` names it in diagnostics.
    pub fn add_json_str(&mut self, source: &str, text: &str) -> &mut CatalogBuilder {
        match serde_json::from_str::<Json>(text) {
            Ok(json) => self.add_json(source, &json),
            Err(e) => {
                self.diags.push(Diagnostic {
                    severity: Severity::Error,
                    doc: source.to_owned(),
                    path: String::new(),
                    message: format!("not valid JSON: {e}"),
                });
                self
            }
        }
    }

    /// Add a document from parsed JSON; `source` names it in diagnostics.
    pub fn add_json(&mut self, source: &str, json: &Json) -> &mut CatalogBuilder {
        let (doc, diags) = parse_document(json, source);
        self.diags.extend(diags);
        if let Some(doc) = doc {
            self.docs.push((doc, source.to_owned()));
        }
        self
    }

    /// Add an already parsed document (its refs are re-resolved).
    pub fn add_doc(&mut self, doc: LexDoc) -> &mut CatalogBuilder {
        let source = doc.id.as_str().to_owned();
        self.docs.push((doc, source));
        self
    }

    /// Add every `*.json` file under `dir`, recursively, in path order.
    pub fn add_dir(&mut self, dir: impl AsRef<Path>) -> &mut CatalogBuilder {
        let mut files = Vec::new();
        let mut pending = vec![dir.as_ref().to_path_buf()];
        while let Some(d) = pending.pop() {
            let entries = match std::fs::read_dir(&d) {
                Ok(e) => e,
                Err(e) => {
                    self.io_error(&d, &e);
                    continue;
                }
            };
            for entry in entries {
                match entry {
                    Ok(entry) => {
                        let path = entry.path();
                        match entry.file_type() {
                            Ok(t) if t.is_dir() => pending.push(path),
                            Ok(_) if path.extension().is_some_and(|e| e == "json") => {
                                files.push(path)
                            }
                            Ok(_) => {}
                            Err(e) => self.io_error(&path, &e),
                        }
                    }
                    Err(e) => self.io_error(&d, &e),
                }
            }
        }
        files.sort();
        for path in files {
            self.add_file(&path);
        }
        self
    }

    /// Add one JSON file.
    pub fn add_file(&mut self, path: impl AsRef<Path>) -> &mut CatalogBuilder {
        let path = path.as_ref();
        match std::fs::read_to_string(path) {
            Ok(text) => self.add_json_str(&path.display().to_string(), &text),
            Err(e) => {
                self.io_error(path, &e);
                self
            }
        }
    }

    fn io_error(&mut self, path: &Path, e: &std::io::Error) {
        self.diags.push(Diagnostic {
            severity: Severity::Error,
            doc: path.display().to_string(),
            path: String::new(),
            message: format!("can not read: {e}"),
        });
    }

    /// Check for duplicates, resolve every reference, and build the catalog.
    /// Fails with every error found (warnings included in the error).
    pub fn build(self) -> Result<Catalog, LexiconError> {
        let CatalogBuilder {
            mut docs,
            mut diags,
            allow_unresolved,
        } = self;
        docs.sort_by(|a, b| a.0.id.as_str().cmp(b.0.id.as_str()));

        // Duplicate ids.
        let mut unique: Vec<(LexDoc, String)> = Vec::with_capacity(docs.len());
        for (doc, source) in docs {
            if let Some((prev, prev_source)) = unique.last() {
                if prev.id == doc.id {
                    diags.push(Diagnostic {
                        severity: Severity::Error,
                        doc: doc.id.as_str().to_owned(),
                        path: String::new(),
                        message: format!("duplicate lexicon id (from {prev_source} and {source})"),
                    });
                    continue;
                }
            }
            unique.push((doc, source));
        }
        let (mut docs, sources): (Vec<LexDoc>, Vec<String>) = unique.into_iter().unzip();

        // Index of every definition, with its kind, for resolution.
        let by_nsid: HashMap<String, DocId> = docs
            .iter()
            .enumerate()
            .map(|(i, d)| (d.id.as_str().to_owned(), DocId(i as u32)))
            .collect();
        let kinds: Vec<Vec<(String, TargetKind)>> = docs
            .iter()
            .map(|d| {
                d.defs
                    .iter()
                    .map(|nd| (nd.name.clone(), TargetKind::of(&nd.def)))
                    .collect()
            })
            .collect();
        let lookup = |target: &DefRef| -> Option<(DefId, TargetKind)> {
            let doc = *by_nsid.get(target.nsid.as_str())?;
            let defs = kinds.get(doc.0 as usize)?;
            let index = defs
                .binary_search_by(|(n, _)| n.as_str().cmp(&target.name))
                .ok()?;
            Some((
                DefId {
                    doc,
                    index: index as u32,
                },
                defs[index].1,
            ))
        };

        let mut deps = vec![BTreeSet::new(); docs.len()];
        for (doc_index, doc) in docs.iter_mut().enumerate() {
            let doc_name = doc.id.as_str().to_owned();
            for named in doc.defs.iter_mut() {
                let mut path = vec![PathStep::Static("defs"), PathStep::Key(named.name.clone())];
                walk_def_mut(&mut named.def, &mut path, &mut |r, site, steps| {
                    let mut report = |severity: Severity, message: String| {
                        diags.push(Diagnostic {
                            severity,
                            doc: doc_name.clone(),
                            path: render_steps(steps),
                            message,
                        })
                    };
                    match lookup(&r.target) {
                        None => {
                            r.resolved = None;
                            let severity = if allow_unresolved {
                                Severity::Warning
                            } else {
                                Severity::Error
                            };
                            report(severity, format!("unknown ref {}", r.target));
                        }
                        Some((id, kind)) => {
                            if let Some(problem) = kind.check(site) {
                                report(
                                    Severity::Error,
                                    format!("ref {} points to {problem}", r.target),
                                );
                            }
                            r.resolved = Some(id);
                            if id.doc.0 as usize != doc_index {
                                deps[doc_index].insert(id.doc);
                            }
                        }
                    }
                });
            }
        }

        if diags.iter().any(Diagnostic::is_error) {
            return Err(LexiconError { diagnostics: diags });
        }
        Ok(Catalog {
            docs,
            sources,
            by_nsid,
            deps,
            warnings: diags,
        })
    }
}

/// What a reference points to, as far as the target rules care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TargetKind {
    Record,
    Object,
    Token,
    /// query / procedure / subscription / permission-set
    Endpoint(&'static str),
    /// boolean, integer, string, bytes, cid-link, blob, array
    OtherSchema(&'static str),
    Unsupported,
}

impl TargetKind {
    fn of(def: &LexDef) -> TargetKind {
        match def {
            LexDef::Record(_) => TargetKind::Record,
            LexDef::Object(_) => TargetKind::Object,
            LexDef::Token(_) => TargetKind::Token,
            LexDef::Query(_) => TargetKind::Endpoint("query"),
            LexDef::Procedure(_) => TargetKind::Endpoint("procedure"),
            LexDef::Subscription(_) => TargetKind::Endpoint("subscription"),
            LexDef::PermissionSet(_) => TargetKind::Endpoint("permission-set"),
            LexDef::Boolean(_) => TargetKind::OtherSchema("boolean"),
            LexDef::Integer(_) => TargetKind::OtherSchema("integer"),
            LexDef::String(_) => TargetKind::OtherSchema("string"),
            LexDef::Bytes(_) => TargetKind::OtherSchema("bytes"),
            LexDef::CidLink(_) => TargetKind::OtherSchema("cid-link"),
            LexDef::Blob(_) => TargetKind::OtherSchema("blob"),
            LexDef::Array(_) => TargetKind::OtherSchema("array"),
            LexDef::Unsupported(_) => TargetKind::Unsupported,
        }
    }

    /// The problem with referencing this kind from `site`, if any.
    fn check(self, site: RefSite) -> Option<String> {
        match (self, site) {
            (TargetKind::Unsupported, _) => None,
            (TargetKind::Token, _) => Some("a token (tokens can not be referenced)".into()),
            (TargetKind::Endpoint(t), _) => Some(format!("a {t} definition")),
            (TargetKind::Record | TargetKind::Object, _) => None,
            (TargetKind::OtherSchema(_), RefSite::Ref) => None,
            (TargetKind::OtherSchema(t), RefSite::UnionVariant) => Some(format!(
                "a {t} definition (union variants must be objects or records)"
            )),
        }
    }
}

impl Catalog {
    /// A builder.
    pub fn builder() -> CatalogBuilder {
        CatalogBuilder::new()
    }

    /// Load every `*.json` file under `dir` (recursively).
    pub fn from_dir(dir: impl AsRef<Path>) -> Result<Catalog, LexiconError> {
        let mut b = CatalogBuilder::new();
        b.add_dir(dir);
        b.build()
    }

    /// Load in-memory documents given as `(source name, JSON text)`.
    pub fn from_json_strs<'a>(
        docs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Catalog, LexiconError> {
        let mut b = CatalogBuilder::new();
        for (source, text) in docs {
            b.add_json_str(source, text);
        }
        b.build()
    }

    /// The documents, sorted by NSID; a document's position is its [`DocId`].
    pub fn docs(&self) -> &[LexDoc] {
        &self.docs
    }

    /// Number of documents.
    pub fn len(&self) -> usize {
        self.docs.len()
    }

    /// Whether the catalog has no documents.
    pub fn is_empty(&self) -> bool {
        self.docs.is_empty()
    }

    /// Total number of definitions.
    pub fn def_count(&self) -> usize {
        self.docs.iter().map(|d| d.defs.len()).sum()
    }

    /// Warnings seen while loading.
    pub fn warnings(&self) -> &[Diagnostic] {
        &self.warnings
    }

    /// A document by id.
    pub fn doc(&self, id: DocId) -> Option<&LexDoc> {
        self.docs.get(id.0 as usize)
    }

    /// Where a document came from (file path or the name given).
    pub fn source(&self, id: DocId) -> Option<&str> {
        self.sources.get(id.0 as usize).map(String::as_str)
    }

    /// The id of the document with this NSID.
    pub fn doc_id(&self, nsid: &str) -> Option<DocId> {
        self.by_nsid.get(nsid).copied()
    }

    /// The document with this NSID.
    pub fn doc_by_nsid(&self, nsid: &str) -> Option<&LexDoc> {
        self.doc_id(nsid).and_then(|id| self.doc(id))
    }

    /// A definition by id.
    pub fn def(&self, id: DefId) -> Option<&LexDef> {
        self.named_def(id).map(|nd| &nd.def)
    }

    /// A definition and its name by id.
    pub fn named_def(&self, id: DefId) -> Option<&LexNamedDef> {
        self.doc(id.doc)?.defs.get(id.index as usize)
    }

    /// The absolute name of a definition.
    pub fn def_ref(&self, id: DefId) -> Option<DefRef> {
        let doc = self.doc(id.doc)?;
        let nd = doc.defs.get(id.index as usize)?;
        Some(DefRef::new(doc.id.clone(), nd.name.clone()))
    }

    /// Find a definition by absolute reference: `nsid#name`, or `nsid` for
    /// `nsid#main` (so `x` and `x#main` are the same).
    pub fn resolve(&self, reference: &str) -> Option<DefId> {
        let (nsid, name) = reference.split_once('#').unwrap_or((reference, MAIN));
        let doc = self.doc_id(nsid)?;
        let index = self.doc(doc)?.def_index(name)?;
        Some(DefId {
            doc,
            index: index as u32,
        })
    }

    /// A definition by absolute reference (see [`Catalog::resolve`]).
    pub fn get_def(&self, reference: &str) -> Option<&LexDef> {
        self.resolve(reference).and_then(|id| self.def(id))
    }

    /// The record type stored in `collection`, if the catalog has it.
    pub fn record(&self, collection: &str) -> Option<&LexRecord> {
        self.doc_by_nsid(collection).and_then(LexDoc::record)
    }

    /// Every definition with its id and document, in catalog order.
    pub fn defs(&self) -> impl Iterator<Item = (DefId, &LexDoc, &LexNamedDef)> {
        self.docs.iter().enumerate().flat_map(|(d, doc)| {
            doc.defs.iter().enumerate().map(move |(i, nd)| {
                (
                    DefId {
                        doc: DocId(d as u32),
                        index: i as u32,
                    },
                    doc,
                    nd,
                )
            })
        })
    }

    /// The documents that `doc` references (not including itself).
    pub fn doc_dependencies(&self, doc: DocId) -> impl Iterator<Item = DocId> + '_ {
        self.deps.get(doc.0 as usize).into_iter().flatten().copied()
    }

    /// The reference graph between documents, by NSID: each document maps to
    /// the set of other documents it references. Every document is a key.
    pub fn ref_graph(&self) -> BTreeMap<&str, BTreeSet<&str>> {
        self.docs
            .iter()
            .enumerate()
            .map(|(i, doc)| {
                let targets = self
                    .deps
                    .get(i)
                    .into_iter()
                    .flatten()
                    .filter_map(|d| self.doc(*d))
                    .map(|d| d.id.as_str())
                    .collect();
                (doc.id.as_str(), targets)
            })
            .collect()
    }

    /// The documents reachable from `doc` by references, including `doc`
    /// itself (the closure of [`Catalog::doc_dependencies`]).
    pub fn doc_closure(&self, doc: DocId) -> BTreeSet<DocId> {
        let mut seen = BTreeSet::new();
        let mut stack = vec![doc];
        while let Some(d) = stack.pop() {
            if seen.insert(d) {
                stack.extend(self.doc_dependencies(d));
            }
        }
        seen
    }

    /// The definitions a definition references directly, in walk order
    /// (duplicates removed).
    pub fn def_dependencies(&self, id: DefId) -> Vec<DefId> {
        let mut out: Vec<DefId> = Vec::new();
        if let Some(def) = self.def(id) {
            let mut path = Vec::new();
            walk_def(def, &mut path, &mut |r, _, _| {
                if let Some(t) = r.resolved {
                    if !out.contains(&t) {
                        out.push(t);
                    }
                }
            });
        }
        out
    }

    /// Where a document was loaded from, by NSID.
    pub fn source_of(&self, nsid: &str) -> Option<&str> {
        self.doc_id(nsid).and_then(|id| self.source(id))
    }

    /// The directory-relative path where a lexicon with this NSID is
    /// conventionally stored (`com/atproto/repo/createRecord.json`).
    pub fn conventional_path(nsid: &str) -> PathBuf {
        let mut p: PathBuf = nsid.split('.').collect();
        p.set_extension("json");
        p
    }
}
