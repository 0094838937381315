//! Lowering: lexicon documents → a small model of the Rust items to emit.
//!
//! Each document becomes a [`ModuleIr`] holding [`Item`]s in emission
//! order (a parent before the inline types declared in its fields). Types
//! are [`Ty`]s; references to named definitions stay symbolic
//! ([`Ty::Def`]) until emission, where [`Names`] gives their paths.

use std::collections::HashMap;

use atproto_lexicon::{
    Catalog, DefRef, Diagnostic, LexArray, LexBodySchema, LexDef, LexDoc, LexObject, LexParam,
    LexParams, LexPrimitive, LexRef, LexString, LexType, LexUnion, LexXrpcBody, LexXrpcError,
    Severity, StringFormat, MAIN as MAIN_DEF,
};

use crate::naming::{self, DefItem, DocNames, FieldNames, Names};

/// Position of an item: module index and item index in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct ItemKey {
    pub module: usize,
    pub item: usize,
}

/// A Rust type, before paths are decided.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Ty {
    Bool,
    Int,
    Str,
    Format(StringFormat),
    Bytes,
    CidLink,
    Blob,
    Unknown,
    Vec(Box<Ty>),
    /// An item of the same module (inline types).
    Item(ItemKey),
    /// A named definition.
    Def(DefRef),
}

/// Whether a field must be there, may be left out, or may be `null`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Presence {
    /// `T`.
    Required,
    /// `Option<T>`, skipped when `None`.
    Optional,
    /// `Option<T>`, serialized as `null` when `None`.
    RequiredNullable,
    /// `Option<Nullable<T>>`: absent, `null` or a value.
    OptionalNullable,
    /// `Vec<T>` defaulting to empty, skipped when empty (repeated query
    /// parameters).
    DefaultVec,
}

#[derive(Debug, Clone)]
pub(crate) struct Field {
    pub name: String,
    pub json: String,
    pub doc: Vec<String>,
    pub ty: Ty,
    pub presence: Presence,
}

#[derive(Debug, Clone)]
pub(crate) struct Variant {
    pub name: String,
    pub value: String,
    pub doc: Vec<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct UnionVariant {
    pub name: String,
    pub tag: String,
    pub ty: Ty,
}

#[derive(Debug, Clone)]
pub(crate) struct RecordInfo {
    pub nsid: String,
    pub key: String,
}

#[derive(Debug, Clone)]
pub(crate) enum ItemKind {
    Struct {
        fields: Vec<Field>,
        /// Whether unknown properties are kept (`extra_data`).
        extra: bool,
        record: Option<RecordInfo>,
    },
    Union {
        open: bool,
        variants: Vec<UnionVariant>,
    },
    StrEnum {
        open: bool,
        values: Vec<Variant>,
    },
    Error {
        values: Vec<Variant>,
    },
    Alias(Ty),
    Const(String),
}

#[derive(Debug, Clone)]
pub(crate) struct Item {
    pub name: String,
    pub doc: Vec<String>,
    pub kind: ItemKind,
}

#[derive(Debug, Clone)]
pub(crate) struct ModuleIr {
    pub nsid: String,
    pub items: Vec<Item>,
}

/// Every module, plus where each named definition's item is.
#[derive(Debug)]
pub(crate) struct Lowered {
    pub modules: Vec<ModuleIr>,
    pub def_items: HashMap<DefRef, ItemKey>,
    pub diagnostics: Vec<Diagnostic>,
}

impl Lowered {
    pub fn item(&self, key: ItemKey) -> Option<&Item> {
        self.modules.get(key.module)?.items.get(key.item)
    }
}

/// Lower every document of the catalog.
pub(crate) fn lower(catalog: &Catalog, names: &Names) -> Lowered {
    let mut lowered = Lowered {
        modules: Vec::with_capacity(catalog.len()),
        def_items: HashMap::new(),
        diagnostics: Vec::new(),
    };
    for (module, doc) in catalog.docs().iter().enumerate() {
        let scope = match names.doc(doc.id.as_str()) {
            Some(s) => s.clone(),
            None => DocNames::new(doc),
        };
        let mut l = DocLowerer {
            names,
            doc,
            module,
            scope,
            items: Vec::new(),
            def_items: Vec::new(),
            diagnostics: Vec::new(),
        };
        l.lower_doc();
        for (name, item) in l.def_items {
            lowered
                .def_items
                .insert(DefRef::new(doc.id.clone(), name), ItemKey { module, item });
        }
        lowered.diagnostics.extend(l.diagnostics);
        lowered.modules.push(ModuleIr {
            nsid: doc.id.as_str().to_owned(),
            items: l.items,
        });
    }
    lowered
}

struct DocLowerer<'a> {
    names: &'a Names,
    doc: &'a LexDoc,
    module: usize,
    scope: DocNames,
    items: Vec<Item>,
    def_items: Vec<(String, usize)>,
    diagnostics: Vec<Diagnostic>,
}

