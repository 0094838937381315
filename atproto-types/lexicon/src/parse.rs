//! Reading lexicon JSON into the IR, checking it against the lexicon
//! specification on the way.
//!
//! Errors make the document invalid; warnings (unknown types, unknown
//! fields, unknown string formats) are collected and the document still
//! loads. Nothing here panics on input.

use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;

use atproto_syntax::{Language, Nsid};
use serde_json::{Map, Value};

use crate::diag::{render_path, Diagnostic, LexiconError, Seg, Severity};
use crate::formats;
use crate::model::*;

type Obj = Map<String, Value>;

/// Parse and check one lexicon document.
///
/// `source` names the document in diagnostics until its `id` is known
/// (a file path, or any label for in-memory documents). Returns the
/// document when it has no errors, and every diagnostic either way.
pub fn parse_document(json: &Value, source: &str) -> (Option<LexDoc>, Vec<Diagnostic>) {
    let mut cx = Cx {
        doc: source.to_owned(),
        base: None,
        path: Vec::new(),
        diags: Vec::new(),
    };
    let doc = cx.document(json);
    let has_errors = cx.diags.iter().any(Diagnostic::is_error);
    (if has_errors { None } else { doc }, cx.diags)
}

impl LexDoc {
    /// Parse and check a lexicon document; warnings are dropped (use
    /// [`parse_document`] to see them).
    pub fn from_json(json: &Value) -> Result<LexDoc, LexiconError> {
        match parse_document(json, "<lexicon>") {
            (Some(doc), _) => Ok(doc),
            (None, diagnostics) => Err(LexiconError { diagnostics }),
        }
    }

    /// Parse and check a lexicon document from JSON text.
    pub fn from_json_str(text: &str) -> Result<LexDoc, LexiconError> {
        let json: Value = serde_json::from_str(text).map_err(|e| LexiconError {
            diagnostics: vec![Diagnostic {
                severity: Severity::Error,
                doc: "<lexicon>".into(),
                path: String::new(),
                message: format!("not valid JSON: {e}"),
            }],
        })?;
        LexDoc::from_json(&json)
    }
}

impl<'de> serde::Deserialize<'de> for LexDoc {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let json = Value::deserialize(d)?;
        LexDoc::from_json(&json).map_err(serde::de::Error::custom)
    }
}

struct Cx<'j> {
    /// Document label for diagnostics.
    doc: String,
    /// The document NSID, once known and valid (for local refs).
    base: Option<Nsid>,
    path: Vec<Seg<'j>>,
    diags: Vec<Diagnostic>,
}

/// Where a schema appears; decides which types are allowed.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Place {
    Field,
    ArrayItems,
}

const PRIMARY_TYPES: [&str; 5] = [
    "record",
    "query",
    "procedure",
    "subscription",
    "permission-set",
];

impl<'j> Cx<'j> {
    // -- diagnostics ------------------------------------------------------

    fn push_diag(&mut self, severity: Severity, extra: Option<Seg<'j>>, message: String) {
        let path = match extra {
            Some(seg) => {
                self.path.push(seg);
                let p = render_path(&self.path);
                self.path.pop();
                p
            }
            None => render_path(&self.path),
        };
        self.diags.push(Diagnostic {
            severity,
            doc: self.doc.clone(),
            path,
            message,
        });
    }

    fn err(&mut self, message: impl Into<String>) {
        self.push_diag(Severity::Error, None, message.into());
    }

    fn err_at(&mut self, key: &'j str, message: impl Into<String>) {
        self.push_diag(Severity::Error, Some(Seg::Key(key)), message.into());
    }

    fn warn(&mut self, message: impl Into<String>) {
        self.push_diag(Severity::Warning, None, message.into());
    }

    fn warn_at(&mut self, key: &'j str, message: impl Into<String>) {
        self.push_diag(Severity::Warning, Some(Seg::Key(key)), message.into());
    }

    fn enter(&mut self, seg: Seg<'j>) {
        self.path.push(seg);
    }

    fn leave(&mut self) {
        self.path.pop();
    }

    // -- field readers ----------------------------------------------------

    /// Warn about fields a schema object does not define.
    fn check_keys(&mut self, obj: &'j Obj, what: &str, allowed: &[&str]) {
        for key in obj.keys() {
            if key == "type" || key == "description" || allowed.contains(&key.as_str()) {
                continue;
            }
            self.warn_at(
                key,
                format!("unrecognised field {key:?} in {what}; ignored"),
            );
        }
    }

    fn opt_str(&mut self, obj: &'j Obj, key: &'j str) -> Option<String> {
        match obj.get(key) {
            None => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => {
                self.err_at(key, format!("must be a string, found {}", json_kind(other)));
                None
            }
        }
    }

    fn req_str(&mut self, obj: &'j Obj, key: &'j str) -> Option<String> {
        if !obj.contains_key(key) {
            self.err(format!("missing required field {key:?}"));
            return None;
        }
        self.opt_str(obj, key)
    }

    fn opt_bool(&mut self, obj: &'j Obj, key: &'j str) -> Option<bool> {
        match obj.get(key) {
            None => None,
            Some(Value::Bool(b)) => Some(*b),
            Some(other) => {
                self.err_at(
                    key,
                    format!("must be a boolean, found {}", json_kind(other)),
                );
                None
            }
        }
    }

