//! How lexicon names become Rust names.
//!
//! Every name the generator emits comes from this module, so other
//! generators (routes, OpenAPI) can compute the same paths without running
//! the type generator.
//!
//! # Rules
//!
//! **Modules.** Each lexicon document gets one module, nested by NSID
//! segment under a root module named [`LEXICONS_MODULE`]:
//! `com.atproto.repo.createRecord` is
//! `crate::lexicons::com::atproto::repo::create_record`. Each segment is
//! turned into snake_case ([`module_ident`]: `getPostThreadV2` →
//! `get_post_thread_v2`, `com.germnetwork` → `germnetwork`, hyphens become
//! underscores); a segment that starts with a digit gets a leading `_`; a
//! segment that is a Rust keyword gets a trailing `_` (`type` → `type_`).
//! The trailing underscore is the one escape used for keywords everywhere
//! (modules and fields): raw identifiers can not spell `self`, `super`,
//! `crate` or `Self`, a suffix can.
//!
//! **Types of a document.** In the document's module:
//!
//! * the `main` record is [`RECORD`] (`Record`);
//! * any other `main` schema (object, string, array, ...) is [`MAIN`]
//!   (`Main`);
//! * queries, procedures and subscriptions always get [`PARAMS`] (an empty
//!   struct when there are no parameters) and [`ERROR`] (with only the
//!   `Other` fallback when no errors are declared); every body gets a
//!   [`INPUT_ENCODING`] / [`OUTPUT_ENCODING`] constant, and a JSON body
//!   ([`is_json_body`]) also the type [`INPUT`] / [`OUTPUT`] (a struct, a
//!   union, an alias of the referenced type, or `Value` without schema);
//!   subscriptions get the union [`MESSAGE`]; every primary type
//!   (permission sets included) gets the constant [`NSID_CONST`] (`NSID`);
//! * every other definition is the PascalCase of its name
//!   (`#replyRef` → `ReplyRef`);
//! * a token is a constant: the SCREAMING_SNAKE_CASE of its name
//!   (`#requestLess` → `REQUEST_LESS`, a `main` token → `MAIN`) holding
//!   `nsid#name` (the bare NSID for `main`).
//!
//! The names `Record`, `Main`, `Params`, `Input`, `Output`, `Error`,
//! `Message` and the prelude names the generated code uses (`Option`,
//! `String`, `Vec`, `Box`, `Result`, `Some`, `None`, `Ok`, `Err`,
//! `BTreeMap`) are reserved in every module, whatever its main definition
//! is. A definition whose PascalCase name is reserved, or already taken by
//! an earlier definition (definitions are visited sorted by name), gets a
//! `Def` suffix, then `Def2`, `Def3`, ...: a def named `params` is
//! `ParamsDef`, a def named `Main` next to a `main` object is `MainDef`.
//! Constants reserve `NSID`, `INPUT_ENCODING` and `OUTPUT_ENCODING` the same
//! way, with a `_TOKEN` suffix.
//!
//! **Inline types.** An object, union or string enum declared inline in a
//! field is named `<Parent><Field>` in PascalCase (`Params` + `sort` →
//! `ParamsSort`; the items of an array field use the field's name, so the
//! union items of `features` in `main` are `MainFeatures`; the items of a
//! named array definition `foo` are `FooItem`). Inline names
//! are allocated after all definition names, so they never change a
//! definition's name; on a clash they get a number suffix (`2`, `3`, ...).
//!
//! **Fields.** A property `createdAt` is the field `created_at` with
//! `#[serde(rename = "createdAt")]` ([`field_ident`]); keywords get a
//! trailing underscore (`type` → `type_`, `self` → `self_`); characters
//! that can not appear in an identifier become `_`; a name starting with a
//! digit gets an `f` prefix. Two properties that map to the same field,
//! or a property that maps to the name of the catch-all field
//! ([`EXTRA_FIELD`]), get a number suffix ([`FieldNames`]). `$type` is
//! never a field.
//!
//! **Variants.** String `knownValues`/`enum` values become PascalCase
//! variants ([`value_variant_names`]; a token-like `nsid#name` uses `name`),
//! with `Other` reserved for the open fallback. Union variants use the
//! shortest suffix of the ref that is unambiguous in the union
//! ([`union_variant_names`]): `app.bsky.embed.images` → `Images`,
//! `app.bsky.feed.defs#postView` → `PostView`; two refs both ending in
//! `#view` become `RecordView` and `ImagesView` (one more NSID segment in
//! front). XRPC error names become PascalCase variants of `Error`
//! ([`error_variant_names`]), with `Other` reserved for the fallback.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use atproto_lexicon::{Catalog, DefRef, LexDef, LexDoc, MAIN as MAIN_DEF};
use heck::{ToShoutySnakeCase, ToSnakeCase, ToUpperCamelCase};