impl DocLowerer<'_> {
    fn error(&mut self, path: &str, message: String) {
        self.diagnostics.push(Diagnostic {
            severity: Severity::Error,
            doc: self.doc.id.as_str().to_owned(),
            path: path.to_owned(),
            message,
        });
    }

    fn warning(&mut self, path: &str, message: String) {
        self.diagnostics.push(Diagnostic {
            severity: Severity::Warning,
            doc: self.doc.id.as_str().to_owned(),
            path: path.to_owned(),
            message,
        });
    }

    /// Reserve a slot for an item whose inline children are lowered before
    /// it is complete, so the parent comes first.
    fn reserve(&mut self, name: &str) -> usize {
        self.items.push(Item {
            name: name.to_owned(),
            doc: Vec::new(),
            kind: ItemKind::Const(String::new()),
        });
        self.items.len() - 1
    }

    fn push(&mut self, item: Item) -> usize {
        self.items.push(item);
        self.items.len() - 1
    }

    fn key(&self, item: usize) -> ItemKey {
        ItemKey {
            module: self.module,
            item,
        }
    }

    fn inline_name(&mut self, parent: &str, field: &str) -> String {
        self.scope
            .types
            .alloc(&naming::inline_type_name(parent, field), "")
    }

    fn lower_doc(&mut self) {
        let doc = self.doc;
        let main = doc.defs.iter().filter(|d| d.name == MAIN_DEF);
        let others = doc.defs.iter().filter(|d| d.name != MAIN_DEF);
        for named in main.chain(others) {
            let item = match self.scope.def(&named.name) {
                Some(i) => i.clone(),
                None => continue,
            };
            let path = format!("defs.{}", named.name);
            let def_ref = DefRef::new(doc.id.clone(), named.name.clone());
            self.lower_def(&path, &def_ref, &named.def, &item);
        }
    }

    fn lower_def(&mut self, path: &str, def_ref: &DefRef, def: &LexDef, item: &DefItem) {
        let doc = doc_lines(def.description());
        match (def, item) {
            (LexDef::Token(_), DefItem::Const(name)) => {
                let idx = self.push(Item {
                    name: name.clone(),
                    doc,
                    kind: ItemKind::Const(def_ref.type_name().into_owned()),
                });
                self.def_items.push((def_ref.name.clone(), idx));
            }
            (LexDef::Query(q), DefItem::Endpoint) => {
                self.nsid_const();
                self.params(q.parameters.as_ref());
                if let Some(out) = &q.output {
                    self.body(&format!("{path}.output"), out, naming::OUTPUT);
                }
                self.errors(&q.errors);
            }
            (LexDef::Procedure(p), DefItem::Endpoint) => {
                self.nsid_const();
                self.params(p.parameters.as_ref());
                if let Some(input) = &p.input {
                    self.body(&format!("{path}.input"), input, naming::INPUT);
                }
                if let Some(out) = &p.output {
                    self.body(&format!("{path}.output"), out, naming::OUTPUT);
                }
                self.errors(&p.errors);
            }
            (LexDef::Subscription(s), DefItem::Endpoint) => {
                self.nsid_const();
                self.params(s.parameters.as_ref());
                if let Some(m) = &s.message {
                    let mut doc = doc_lines(m.description.as_deref());
                    if doc.is_empty() {
                        doc.push("A message of the stream.".to_owned());
                    }
                    let idx = self.reserve(naming::MESSAGE);
                    let kind = self.union_kind(&format!("{path}.message.schema"), &m.schema);
                    self.items[idx] = Item {
                        name: naming::MESSAGE.to_owned(),
                        doc,
                        kind,
                    };
                }
                self.errors(&s.errors);
            }
            (LexDef::PermissionSet(_), _) => {
                self.nsid_const();
            }
            (LexDef::Unsupported(u), _) => {
                self.warning(
                    path,
                    format!(
                        "definition of unsupported type {:?}: no Rust item generated",
                        u.type_name
                    ),
                );
            }
            (_, DefItem::Type(name)) => {
                let idx = self.reserve(name);
                self.def_items.push((def_ref.name.clone(), idx));
                let kind = self.def_kind(path, name, def);
                let mut doc = doc;
                if let LexDef::String(s) = def {
                    push_notes(&mut doc, string_notes(s));
                }
                self.items[idx] = Item {
                    name: name.clone(),
                    doc,
                    kind,
                };
            }
            (_, _) => {
                self.warning(
                    path,
                    format!(
                        "a `{}` definition is only allowed as `main`: no Rust item generated",
                        def.type_name()
                    ),
                );
            }
        }
    }

    fn def_kind(&mut self, path: &str, name: &str, def: &LexDef) -> ItemKind {
        match def {
            LexDef::Record(r) => {
                let fields = self.fields(&format!("{path}.record"), name, &r.record);
                ItemKind::Struct {
                    fields,
                    extra: true,
                    record: Some(RecordInfo {
                        nsid: self.doc.id.as_str().to_owned(),
                        key: r.key.as_lexicon_str().into_owned(),
                    }),
                }
            }
            LexDef::Object(o) => ItemKind::Struct {
                fields: self.fields(path, name, o),
                extra: true,
                record: None,
            },
            LexDef::String(s) => match string_enum(s) {
                Some((open, values)) => ItemKind::StrEnum { open, values },
                None => ItemKind::Alias(string_ty(s)),
            },
            LexDef::Integer(_) => ItemKind::Alias(Ty::Int),
            LexDef::Boolean(_) => ItemKind::Alias(Ty::Bool),
            LexDef::Bytes(_) => ItemKind::Alias(Ty::Bytes),
            LexDef::CidLink(_) => ItemKind::Alias(Ty::CidLink),
            LexDef::Blob(_) => ItemKind::Alias(Ty::Blob),
            LexDef::Array(a) => ItemKind::Alias(self.array_ty(path, name, "item", a)),
            // Handled by `lower_def`.
            LexDef::Token(_)
            | LexDef::Query(_)
            | LexDef::Procedure(_)
            | LexDef::Subscription(_)
            | LexDef::PermissionSet(_)
            | LexDef::Unsupported(_) => ItemKind::Alias(Ty::Unknown),
        }
    }

    fn nsid_const(&mut self) {
        self.push(Item {
            name: naming::NSID_CONST.to_owned(),
            doc: vec!["The NSID of this endpoint.".to_owned()],
            kind: ItemKind::Const(self.doc.id.as_str().to_owned()),
        });
    }

    fn params(&mut self, params: Option<&LexParams>) {
        let idx = self.reserve(naming::PARAMS);
        let mut fields = Vec::new();
        let mut doc = Vec::new();
        if let Some(p) = params {
            doc = doc_lines(p.description.as_deref());
            let mut names = FieldNames::new();
            for (json, param) in &p.properties {
                let required = p.is_required(json);
                let (ty, mut fdoc, is_array) = match param {
                    LexParam::Boolean(b) => (Ty::Bool, doc_lines(b.description.as_deref()), false),
                    LexParam::Integer(i) => {
                        let mut d = doc_lines(i.description.as_deref());
                        push_notes(&mut d, integer_notes(i));
                        (Ty::Int, d, false)
                    }
                    LexParam::String(s) => {
                        let mut d = doc_lines(s.description.as_deref());
                        push_notes(&mut d, string_notes(s));
                        (self.string(naming::PARAMS, json, s), d, false)
                    }
                    LexParam::Unknown(u) => {
                        (Ty::Unknown, doc_lines(u.description.as_deref()), false)
                    }
                    LexParam::Array(a) => {
                        let item = match &a.items {
                            LexPrimitive::Boolean(_) => Ty::Bool,
                            LexPrimitive::Integer(_) => Ty::Int,
                            LexPrimitive::String(s) => self.string(naming::PARAMS, json, s),
                            LexPrimitive::Unknown(_) => Ty::Unknown,
                        };
                        let mut d = doc_lines(a.description.as_deref());
                        push_notes(&mut d, length_notes("items", a.min_length, a.max_length));
                        (Ty::Vec(Box::new(item)), d, true)
                    }
                };
                if is_array {
                    push_notes(&mut fdoc, vec!["Repeated query parameter.".to_owned()]);
                }
                let presence = match (required, is_array) {
                    (true, _) => Presence::Required,
                    (false, true) => Presence::DefaultVec,
                    (false, false) => Presence::Optional,
                };
                fields.push(Field {
                    name: names.field(json),
                    json: json.clone(),
                    doc: fdoc,
                    ty,
                    presence,
                });
            }
        }
        if doc.is_empty() {
            doc.push("Query parameters.".to_owned());
        }
        self.items[idx] = Item {
            name: naming::PARAMS.to_owned(),
            doc,
            kind: ItemKind::Struct {
                fields,
                extra: false,
                record: None,
            },
        };
    }

    fn body(&mut self, path: &str, body: &LexXrpcBody, name: &str) {
        let (const_name, what) = if name == naming::INPUT {
            (naming::INPUT_ENCODING, "request")
        } else {
            (naming::OUTPUT_ENCODING, "response")
        };
        self.push(Item {
            name: const_name.to_owned(),
            doc: vec![format!("MIME type of the {what} body.")],
            kind: ItemKind::Const(body.encoding.clone()),
        });
        if !naming::is_json_body(body) {
            return;
        }
        let mut doc = doc_lines(body.description.as_deref());
        if doc.is_empty() {
            doc.push(format!("The {what} body."));
        }
        let idx = self.reserve(name);
        let kind = match &body.schema {
            Some(LexBodySchema::Object(o)) => ItemKind::Struct {
                fields: self.fields(&format!("{path}.schema"), name, o),
                extra: true,
                record: None,
            },
            Some(LexBodySchema::Ref(r)) => {
                ItemKind::Alias(self.ref_ty(&format!("{path}.schema"), r))
            }
            Some(LexBodySchema::Union(u)) => self.union_kind(&format!("{path}.schema"), u),
            None => ItemKind::Alias(Ty::Unknown),
        };
        self.items[idx] = Item {
            name: name.to_owned(),
            doc,
            kind,
        };
    }

    fn errors(&mut self, errors: &[LexXrpcError]) {
        let names: Vec<String> = errors.iter().map(|e| e.name.clone()).collect();
        let variants = naming::error_variant_names(&names);
        let values = errors
            .iter()
            .zip(variants)
            .map(|(e, v)| Variant {
                name: v,
                value: e.name.clone(),
                doc: doc_lines(e.description.as_deref()),
            })
            .collect();
        self.push(Item {
            name: naming::ERROR.to_owned(),
            doc: vec![
                "Named errors of this endpoint (the XRPC `error` field); unlisted names are `Other`."
                    .to_owned(),
            ],
            kind: ItemKind::Error { values },
        });
    }

    fn fields(&mut self, path: &str, parent: &str, obj: &LexObject) -> Vec<Field> {
        let mut names = FieldNames::new();
        let mut fields = Vec::with_capacity(obj.properties.len());
        for (json, ty) in &obj.properties {
            let fpath = format!("{path}.properties.{json}");
            let required = obj.is_required(json);
            let nullable = obj.is_nullable(json);
            let mut doc = doc_lines(ty.description());
            push_notes(&mut doc, type_notes(ty));
            let rty = self.lower_type(&fpath, parent, json, ty);
            let presence = match (required, nullable) {
                (true, false) => Presence::Required,
                (false, false) => Presence::Optional,
                (true, true) => Presence::RequiredNullable,
                (false, true) => Presence::OptionalNullable,
            };
            fields.push(Field {
                name: names.field(json),
                json: json.clone(),
                doc,
                ty: rty,
                presence,
            });
        }
        fields
    }

    fn lower_type(&mut self, path: &str, parent: &str, field: &str, ty: &LexType) -> Ty {
        match ty {
            LexType::Boolean(_) => Ty::Bool,
            LexType::Integer(_) => Ty::Int,
            LexType::String(s) => self.string(parent, field, s),
            LexType::Bytes(_) => Ty::Bytes,
            LexType::CidLink(_) => Ty::CidLink,
            LexType::Blob(_) => Ty::Blob,
            LexType::Array(a) => self.array_ty(path, parent, field, a),
            LexType::Object(o) => {
                let name = self.inline_name(parent, field);
                let idx = self.reserve(&name);
                let fields = self.fields(path, &name, o);
                self.items[idx] = Item {
                    name,
                    doc: doc_lines(o.description.as_deref()),
                    kind: ItemKind::Struct {
                        fields,
                        extra: true,
                        record: None,
                    },
                };
                Ty::Item(self.key(idx))
            }
            LexType::Ref(r) => self.ref_ty(path, r),
            LexType::Union(u) => {
                let name = self.inline_name(parent, field);
                let idx = self.reserve(&name);
                let kind = self.union_kind(path, u);
                self.items[idx] = Item {
                    name,
                    doc: doc_lines(u.description.as_deref()),
                    kind,
                };
                Ty::Item(self.key(idx))
            }
            LexType::Unknown(_) => Ty::Unknown,
            LexType::Unsupported(u) => {
                self.warning(
                    path,
                    format!("unsupported type {:?}: generated as `Value`", u.type_name),
                );
                Ty::Unknown
            }
        }
    }

    fn array_ty(&mut self, path: &str, parent: &str, field: &str, a: &LexArray) -> Ty {
        let item = self.lower_type(&format!("{path}.items"), parent, field, &a.items);
        Ty::Vec(Box::new(item))
    }

    /// A string field: an inline enum for `knownValues`/`enum`, the format
    /// type otherwise.
    fn string(&mut self, parent: &str, field: &str, s: &LexString) -> Ty {
        match string_enum(s) {
            Some((open, values)) => {
                let name = self.inline_name(parent, field);
                let idx = self.push(Item {
                    name,
                    doc: doc_lines(s.description.as_deref()),
                    kind: ItemKind::StrEnum { open, values },
                });
                Ty::Item(self.key(idx))
            }
            None => string_ty(s),
        }
    }

    fn ref_ty(&mut self, path: &str, r: &LexRef) -> Ty {
        match self.names.def_item(&r.target) {
            Some(DefItem::Type(_)) => Ty::Def(r.target.clone()),
            Some(DefItem::Const(_)) => {
                self.error(
                    path,
                    format!(
                        "reference {:?} names a token, which has no data type",
                        r.reference
                    ),
                );
                Ty::Unknown
            }
            Some(DefItem::Endpoint) | Some(DefItem::Nothing) => {
                self.error(
                    path,
                    format!(
                        "reference {:?} names a definition that is not a data type",
                        r.reference
                    ),
                );
                Ty::Unknown
            }
            None => {
                self.error(
                    path,
                    format!("reference {:?} does not resolve", r.reference),
                );
                Ty::Unknown
            }
        }
    }

    fn union_kind(&mut self, path: &str, u: &LexUnion) -> ItemKind {
        let mut targets: Vec<DefRef> = Vec::with_capacity(u.refs.len());
        for (i, r) in u.refs.iter().enumerate() {
            if targets.contains(&r.target) {
                self.warning(
                    &format!("{path}.refs.{i}"),
                    format!("duplicate union member {:?} ignored", r.reference),
                );
                continue;
            }
            match self.names.def_item(&r.target) {
                Some(DefItem::Type(_)) => targets.push(r.target.clone()),
                _ => {
                    self.error(
                        &format!("{path}.refs.{i}"),
                        format!(
                            "union member {:?} does not name an object or record",
                            r.reference
                        ),
                    );
                }
            }
        }
        let reserved: &[&str] = if u.closed {
            &[]
        } else {
            &[naming::UNKNOWN_VARIANT]
        };
        let variant_names = naming::union_variant_names(&targets, reserved);
        let variants = targets
            .into_iter()
            .zip(variant_names)
            .map(|(t, name)| UnionVariant {
                name,
                tag: t.type_name().into_owned(),
                ty: Ty::Def(t),
            })
            .collect();
        ItemKind::Union {
            open: !u.closed,
            variants,
        }
    }
}