    fn opt_i64(&mut self, obj: &'j Obj, key: &'j str) -> Option<i64> {
        match obj.get(key) {
            None => None,
            Some(v) => match v.as_i64() {
                Some(i) => Some(i),
                None => {
                    self.err_at(
                        key,
                        format!("must be a 64-bit integer, found {}", json_kind(v)),
                    );
                    None
                }
            },
        }
    }

    fn opt_u64(&mut self, obj: &'j Obj, key: &'j str) -> Option<u64> {
        match obj.get(key) {
            None => None,
            Some(v) => match v.as_u64() {
                Some(i) => Some(i),
                None => {
                    self.err_at(
                        key,
                        format!("must be a non-negative integer, found {}", json_kind(v)),
                    );
                    None
                }
            },
        }
    }

    fn opt_str_list(&mut self, obj: &'j Obj, key: &'j str) -> Option<Vec<String>> {
        let v = obj.get(key)?;
        let Value::Array(items) = v else {
            self.err_at(
                key,
                format!("must be an array of strings, found {}", json_kind(v)),
            );
            return None;
        };
        let mut out = Vec::with_capacity(items.len());
        self.enter(Seg::Key(key));
        for (i, item) in items.iter().enumerate() {
            match item {
                Value::String(s) => out.push(s.clone()),
                other => self.push_diag(
                    Severity::Error,
                    Some(Seg::Index(i)),
                    format!("must be a string, found {}", json_kind(other)),
                ),
            }
        }
        self.leave();
        Some(out)
    }

    fn opt_i64_list(&mut self, obj: &'j Obj, key: &'j str) -> Option<Vec<i64>> {
        let v = obj.get(key)?;
        let Value::Array(items) = v else {
            self.err_at(
                key,
                format!("must be an array of integers, found {}", json_kind(v)),
            );
            return None;
        };
        let mut out = Vec::with_capacity(items.len());
        self.enter(Seg::Key(key));
        for (i, item) in items.iter().enumerate() {
            match item.as_i64() {
                Some(n) => out.push(n),
                None => self.push_diag(
                    Severity::Error,
                    Some(Seg::Index(i)),
                    format!("must be an integer, found {}", json_kind(item)),
                ),
            }
        }
        self.leave();
        Some(out)
    }

    fn min_max<T: PartialOrd + std::fmt::Display>(
        &mut self,
        min: &Option<T>,
        max: &Option<T>,
        min_key: &str,
        max_key: &str,
    ) {
        if let (Some(lo), Some(hi)) = (min, max) {
            if lo > hi {
                self.err(format!("{min_key} ({lo}) is greater than {max_key} ({hi})"));
            }
        }
    }

    // -- document ---------------------------------------------------------

    fn document(&mut self, json: &'j Value) -> Option<LexDoc> {
        let Value::Object(obj) = json else {
            self.err(format!(
                "a lexicon document must be a JSON object, found {}",
                json_kind(json)
            ));
            return None;
        };

        // The id first, so that diagnostics can name the document.
        let id = match obj.get("id") {
            None => {
                self.err("missing required field \"id\"");
                None
            }
            Some(Value::String(s)) => match Nsid::from_str(s) {
                Ok(nsid) => {
                    self.doc = s.clone();
                    self.base = Some(nsid.clone());
                    Some(nsid)
                }
                Err(e) => {
                    self.err_at("id", format!("id {s:?} is not a valid NSID: {e}"));
                    None
                }
            },
            Some(other) => {
                self.err_at(
                    "id",
                    format!("id must be an NSID string, found {}", json_kind(other)),
                );
                None
            }
        };

        match obj.get("lexicon") {
            None => self.err("missing required field \"lexicon\""),
            Some(v) if v.as_u64() == Some(1) => {}
            Some(v) => self.err_at(
                "lexicon",
                format!("lexicon version must be the integer 1, found {v}"),
            ),
        }
        let revision = self.opt_u64(obj, "revision");
        let description = self.opt_str(obj, "description");
        for key in obj.keys() {
            if !matches!(
                key.as_str(),
                "lexicon" | "id" | "revision" | "description" | "defs" | "$type"
            ) {
                self.warn_at(
                    key,
                    format!("unrecognised top-level field {key:?}; ignored"),
                );
            }
        }

        let mut defs = Vec::new();
        match obj.get("defs") {
            None => self.err("missing required field \"defs\""),
            Some(Value::Object(map)) => {
                if map.is_empty() {
                    self.err_at("defs", "a lexicon must have at least one definition");
                }
                self.enter(Seg::Key("defs"));
                for (name, def) in map {
                    self.enter(Seg::Key(name));
                    if !is_valid_def_name(name) {
                        self.err(format!(
                            "invalid definition name {name:?} (letters, digits, '_' and '-', starting with a letter)"
                        ));
                    }
                    if let Some(def) = self.def(name, def) {
                        defs.push(LexNamedDef {
                            name: name.clone(),
                            def,
                        });
                    }
                    self.leave();
                }
                self.leave();
            }
            Some(other) => self.err_at(
                "defs",
                format!("defs must be an object, found {}", json_kind(other)),
            ),
        }
        defs.sort_by(|a, b| a.name.cmp(&b.name));

        Some(LexDoc {
            lexicon: 1,
            id: id?,
            revision,
            description,
            defs,
        })
    }