/// Name of the root module holding the generated lexicon modules.
pub const LEXICONS_MODULE: &str = "lexicons";
/// Type name of a document's `main` record.
pub const RECORD: &str = "Record";
/// Type name of a document's `main` schema when it is not a record.
pub const MAIN: &str = "Main";
/// Query parameters of a query, procedure or subscription.
pub const PARAMS: &str = "Params";
/// Request body of a procedure.
pub const INPUT: &str = "Input";
/// Response body of a query or procedure.
pub const OUTPUT: &str = "Output";
/// Named errors of a query, procedure or subscription.
pub const ERROR: &str = "Error";
/// Message union of a subscription.
pub const MESSAGE: &str = "Message";
/// `pub const NSID: &str` of every primary type's module.
pub const NSID_CONST: &str = "NSID";
/// `pub const INPUT_ENCODING: &str` when the input is not JSON.
pub const INPUT_ENCODING: &str = "INPUT_ENCODING";
/// `pub const OUTPUT_ENCODING: &str` when the output is not JSON.
pub const OUTPUT_ENCODING: &str = "OUTPUT_ENCODING";
/// Catch-all field of generated structs keeping unknown properties.
pub const EXTRA_FIELD: &str = "extra_data";
/// Fallback variant of open string enums and of `Error`.
pub const OTHER_VARIANT: &str = "Other";
/// Fallback variant of open unions.
pub const UNKNOWN_VARIANT: &str = "Unknown";

/// Type names reserved in every generated module.
pub const RESERVED_TYPE_NAMES: &[&str] = &[
    RECORD, MAIN, PARAMS, INPUT, OUTPUT, ERROR, MESSAGE, "Option", "Some", "None", "String", "Vec",
    "Box", "Result", "Ok", "Err", "BTreeMap", "Self",
];

/// Constant names reserved in every generated module.
pub const RESERVED_CONST_NAMES: &[&str] = &[NSID_CONST, INPUT_ENCODING, OUTPUT_ENCODING];

/// Strict, reserved and edition keywords of Rust (2015–2024).
const KEYWORDS: &[&str] = &[
    "abstract", "as", "async", "await", "become", "box", "break", "const", "continue", "crate",
    "do", "dyn", "else", "enum", "extern", "false", "final", "fn", "for", "gen", "if", "impl",
    "in", "let", "loop", "macro", "match", "mod", "move", "mut", "override", "priv", "pub", "ref",
    "return", "self", "Self", "static", "struct", "super", "trait", "true", "try", "type",
    "typeof", "union", "unsafe", "unsized", "use", "virtual", "where", "while", "yield",
];

/// Whether `s` is a Rust keyword (strict, reserved or edition-dependent).
pub fn is_keyword(s: &str) -> bool {
    KEYWORDS.contains(&s)
}

/// Appends `_` to a keyword; other identifiers are returned unchanged.
pub fn escape_keyword(s: &str) -> String {
    if is_keyword(s) {
        format!("{s}_")
    } else {
        s.to_owned()
    }
}