/// `Some((open, values))` for a string with `knownValues` (open) or a
/// non-empty `enum` (closed).
fn string_enum(s: &LexString) -> Option<(bool, Vec<Variant>)> {
    let (open, raw): (bool, &[String]) =
        if let Some(e) = s.enum_values.as_deref().filter(|e| !e.is_empty()) {
            (false, e)
        } else if !s.known_values.is_empty() {
            (true, &s.known_values)
        } else {
            return None;
        };
    let mut unique: Vec<String> = Vec::with_capacity(raw.len());
    for v in raw {
        if !unique.contains(v) {
            unique.push(v.clone());
        }
    }
    let reserved: &[&str] = if open { &[naming::OTHER_VARIANT] } else { &[] };
    let names = naming::value_variant_names(&unique, reserved);
    let values = unique
        .into_iter()
        .zip(names)
        .map(|(value, name)| Variant {
            doc: vec![format!("`{value}`")],
            name,
            value,
        })
        .collect();
    Some((open, values))
}

fn string_ty(s: &LexString) -> Ty {
    match &s.format {
        None | Some(StringFormat::Other(_)) => Ty::Str,
        Some(f) => Ty::Format(f.clone()),
    }
}

/// Description text → doc lines (trimmed, so nothing reads as an indented
/// code block).
pub(crate) fn doc_lines(description: Option<&str>) -> Vec<String> {
    match description {
        None => Vec::new(),
        Some(d) => d.lines().map(|l| l.trim().to_owned()).collect::<Vec<_>>(),
    }
}