    /// The schema object and its `type`.
    fn typed(&mut self, v: &'j Value) -> Option<(&'j Obj, &'j str)> {
        let Value::Object(obj) = v else {
            self.err(format!("expected a schema object, found {}", json_kind(v)));
            return None;
        };
        match obj.get("type") {
            Some(Value::String(t)) => Some((obj, t.as_str())),
            Some(other) => {
                self.err_at(
                    "type",
                    format!("type must be a string, found {}", json_kind(other)),
                );
                None
            }
            None => {
                self.err("missing required field \"type\"");
                None
            }
        }
    }

    fn unsupported(&mut self, obj: &'j Obj, type_name: &str) -> LexUnsupported {
        self.warn(format!(
            "unknown schema type {type_name:?}; kept as is and not validated"
        ));
        LexUnsupported {
            type_name: type_name.to_owned(),
            description: obj
                .get("description")
                .and_then(Value::as_str)
                .map(str::to_owned),
            raw: obj.clone(),
        }
    }

    // -- definitions ------------------------------------------------------

    fn def(&mut self, name: &str, v: &'j Value) -> Option<LexDef> {
        let (obj, ty) = self.typed(v)?;
        if PRIMARY_TYPES.contains(&ty) && name != MAIN {
            self.err(format!(
                "a {ty} definition must be named \"main\" (found {name:?})"
            ));
        }
        let def = match ty {
            "record" => LexDef::Record(self.record(obj)?),
            "query" => LexDef::Query(self.query(obj)),
            "procedure" => LexDef::Procedure(self.procedure(obj)),
            "subscription" => LexDef::Subscription(self.subscription(obj)),
            "permission-set" => LexDef::PermissionSet(self.permission_set(obj)),
            "token" => {
                self.check_keys(obj, "token", &[]);
                LexDef::Token(LexToken {
                    description: self.opt_str(obj, "description"),
                })
            }
            "object" => LexDef::Object(self.object(obj)),
            "boolean" => LexDef::Boolean(self.boolean(obj)),
            "integer" => LexDef::Integer(self.integer(obj)),
            "string" => LexDef::String(self.string(obj)),
            "bytes" => LexDef::Bytes(self.bytes(obj)),
            "cid-link" => LexDef::CidLink(self.cid_link(obj)),
            "blob" => LexDef::Blob(self.blob(obj)),
            "array" => LexDef::Array(self.array(obj)?),
            "ref" | "union" | "unknown" | "params" | "permission" => {
                self.err(format!("type {ty:?} can not be used as a named definition"));
                return None;
            }
            other => LexDef::Unsupported(self.unsupported(obj, other)),
        };
        Some(def)
    }

    fn record(&mut self, obj: &'j Obj) -> Option<LexRecord> {
        self.check_keys(obj, "record", &["key", "record"]);
        let description = self.opt_str(obj, "description");
        let key = match self.req_str(obj, "key") {
            Some(k) => match parse_record_key(&k) {
                Ok(k) => Some(k),
                Err(msg) => {
                    self.err_at("key", msg);
                    None
                }
            },
            None => None,
        };
        let record = match obj.get("record") {
            None => {
                self.err("missing required field \"record\"");
                None
            }
            Some(v) => {
                self.enter(Seg::Key("record"));
                let r = match self.typed(v) {
                    Some((o, "object")) => Some(self.object(o)),
                    Some((_, other)) => {
                        self.err(format!(
                            "a record schema must have type \"object\", found {other:?}"
                        ));
                        None
                    }
                    None => None,
                };
                self.leave();
                r
            }
        };
        Some(LexRecord {
            description,
            key: key?,
            record: record?,
        })
    }

    fn query(&mut self, obj: &'j Obj) -> LexXrpcQuery {
        self.check_keys(obj, "query", &["parameters", "output", "errors"]);
        if obj.contains_key("input") {
            self.err_at(
                "input",
                "a query can not have an input (only procedures do)",
            );
        }
        LexXrpcQuery {
            description: self.opt_str(obj, "description"),
            parameters: self.opt_params(obj),
            output: self.opt_body(obj, "output"),
            errors: self.errors(obj),
        }
    }

    fn procedure(&mut self, obj: &'j Obj) -> LexXrpcProcedure {
        self.check_keys(
            obj,
            "procedure",
            &["parameters", "input", "output", "errors"],
        );
        LexXrpcProcedure {
            description: self.opt_str(obj, "description"),
            parameters: self.opt_params(obj),
            input: self.opt_body(obj, "input"),
            output: self.opt_body(obj, "output"),
            errors: self.errors(obj),
        }
    }