/// Keep `[A-Za-z0-9_]`, turn anything else into `_`, collapse runs of `_`
/// and trim them at the ends.
fn ascii_ident_chars(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        let c = if c.is_ascii_alphanumeric() { c } else { '_' };
        if c == '_' && (out.is_empty() || out.ends_with('_')) {
            continue;
        }
        out.push(c);
    }
    while out.ends_with('_') {
        out.pop();
    }
    out
}

/// snake_case identifier for a lexicon name; `prefix` is put in front of a
/// name starting with a digit (or standing in for an empty one).
fn snake_ident(s: &str, digit_prefix: &str, empty: &str) -> String {
    let snake = ascii_ident_chars(&s.to_snake_case());
    let ident = if snake.is_empty() {
        empty.to_owned()
    } else if snake.starts_with(|c: char| c.is_ascii_digit()) {
        format!("{digit_prefix}{snake}")
    } else {
        snake
    };
    escape_keyword(&ident)
}

/// PascalCase identifier for a lexicon name: never empty, never starting
/// with a digit (`V` prefix), never `Self`.
pub fn pascal_ident(s: &str) -> String {
    let pascal = ascii_ident_chars(&s.to_upper_camel_case()).replace('_', "");
    if pascal.is_empty() {
        "Empty".to_owned()
    } else if pascal.starts_with(|c: char| c.is_ascii_digit()) {
        format!("V{pascal}")
    } else if pascal == "Self" {
        "SelfValue".to_owned()
    } else {
        pascal
    }
}

/// SCREAMING_SNAKE_CASE identifier for a lexicon name (token constants).
pub fn screaming_ident(s: &str) -> String {
    let shouty = ascii_ident_chars(&s.to_shouty_snake_case());
    if shouty.is_empty() {
        "EMPTY".to_owned()
    } else if shouty.starts_with(|c: char| c.is_ascii_digit()) {
        format!("V{shouty}")
    } else {
        shouty
    }
}

/// The module name of one NSID segment.
pub fn module_ident(segment: &str) -> String {
    snake_ident(segment, "_", "_")
}

/// The module names of a document, from the root of [`LEXICONS_MODULE`]:
/// `com.atproto.repo.createRecord` → `["com", "atproto", "repo",
/// "create_record"]`.
pub fn nsid_module_segments(nsid: &str) -> Vec<String> {
    nsid.split('.').map(module_ident).collect()
}

/// The Rust path of a document's module: `module_path("crate",
/// "com.atproto.repo.createRecord")` is
/// `crate::lexicons::com::atproto::repo::create_record`. `root` is the
/// path of the crate holding the generated code (`crate`,
/// `::atproto_types`).
pub fn module_path(root: &str, nsid: &str) -> String {
    let mut path = format!("{root}::{LEXICONS_MODULE}");
    for seg in nsid_module_segments(nsid) {
        path.push_str("::");
        path.push_str(&seg);
    }
    path
}

/// The relative file (under the output directory) holding a document's
/// module: `lexicons/com/atproto/repo/create_record/mod.rs`. Namespaces are
/// `mod.rs` files too, so a document may share a directory with
/// sub-namespaces.
pub fn module_file(nsid: &str) -> String {
    let mut path = LEXICONS_MODULE.to_owned();
    for seg in nsid_module_segments(nsid) {
        path.push('/');
        path.push_str(&seg);
    }
    path.push_str("/mod.rs");
    path
}

/// The Rust field name of a property (see the module docs).
pub fn field_ident(json_name: &str) -> String {
    snake_ident(json_name, "f", "field")
}

/// The constant name of a token definition.
pub fn token_const_ident(def_name: &str) -> String {
    screaming_ident(def_name)
}

/// The name of an inline type declared in field `field` of type `parent`.
pub fn inline_type_name(parent: &str, field: &str) -> String {
    format!("{parent}{}", pascal_ident(field))
}