/// Append constraint notes as their own paragraph.
fn push_notes(doc: &mut Vec<String>, notes: Vec<String>) {
    if notes.is_empty() {
        return;
    }
    if !doc.is_empty() {
        doc.push(String::new());
    }
    doc.push(notes.join(" "));
}

fn length_notes(unit: &str, min: Option<u64>, max: Option<u64>) -> Vec<String> {
    match (min, max) {
        (None, None) => Vec::new(),
        (Some(a), None) => vec![format!("At least {a} {unit}.")],
        (None, Some(b)) => vec![format!("At most {b} {unit}.")],
        (Some(a), Some(b)) => vec![format!("Between {a} and {b} {unit}.")],
    }
}

fn integer_notes(i: &atproto_lexicon::LexInteger) -> Vec<String> {
    let mut out = Vec::new();
    match (i.minimum, i.maximum) {
        (None, None) => {}
        (Some(a), None) => out.push(format!("Minimum: {a}.")),
        (None, Some(b)) => out.push(format!("Maximum: {b}.")),
        (Some(a), Some(b)) => out.push(format!("Range: {a} to {b}.")),
    }
    if let Some(d) = i.default {
        out.push(format!("Default: {d}."));
    }
    if let Some(c) = i.const_value {
        out.push(format!("Always {c}."));
    }
    if let Some(e) = &i.enum_values {
        let list: Vec<String> = e.iter().map(|v| v.to_string()).collect();
        out.push(format!("One of: {}.", list.join(", ")));
    }
    out
}