    fn subscription(&mut self, obj: &'j Obj) -> LexXrpcSubscription {
        self.check_keys(obj, "subscription", &["parameters", "message", "errors"]);
        let message = match obj.get("message") {
            None => None,
            Some(v) => {
                self.enter(Seg::Key("message"));
                let m = self.message(v);
                self.leave();
                m
            }
        };
        LexXrpcSubscription {
            description: self.opt_str(obj, "description"),
            parameters: self.opt_params(obj),
            message,
            errors: self.errors(obj),
        }
    }

    fn message(&mut self, v: &'j Value) -> Option<LexSubscriptionMessage> {
        let Value::Object(obj) = v else {
            self.err(format!("message must be an object, found {}", json_kind(v)));
            return None;
        };
        for key in obj.keys() {
            if key != "description" && key != "schema" {
                self.warn_at(
                    key,
                    format!("unrecognised field {key:?} in message; ignored"),
                );
            }
        }
        let description = self.opt_str(obj, "description");
        let Some(schema) = obj.get("schema") else {
            self.err("missing required field \"schema\"");
            return None;
        };
        self.enter(Seg::Key("schema"));
        let union = match self.typed(schema) {
            Some((o, "union")) => self.union(o),
            Some((_, other)) => {
                self.err(format!(
                    "a subscription message schema must be a union of refs, found {other:?}"
                ));
                None
            }
            None => None,
        };
        self.leave();
        Some(LexSubscriptionMessage {
            description,
            schema: union?,
        })
    }

    fn opt_body(&mut self, obj: &'j Obj, key: &'j str) -> Option<LexXrpcBody> {
        let v = obj.get(key)?;
        self.enter(Seg::Key(key));
        let body = self.body(v);
        self.leave();
        body
    }

    fn body(&mut self, v: &'j Value) -> Option<LexXrpcBody> {
        let Value::Object(obj) = v else {
            self.err(format!("body must be an object, found {}", json_kind(v)));
            return None;
        };
        for key in obj.keys() {
            if !matches!(key.as_str(), "description" | "encoding" | "schema") {
                self.warn_at(key, format!("unrecognised field {key:?} in body; ignored"));
            }
        }
        let description = self.opt_str(obj, "description");
        let encoding = self.req_str(obj, "encoding");
        if let Some(e) = &encoding {
            if e.is_empty() || e.chars().any(char::is_whitespace) {
                self.err_at(
                    "encoding",
                    format!("invalid encoding {e:?}: expected a MIME type"),
                );
            }
        }
        let schema = match obj.get("schema") {
            None => None,
            Some(s) => {
                self.enter(Seg::Key("schema"));
                let schema = match self.typed(s) {
                    Some((o, "object")) => Some(LexBodySchema::Object(self.object(o))),
                    Some((o, "ref")) => self.reference(o).map(LexBodySchema::Ref),
                    Some((o, "union")) => self.union(o).map(LexBodySchema::Union),
                    Some((_, other)) => {
                        self.err(format!(
                            "a body schema must be an object, a ref or a union, found {other:?}"
                        ));
                        None
                    }
                    None => None,
                };
                self.leave();
                schema
            }
        };
        Some(LexXrpcBody {
            description,
            encoding: encoding?,
            schema,
        })
    }

    fn errors(&mut self, obj: &'j Obj) -> Vec<LexXrpcError> {
        let Some(v) = obj.get("errors") else {
            return Vec::new();
        };
        let Value::Array(items) = v else {
            self.err_at(
                "errors",
                format!("errors must be an array, found {}", json_kind(v)),
            );
            return Vec::new();
        };
        let mut out = Vec::new();
        let mut seen = BTreeSet::new();
        self.enter(Seg::Key("errors"));
        for (i, item) in items.iter().enumerate() {
            self.enter(Seg::Index(i));
            if let Value::Object(e) = item {
                for key in e.keys() {
                    if key != "name" && key != "description" {
                        self.warn_at(key, format!("unrecognised field {key:?} in error; ignored"));
                    }
                }
                let name = self.req_str(e, "name");
                let description = self.opt_str(e, "description");
                if let Some(name) = name {
                    if name.is_empty() || name.chars().any(char::is_whitespace) {
                        self.err_at(
                            "name",
                            format!("error name {name:?} must be non-empty with no whitespace"),
                        );
                    } else if !seen.insert(name.clone()) {
                        self.warn_at("name", format!("duplicate error name {name:?}"));
                    }
                    out.push(LexXrpcError { name, description });
                }
            } else {
                self.err(format!(
                    "an error must be an object, found {}",
                    json_kind(item)
                ));
            }
            self.leave();
        }
        self.leave();
        out
    }

    fn opt_params(&mut self, obj: &'j Obj) -> Option<LexParams> {
        let v = obj.get("parameters")?;
        self.enter(Seg::Key("parameters"));
        let p = self.params(v);
        self.leave();
        p
    }