/// What a definition becomes in its document's module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DefItem {
    /// A type (struct, enum or alias) with this name.
    Type(String),
    /// A `&str` constant (tokens) with this name.
    Const(String),
    /// The module-level items of a primary type ([`PARAMS`], [`INPUT`],
    /// [`OUTPUT`], [`ERROR`], [`MESSAGE`], [`NSID_CONST`]); the definition
    /// itself is not a type.
    Endpoint,
    /// Nothing is generated (permission sets and unsupported definitions).
    Nothing,
}

impl DefItem {
    /// The type name, for [`DefItem::Type`].
    pub fn type_name(&self) -> Option<&str> {
        match self {
            DefItem::Type(t) => Some(t),
            _ => None,
        }
    }
}

/// Allocates distinct names in one namespace.
#[derive(Debug, Clone, Default)]
pub struct NameScope {
    used: BTreeSet<String>,
}

impl NameScope {
    /// An empty scope.
    pub fn new() -> NameScope {
        NameScope::default()
    }

    /// A scope in which `names` are already taken.
    pub fn with_reserved(names: &[&str]) -> NameScope {
        NameScope {
            used: names.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    /// Whether `name` is taken.
    pub fn contains(&self, name: &str) -> bool {
        self.used.contains(name)
    }

    /// Mark `name` as taken; returns whether it was free.
    pub fn reserve(&mut self, name: &str) -> bool {
        self.used.insert(name.to_owned())
    }

    /// Take `base` if free, else `base + suffix`, else `base + suffix + 2`,
    /// `3`, ... (`suffix` may be empty: `base2`, `base3`, ...).
    pub fn alloc(&mut self, base: &str, suffix: &str) -> String {
        if self.used.insert(base.to_owned()) {
            return base.to_owned();
        }
        if !suffix.is_empty() {
            let candidate = format!("{base}{suffix}");
            if self.used.insert(candidate.clone()) {
                return candidate;
            }
        }
        let mut n = 2u32;
        loop {
            let candidate = format!("{base}{suffix}{n}");
            if self.used.insert(candidate.clone()) {
                return candidate;
            }
            n += 1;
        }
    }
}

/// Names of a document's definitions, plus the scopes to allocate inline
/// type names in afterwards.
#[derive(Debug, Clone)]
pub struct DocNames {
    /// What each definition (by name) becomes.
    pub defs: BTreeMap<String, DefItem>,
    /// Type names taken so far in the module.
    pub types: NameScope,
    /// Constant names taken so far in the module.
    pub consts: NameScope,
}

impl DocNames {
    /// Name every definition of `doc` (see the module docs).
    pub fn new(doc: &LexDoc) -> DocNames {
        let mut types = NameScope::with_reserved(RESERVED_TYPE_NAMES);
        let mut consts = NameScope::with_reserved(RESERVED_CONST_NAMES);
        let mut defs = BTreeMap::new();
        // `main` first: it owns `Record`/`Main`/`MAIN`.
        let main = doc.defs.iter().filter(|d| d.name == MAIN_DEF);
        let others = doc.defs.iter().filter(|d| d.name != MAIN_DEF);
        for named in main.chain(others) {
            let is_main = named.name == MAIN_DEF;
            let item = match &named.def {
                LexDef::Record(_) if is_main => DefItem::Type(RECORD.to_owned()),
                LexDef::Query(_) | LexDef::Procedure(_) | LexDef::Subscription(_) if is_main => {
                    DefItem::Endpoint
                }
                LexDef::PermissionSet(_) | LexDef::Unsupported(_) => DefItem::Nothing,
                // Primary types elsewhere than `main` are invalid lexicons;
                // the catalog reports them. Nothing is generated.
                LexDef::Record(_)
                | LexDef::Query(_)
                | LexDef::Procedure(_)
                | LexDef::Subscription(_) => DefItem::Nothing,
                LexDef::Token(_) => {
                    DefItem::Const(consts.alloc(&token_const_ident(&named.name), "_TOKEN"))
                }
                _ if is_main => DefItem::Type(MAIN.to_owned()),
                _ => DefItem::Type(types.alloc(&pascal_ident(&named.name), "Def")),
            };
            defs.insert(named.name.clone(), item);
        }
        DocNames {
            defs,
            types,
            consts,
        }
    }

    /// What definition `name` becomes.
    pub fn def(&self, name: &str) -> Option<&DefItem> {
        self.defs.get(name)
    }
}

/// Names of every definition of a catalog: the table the generators share.
#[derive(Debug, Clone)]
pub struct Names {
    root: String,
    docs: HashMap<String, DocNames>,
}

impl Names {
    /// Name every definition of `catalog`; generated paths start with
    /// `root` (`crate` inside `atproto-types`, `::atproto_types` outside).
    pub fn new(catalog: &Catalog, root: &str) -> Names {
        let docs = catalog
            .docs()
            .iter()
            .map(|doc| (doc.id.as_str().to_owned(), DocNames::new(doc)))
            .collect();
        Names {
            root: root.to_owned(),
            docs,
        }
    }

    /// The crate path generated paths start with.
    pub fn root(&self) -> &str {
        &self.root
    }

    /// Names of one document.
    pub fn doc(&self, nsid: &str) -> Option<&DocNames> {
        self.docs.get(nsid)
    }

    /// What a definition becomes.
    pub fn def_item(&self, def: &DefRef) -> Option<&DefItem> {
        self.docs.get(def.nsid.as_str())?.def(&def.name)
    }

    /// The type name of a definition, when it is a type.
    pub fn def_type_name(&self, def: &DefRef) -> Option<&str> {
        self.def_item(def)?.type_name()
    }

    /// The module path of a document: `crate::lexicons::com::atproto::repo`.
    pub fn module_path(&self, nsid: &str) -> String {
        module_path(&self.root, nsid)
    }

    /// The full path of a definition's type or constant:
    /// `crate::lexicons::app::bsky::feed::defs::PostView`. `None` when the
    /// definition is unknown or generates no item of its own.
    pub fn def_path(&self, def: &DefRef) -> Option<String> {
        let name = match self.def_item(def)? {
            DefItem::Type(t) | DefItem::Const(t) => t,
            DefItem::Endpoint | DefItem::Nothing => return None,
        };
        Some(format!("{}::{name}", self.module_path(def.nsid.as_str())))
    }

    /// The path of an item of an endpoint's module (`Params`, `Input`,
    /// `Output`, `Error`, `Message`, `NSID`, ...):
    /// `crate::lexicons::com::atproto::repo::create_record::Input`.
    pub fn endpoint_item_path(&self, nsid: &str, item: &str) -> String {
        format!("{}::{item}", self.module_path(nsid))
    }
}

/// The components naming a ref, most specific first: the definition name
/// (unless `main`) then the NSID segments from last to first.
fn ref_components(r: &DefRef) -> Vec<&str> {
    let mut parts = Vec::new();
    if !r.is_main() {
        parts.push(r.name.as_str());
    }
    parts.extend(r.nsid.as_str().rsplit('.'));
    parts
}

/// Variant names for a union's refs (in order): the shortest suffix of
/// each ref that is unique in the union and not in `reserved`
/// (`Unknown` for an open union). Suffixes are joined in PascalCase
/// (`app.bsky.embed.record#view` → `View`, or `RecordView` when another
/// ref also ends in `view`). Duplicate refs get number suffixes.
pub fn union_variant_names(refs: &[DefRef], reserved: &[&str]) -> Vec<String> {
    let comps: Vec<Vec<&str>> = refs.iter().map(ref_components).collect();
    let name_of = |i: usize, k: usize| -> String {
        let c = &comps[i];
        let k = k.min(c.len());
        let mut s = String::new();
        for part in c[..k].iter().rev() {
            s.push_str(&pascal_ident(part));
        }
        if s.starts_with(|ch: char| ch.is_ascii_digit()) || s.is_empty() {
            s = pascal_ident(&s);
        }
        s
    };
    let mut depth = vec![1usize; refs.len()];
    loop {
        let names: Vec<String> = (0..refs.len()).map(|i| name_of(i, depth[i])).collect();
        let mut groups: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for (i, n) in names.iter().enumerate() {
            groups.entry(n.as_str()).or_default().push(i);
        }
        let mut changed = false;
        for (name, members) in &groups {
            let clash = members.len() > 1 || reserved.contains(name);
            if !clash {
                continue;
            }
            for &i in members {
                if depth[i] < comps[i].len() {
                    depth[i] += 1;
                    changed = true;
                }
            }
        }
        if !changed {
            // Whatever still clashes (identical refs, or full names equal
            // to a reserved word) gets a number suffix.
            let mut scope = NameScope::with_reserved(reserved);
            return names.iter().map(|n| scope.alloc(n, "")).collect();
        }
    }
}

/// Variant names for string values (`knownValues` or `enum`), in order:
/// PascalCase of the value, or of the part after `#` for token-like
/// values (`com.atproto.moderation.defs#reasonSpam` → `ReasonSpam`);
/// clashes (with each other or with `reserved`) get number suffixes.
pub fn value_variant_names(values: &[String], reserved: &[&str]) -> Vec<String> {
    let mut scope = NameScope::with_reserved(reserved);
    values
        .iter()
        .map(|v| {
            let base = match v.rsplit_once('#') {
                Some((_, frag)) if !frag.is_empty() => frag,
                _ => v.as_str(),
            };
            scope.alloc(&pascal_ident(base), "")
        })
        .collect()
}

/// Variant names of an endpoint's `Error` enum for its error names, with
/// [`OTHER_VARIANT`] reserved for the fallback.
pub fn error_variant_names(errors: &[String]) -> Vec<String> {
    let mut scope = NameScope::with_reserved(&[OTHER_VARIANT]);
    errors
        .iter()
        .map(|e| scope.alloc(&pascal_ident(e), "Error"))
        .collect()
}

/// The MIME type of JSON bodies.
pub const JSON_ENCODING: &str = "application/json";

/// Whether an XRPC body is JSON, so that its module has an `Input` /
/// `Output` type (a struct, a union, an alias of a ref, or `Value` when no
/// schema is given). Other encodings (`*/*`, `application/vnd.ipld.car`,
/// ...) only get the `INPUT_ENCODING` / `OUTPUT_ENCODING` constant, which
/// every body gets.
pub fn is_json_body(body: &atproto_lexicon::LexXrpcBody) -> bool {
    body.encoding == JSON_ENCODING
}

/// Allocates distinct field names in one struct, reserving
/// [`EXTRA_FIELD`].
#[derive(Debug, Clone)]
pub struct FieldNames {
    scope: NameScope,
}

impl Default for FieldNames {
    fn default() -> Self {
        FieldNames::new()
    }
}

impl FieldNames {
    /// A struct with only the catch-all field.
    pub fn new() -> FieldNames {
        FieldNames {
            scope: NameScope::with_reserved(&[EXTRA_FIELD]),
        }
    }

    /// The field name of a property (see [`field_ident`]); clashes get a
    /// `_2`, `_3`, ... suffix.
    pub fn field(&mut self, json_name: &str) -> String {
        let base = field_ident(json_name);
        if self.scope.reserve(&base) {
            return base;
        }
        let mut n = 2u32;
        loop {
            let candidate = format!("{base}_{n}");
            if self.scope.reserve(&candidate) {
                return candidate;
            }
            n += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dref(s: &str) -> DefRef {
        match DefRef::parse(s, None) {
            Ok(r) => r,
            Err(e) => panic!("bad test ref {s}: {e}"),
        }
    }

    #[test]
    fn modules() {
        assert_eq!(
            module_path("crate", "com.atproto.repo.createRecord"),
            "crate::lexicons::com::atproto::repo::create_record"
        );
        assert_eq!(
            nsid_module_segments("app.bsky.unspecced.getPostThreadV2"),
            ["app", "bsky", "unspecced", "get_post_thread_v2"]
        );
        assert_eq!(module_ident("type"), "type_");
        assert_eq!(module_ident("self"), "self_");
        assert_eq!(module_ident("3d"), "_3d");
        assert_eq!(module_ident("my-app"), "my_app");
        assert_eq!(module_ident("getHTTPThing"), "get_http_thing");
        assert_eq!(
            module_file("com.atproto.repo.createRecord"),
            "lexicons/com/atproto/repo/create_record/mod.rs"
        );
    }

    #[test]
    fn fields() {
        assert_eq!(field_ident("createdAt"), "created_at");
        assert_eq!(field_ident("type"), "type_");
        assert_eq!(field_ident("ref"), "ref_");
        assert_eq!(field_ident("self"), "self_");
        assert_eq!(field_ident("did"), "did");
        assert_eq!(field_ident("3d"), "f3d");
        assert_eq!(field_ident("$odd"), "odd");
        assert_eq!(field_ident("$"), "field");
        let mut f = FieldNames::new();
        assert_eq!(f.field("fooBar"), "foo_bar");
        assert_eq!(f.field("foo_bar"), "foo_bar_2");
        assert_eq!(f.field("extraData"), "extra_data_2");
    }

    #[test]
    fn idents() {
        assert_eq!(pascal_ident("replyRef"), "ReplyRef");
        assert_eq!(pascal_ident("!no-unauthenticated"), "NoUnauthenticated");
        assert_eq!(pascal_ident("self"), "SelfValue");
        assert_eq!(pascal_ident("18+"), "V18");
        assert_eq!(pascal_ident(""), "Empty");
        assert_eq!(screaming_ident("requestLess"), "REQUEST_LESS");
        assert_eq!(inline_type_name("Params", "sort"), "ParamsSort");
    }

    #[test]
    fn union_variants() {
        let refs = [
            dref("app.bsky.embed.images"),
            dref("app.bsky.embed.external"),
            dref("app.bsky.embed.recordWithMedia"),
            dref("app.bsky.feed.defs#postView"),
        ];
        assert_eq!(
            union_variant_names(&refs, &[UNKNOWN_VARIANT]),
            ["Images", "External", "RecordWithMedia", "PostView"]
        );
        let refs = [
            dref("app.bsky.embed.images#view"),
            dref("app.bsky.embed.record#view"),
            dref("app.bsky.embed.external#main"),
        ];
        assert_eq!(
            union_variant_names(&refs, &[UNKNOWN_VARIANT]),
            ["ImagesView", "RecordView", "External"]
        );
        let refs = [dref("a.b.defs#unknown"), dref("a.b.defs#unknown")];
        assert_eq!(
            union_variant_names(&refs, &[UNKNOWN_VARIANT]),
            ["ABDefsUnknown", "ABDefsUnknown2"]
        );
    }

    #[test]
    fn values_and_errors() {
        let vals: Vec<String> = [
            "com.atproto.moderation.defs#reasonSpam",
            "!hide",
            "hide",
            "other",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(
            value_variant_names(&vals, &[OTHER_VARIANT]),
            ["ReasonSpam", "Hide", "Hide2", "Other2"]
        );
        let errs: Vec<String> = ["RecordNotFound", "Other"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(error_variant_names(&errs), ["RecordNotFound", "OtherError"]);
    }

    #[test]
    fn scope() {
        let mut s = NameScope::with_reserved(RESERVED_TYPE_NAMES);
        assert_eq!(s.alloc("Params", "Def"), "ParamsDef");
        assert_eq!(s.alloc("Params", "Def"), "ParamsDef2");
        assert_eq!(s.alloc("View", "Def"), "View");
    }
}