fn string_notes(s: &LexString) -> Vec<String> {
    let mut out = Vec::new();
    let mut limits = Vec::new();
    if let Some(n) = s.max_graphemes {
        limits.push(format!("at most {n} graphemes"));
    }
    if let Some(n) = s.min_graphemes {
        limits.push(format!("at least {n} graphemes"));
    }
    if let Some(n) = s.max_length {
        limits.push(format!("at most {n} bytes"));
    }
    if let Some(n) = s.min_length {
        limits.push(format!("at least {n} bytes"));
    }
    if !limits.is_empty() {
        out.push(format!("Length: {}.", limits.join(", ")));
    }
    if let Some(StringFormat::Other(f)) = &s.format {
        out.push(format!("Format `{f}` (not checked)."));
    }
    if let Some(d) = &s.default {
        out.push(format!("Default: `{d}`."));
    }
    if let Some(c) = &s.const_value {
        out.push(format!("Always `{c}`."));
    }
    out
}

fn type_notes(ty: &LexType) -> Vec<String> {
    match ty {
        LexType::Integer(i) => integer_notes(i),
        LexType::String(s) => string_notes(s),
        LexType::Boolean(b) => {
            let mut out = Vec::new();
            if let Some(d) = b.default {
                out.push(format!("Default: {d}."));
            }
            if let Some(c) = b.const_value {
                out.push(format!("Always {c}."));
            }
            out
        }
        LexType::Array(a) => length_notes("items", a.min_length, a.max_length),
        LexType::Bytes(b) => length_notes("bytes", b.min_length, b.max_length),
        LexType::Blob(b) => {
            let mut out = Vec::new();
            if let Some(acc) = &b.accept {
                out.push(format!("Accepted types: {}.", acc.join(", ")));
            }
            if let Some(m) = b.max_size {
                out.push(format!("At most {m} bytes."));
            }
            out
        }
        _ => Vec::new(),
    }
}