    fn params(&mut self, v: &'j Value) -> Option<LexParams> {
        let (obj, ty) = self.typed(v)?;
        if ty != "params" {
            self.err(format!(
                "parameters must have type \"params\", found {ty:?}"
            ));
            return None;
        }
        self.check_keys(obj, "params", &["required", "properties"]);
        let description = self.opt_str(obj, "description");
        let required = self.opt_str_list(obj, "required").unwrap_or_default();
        let mut properties = BTreeMap::new();
        match obj.get("properties") {
            None => {}
            Some(Value::Object(props)) => {
                self.enter(Seg::Key("properties"));
                for (name, p) in props {
                    self.enter(Seg::Key(name));
                    if let Some(param) = self.param(p) {
                        properties.insert(name.clone(), param);
                    }
                    self.leave();
                }
                self.leave();
            }
            Some(other) => self.err_at(
                "properties",
                format!("properties must be an object, found {}", json_kind(other)),
            ),
        }
        self.check_required(&required, obj.get("properties"));
        Some(LexParams {
            description,
            required,
            properties,
        })
    }

    fn param(&mut self, v: &'j Value) -> Option<LexParam> {
        let (obj, ty) = self.typed(v)?;
        Some(match ty {
            "array" => {
                self.check_keys(obj, "array", &["items", "minLength", "maxLength"]);
                let description = self.opt_str(obj, "description");
                let min_length = self.opt_u64(obj, "minLength");
                let max_length = self.opt_u64(obj, "maxLength");
                self.min_max(&min_length, &max_length, "minLength", "maxLength");
                let Some(items) = obj.get("items") else {
                    self.err("missing required field \"items\"");
                    return None;
                };
                self.enter(Seg::Key("items"));
                let items = self.primitive(items);
                self.leave();
                LexParam::Array(LexPrimitiveArray {
                    description,
                    items: items?,
                    min_length,
                    max_length,
                })
            }
            _ => match self.primitive_of(obj, ty)? {
                LexPrimitive::Boolean(b) => LexParam::Boolean(b),
                LexPrimitive::Integer(i) => LexParam::Integer(i),
                LexPrimitive::String(s) => LexParam::String(s),
                LexPrimitive::Unknown(u) => LexParam::Unknown(u),
            },
        })
    }

    fn primitive(&mut self, v: &'j Value) -> Option<LexPrimitive> {
        let (obj, ty) = self.typed(v)?;
        self.primitive_of(obj, ty)
    }

    fn primitive_of(&mut self, obj: &'j Obj, ty: &str) -> Option<LexPrimitive> {
        Some(match ty {
            "boolean" => LexPrimitive::Boolean(self.boolean(obj)),
            "integer" => LexPrimitive::Integer(self.integer(obj)),
            "string" => LexPrimitive::String(self.string(obj)),
            "unknown" => LexPrimitive::Unknown(self.unknown(obj)),
            other => {
                self.err(format!(
                    "type {other:?} is not allowed in params (only boolean, integer, string, unknown, and arrays of those)"
                ));
                return None;
            }
        })
    }

    fn permission_set(&mut self, obj: &'j Obj) -> LexPermissionSet {
        self.check_keys(
            obj,
            "permission-set",
            &[
                "title",
                "title:lang",
                "detail",
                "detail:lang",
                "permissions",
            ],
        );
        let description = self.opt_str(obj, "description");
        let title = self.opt_str(obj, "title");
        let detail = self.opt_str(obj, "detail");
        let title_lang = self.lang_map(obj, "title:lang");
        let detail_lang = self.lang_map(obj, "detail:lang");
        let mut permissions = Vec::new();
        match obj.get("permissions") {
            None => self.err("missing required field \"permissions\""),
            Some(Value::Array(items)) => {
                self.enter(Seg::Key("permissions"));
                for (i, item) in items.iter().enumerate() {
                    self.enter(Seg::Index(i));
                    if let Some(p) = self.permission(item) {
                        permissions.push(p);
                    }
                    self.leave();
                }
                self.leave();
            }
            Some(other) => self.err_at(
                "permissions",
                format!("permissions must be an array, found {}", json_kind(other)),
            ),
        }
        LexPermissionSet {
            description,
            title,
            title_lang,
            detail,
            detail_lang,
            permissions,
        }
    }

    fn lang_map(&mut self, obj: &'j Obj, key: &'j str) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        let Some(v) = obj.get(key) else {
            return out;
        };
        let Value::Object(map) = v else {
            self.err_at(key, format!("must be an object, found {}", json_kind(v)));
            return out;
        };
        self.enter(Seg::Key(key));
        for (lang, text) in map {
            if let Err(e) = Language::from_str(lang) {
                self.err_at(lang, format!("{lang:?} is not a valid language tag: {e}"));
            }
            match text {
                Value::String(s) => {
                    out.insert(lang.clone(), s.clone());
                }
                other => self.err_at(
                    lang,
                    format!("must be a string, found {}", json_kind(other)),
                ),
            }
        }
        self.leave();
        out
    }

    fn permission(&mut self, v: &'j Value) -> Option<LexPermission> {
        let (obj, ty) = self.typed(v)?;
        if ty != "permission" {
            self.err(format!(
                "permission-set entries must have type \"permission\", found {ty:?}"
            ));
            return None;
        }
        let resource = self.req_str(obj, "resource")?;
        match resource.as_str() {
            "repo" => {
                self.check_keys(
                    obj,
                    "repo permission",
                    &["resource", "collection", "action"],
                );
                let mut collection = Vec::new();
                match self.opt_str_list(obj, "collection") {
                    None if !obj.contains_key("collection") => {
                        self.err("missing required field \"collection\"")
                    }
                    None => {}
                    Some(list) => {
                        if list.is_empty() {
                            self.err_at("collection", "collection must not be empty");
                        }
                        let mut seen = BTreeSet::new();
                        for c in list {
                            if !seen.insert(c.clone()) {
                                self.err_at("collection", format!("duplicate collection {c:?}"));
                                continue;
                            }
                            match Nsid::from_str(&c) {
                                Ok(n) => collection.push(n),
                                Err(e) => self.err_at(
                                    "collection",
                                    format!("collection {c:?} is not a valid NSID: {e}"),
                                ),
                            }
                        }
                    }
                }
                let mut action = Vec::new();
                if let Some(list) = self.opt_str_list(obj, "action") {
                    for a in list {
                        let parsed = match a.as_str() {
                            "create" => RepoAction::Create,
                            "update" => RepoAction::Update,
                            "delete" => RepoAction::Delete,
                            _ => {
                                self.err_at(
                                    "action",
                                    format!(
                                        "unknown repo action {a:?} (expected create, update or delete)"
                                    ),
                                );
                                continue;
                            }
                        };
                        if action.contains(&parsed) {
                            self.err_at("action", format!("duplicate action {a:?}"));
                        } else {
                            action.push(parsed);
                        }
                    }
                }
                Some(LexPermission::Repo(LexRepoPermission {
                    collection,
                    action,
                }))
            }
            "rpc" => {
                self.check_keys(
                    obj,
                    "rpc permission",
                    &["resource", "lxm", "aud", "inheritAud"],
                );
                let mut lxm = Vec::new();
                match self.opt_str_list(obj, "lxm") {
                    None if !obj.contains_key("lxm") => self.err("missing required field \"lxm\""),
                    None => {}
                    Some(list) => {
                        if list.is_empty() {
                            self.err_at("lxm", "lxm must not be empty");
                        }
                        for m in list {
                            if m == "*" {
                                self.warn_at(
                                    "lxm",
                                    "a wildcard lxm is not supported in lexicon permission sets",
                                );
                            } else if let Err(e) = Nsid::from_str(&m) {
                                self.err_at("lxm", format!("lxm {m:?} is not a valid NSID: {e}"));
                            }
                            lxm.push(m);
                        }
                    }
                }
                let aud = self.opt_str(obj, "aud");
                let inherit_aud = self.opt_bool(obj, "inheritAud").unwrap_or(false);
                match aud.as_deref() {
                    None if !inherit_aud => {
                        self.err("an rpc permission needs \"aud\" unless \"inheritAud\" is true")
                    }
                    Some("*") if lxm.iter().any(|m| m == "*") => {
                        self.err("aud and lxm can not both be wildcards")
                    }
                    Some(a) if a != "*" => self.err_at(
                        "aud",
                        format!(
                            "aud {a:?}: permission sets can not name a fixed service (use \"*\" or inheritAud)"
                        ),
                    ),
                    _ => {}
                }
                Some(LexPermission::Rpc(LexRpcPermission {
                    lxm,
                    aud,
                    inherit_aud,
                }))
            }
            _ => {
                let mut fields = obj.clone();
                fields.remove("type");
                fields.remove("resource");
                Some(LexPermission::Other(LexOtherPermission {
                    resource,
                    fields,
                }))
            }
        }
    }

    // -- field schemas ----------------------------------------------------

    fn field(&mut self, v: &'j Value, place: Place) -> Option<LexType> {
        let (obj, ty) = self.typed(v)?;
        Some(match ty {
            "boolean" => LexType::Boolean(self.boolean(obj)),
            "integer" => LexType::Integer(self.integer(obj)),
            "string" => LexType::String(self.string(obj)),
            "bytes" => LexType::Bytes(self.bytes(obj)),
            "cid-link" => LexType::CidLink(self.cid_link(obj)),
            "blob" => LexType::Blob(self.blob(obj)),
            "array" => LexType::Array(self.array(obj)?),
            "object" => LexType::Object(self.object(obj)),
            "ref" => LexType::Ref(self.reference(obj)?),
            "union" => LexType::Union(self.union(obj)?),
            "unknown" => LexType::Unknown(self.unknown(obj)),
            "record" | "query" | "procedure" | "subscription" | "permission-set" | "token"
            | "params" | "permission" => {
                let where_ = match place {
                    Place::Field => "a field schema",
                    Place::ArrayItems => "array items",
                };
                self.err(format!("type {ty:?} can not be used as {where_}"));
                return None;
            }
            other => LexType::Unsupported(self.unsupported(obj, other)),
        })
    }

    fn boolean(&mut self, obj: &'j Obj) -> LexBoolean {
        self.check_keys(obj, "boolean", &["default", "const"]);
        let b = LexBoolean {
            description: self.opt_str(obj, "description"),
            default: self.opt_bool(obj, "default"),
            const_value: self.opt_bool(obj, "const"),
        };
        if b.default.is_some() && b.const_value.is_some() {
            self.err("const and default are mutually exclusive");
        }
        b
    }

    fn integer(&mut self, obj: &'j Obj) -> LexInteger {
        self.check_keys(
            obj,
            "integer",
            &["minimum", "maximum", "enum", "default", "const"],
        );
        let i = LexInteger {
            description: self.opt_str(obj, "description"),
            minimum: self.opt_i64(obj, "minimum"),
            maximum: self.opt_i64(obj, "maximum"),
            enum_values: self.opt_i64_list(obj, "enum"),
            default: self.opt_i64(obj, "default"),
            const_value: self.opt_i64(obj, "const"),
        };
        self.min_max(&i.minimum, &i.maximum, "minimum", "maximum");
        if i.default.is_some() && i.const_value.is_some() {
            self.err("const and default are mutually exclusive");
        }
        if let Some(d) = i.default {
            let below = i.minimum.is_some_and(|m| d < m);
            let above = i.maximum.is_some_and(|m| d > m);
            let outside = i.enum_values.as_ref().is_some_and(|e| !e.contains(&d));
            if below || above || outside {
                self.warn_at(
                    "default",
                    format!("default {d} does not satisfy the schema"),
                );
            }
        }
        i
    }

    fn string(&mut self, obj: &'j Obj) -> LexString {
        self.check_keys(
            obj,
            "string",
            &[
                "format",
                "maxLength",
                "minLength",
                "maxGraphemes",
                "minGraphemes",
                "knownValues",
                "enum",
                "default",
                "const",
            ],
        );
        let format = self.opt_str(obj, "format").map(|f| StringFormat::parse(&f));
        if let Some(StringFormat::Other(f)) = &format {
            self.warn_at(
                "format",
                format!("unknown string format {f:?}; values will not be checked against it"),
            );
        }
        let s = LexString {
            description: self.opt_str(obj, "description"),
            format,
            max_length: self.opt_u64(obj, "maxLength"),
            min_length: self.opt_u64(obj, "minLength"),
            max_graphemes: self.opt_u64(obj, "maxGraphemes"),
            min_graphemes: self.opt_u64(obj, "minGraphemes"),
            known_values: self.opt_str_list(obj, "knownValues").unwrap_or_default(),
            enum_values: self.opt_str_list(obj, "enum"),
            default: self.opt_str(obj, "default"),
            const_value: self.opt_str(obj, "const"),
        };
        self.min_max(&s.min_length, &s.max_length, "minLength", "maxLength");
        self.min_max(
            &s.min_graphemes,
            &s.max_graphemes,
            "minGraphemes",
            "maxGraphemes",
        );
        if s.default.is_some() && s.const_value.is_some() {
            self.err("const and default are mutually exclusive");
        }
        if let (Some(d), Some(e)) = (&s.default, &s.enum_values) {
            if !e.contains(d) {
                self.warn_at("default", format!("default {d:?} is not in enum"));
            }
        }
        s
    }

    fn bytes(&mut self, obj: &'j Obj) -> LexBytes {
        self.check_keys(obj, "bytes", &["minLength", "maxLength"]);
        let b = LexBytes {
            description: self.opt_str(obj, "description"),
            min_length: self.opt_u64(obj, "minLength"),
            max_length: self.opt_u64(obj, "maxLength"),
        };
        self.min_max(&b.min_length, &b.max_length, "minLength", "maxLength");
        b
    }

    fn cid_link(&mut self, obj: &'j Obj) -> LexCidLink {
        self.check_keys(obj, "cid-link", &[]);
        LexCidLink {
            description: self.opt_str(obj, "description"),
        }
    }

    fn blob(&mut self, obj: &'j Obj) -> LexBlob {
        self.check_keys(obj, "blob", &["accept", "maxSize"]);
        let accept = self.opt_str_list(obj, "accept");
        if let Some(list) = &accept {
            for pattern in list {
                if !formats::is_valid_accept_pattern(pattern) {
                    self.err_at(
                        "accept",
                        format!(
                            "invalid MIME pattern {pattern:?} (expected type/subtype, type/* or */*)"
                        ),
                    );
                }
            }
        }
        LexBlob {
            description: self.opt_str(obj, "description"),
            accept,
            max_size: self.opt_u64(obj, "maxSize"),
        }
    }

    fn array(&mut self, obj: &'j Obj) -> Option<LexArray> {
        self.check_keys(obj, "array", &["items", "minLength", "maxLength"]);
        let description = self.opt_str(obj, "description");
        let min_length = self.opt_u64(obj, "minLength");
        let max_length = self.opt_u64(obj, "maxLength");
        self.min_max(&min_length, &max_length, "minLength", "maxLength");
        let Some(items) = obj.get("items") else {
            self.err("missing required field \"items\"");
            return None;
        };
        self.enter(Seg::Key("items"));
        let items = self.field(items, Place::ArrayItems);
        self.leave();
        Some(LexArray {
            description,
            items: Box::new(items?),
            min_length,
            max_length,
        })
    }

    fn object(&mut self, obj: &'j Obj) -> LexObject {
        self.check_keys(obj, "object", &["properties", "required", "nullable"]);
        let description = self.opt_str(obj, "description");
        let required = self.opt_str_list(obj, "required").unwrap_or_default();
        let nullable = self.opt_str_list(obj, "nullable").unwrap_or_default();
        let mut properties = BTreeMap::new();
        match obj.get("properties") {
            None => self.err("missing required field \"properties\""),
            Some(Value::Object(props)) => {
                self.enter(Seg::Key("properties"));
                for (name, p) in props {
                    self.enter(Seg::Key(name));
                    if let Some(t) = self.field(p, Place::Field) {
                        properties.insert(name.clone(), t);
                    }
                    self.leave();
                }
                self.leave();
            }
            Some(other) => self.err_at(
                "properties",
                format!("properties must be an object, found {}", json_kind(other)),
            ),
        }
        self.check_required(&required, obj.get("properties"));
        if let Some(Value::Object(props)) = obj.get("properties") {
            for n in &nullable {
                if !props.contains_key(n) {
                    self.warn_at(
                        "nullable",
                        format!("nullable property {n:?} is not defined in properties"),
                    );
                }
            }
        }
        LexObject {
            description,
            required,
            nullable,
            properties,
        }
    }

    fn check_required(&mut self, required: &[String], props: Option<&'j Value>) {
        let Some(Value::Object(props)) = props else {
            if !required.is_empty() && props.is_none() {
                self.err_at(
                    "required",
                    "required properties listed but no properties defined",
                );
            }
            return;
        };
        let mut seen = BTreeSet::new();
        for r in required {
            if !props.contains_key(r) {
                self.err_at(
                    "required",
                    format!("required property {r:?} is not defined in properties"),
                );
            }
            if !seen.insert(r) {
                self.warn_at("required", format!("property {r:?} listed twice"));
            }
        }
    }

    fn unknown(&mut self, obj: &'j Obj) -> LexUnknown {
        self.check_keys(obj, "unknown", &[]);
        LexUnknown {
            description: self.opt_str(obj, "description"),
        }
    }

    fn ref_string(&mut self, s: &str, key: Seg<'j>) -> Option<LexRef> {
        match DefRef::parse(s, self.base.as_ref()) {
            Ok(target) => Some(LexRef {
                description: None,
                reference: s.to_owned(),
                target,
                resolved: None,
            }),
            // A local ref in a document whose id is invalid: the id error
            // already says what is wrong.
            Err(RefSyntaxError::LocalWithoutBase) => None,
            Err(e) => {
                self.push_diag(
                    Severity::Error,
                    Some(key),
                    format!("invalid ref {s:?}: {e}"),
                );
                None
            }
        }
    }

    fn reference(&mut self, obj: &'j Obj) -> Option<LexRef> {
        self.check_keys(obj, "ref", &["ref"]);
        let description = self.opt_str(obj, "description");
        let s = self.req_str(obj, "ref")?;
        let mut r = self.ref_string(&s, Seg::Key("ref"))?;
        r.description = description;
        Some(r)
    }

    fn union(&mut self, obj: &'j Obj) -> Option<LexUnion> {
        self.check_keys(obj, "union", &["refs", "closed"]);
        let description = self.opt_str(obj, "description");
        let closed = self.opt_bool(obj, "closed").unwrap_or(false);
        let Some(v) = obj.get("refs") else {
            self.err("missing required field \"refs\"");
            return None;
        };
        let Value::Array(items) = v else {
            self.err_at(
                "refs",
                format!("refs must be an array of strings, found {}", json_kind(v)),
            );
            return None;
        };
        if closed && items.is_empty() {
            self.err("a closed union must have at least one ref");
        }
        let mut refs: Vec<LexRef> = Vec::with_capacity(items.len());
        self.enter(Seg::Key("refs"));
        for (i, item) in items.iter().enumerate() {
            match item {
                Value::String(s) => {
                    if let Some(r) = self.ref_string(s, Seg::Index(i)) {
                        if refs.iter().any(|x| x.target == r.target) {
                            self.push_diag(
                                Severity::Warning,
                                Some(Seg::Index(i)),
                                format!("duplicate union ref {s:?}"),
                            );
                        }
                        refs.push(r);
                    }
                }
                other => self.push_diag(
                    Severity::Error,
                    Some(Seg::Index(i)),
                    format!("a union ref must be a string, found {}", json_kind(other)),
                ),
            }
        }
        self.leave();
        Some(LexUnion {
            description,
            refs,
            closed,
        })
    }
}

/// Parse the `key` of a record definition.
pub(crate) fn parse_record_key(s: &str) -> Result<RecordKey, String> {
    match s {
        "tid" => Ok(RecordKey::Tid),
        "nsid" => Ok(RecordKey::Nsid),
        "any" => Ok(RecordKey::Any),
        _ => match s.strip_prefix("literal:") {
            Some(lit) => match atproto_syntax::RecordKey::from_str(lit) {
                Ok(_) => Ok(RecordKey::Literal(lit.to_owned())),
                Err(e) => Err(format!(
                    "record key literal {lit:?} is not a valid record key: {e}"
                )),
            },
            None => Err(format!(
                "unknown record key type {s:?} (expected tid, nsid, any or literal:<key>)"
            )),
        },
    }
}

/// A short description of a JSON value's kind for messages.
pub(crate) fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "an integer",
        Value::Number(_) => "a float",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
