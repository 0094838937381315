//! Generic validation of data-model values against catalog definitions.
//!
//! The validator walks the value and the resolved IR together; it never
//! changes the value, never re-reads JSON, and reports every problem with a
//! path such as `embed.images[0].alt`. Nothing allocates on the success path
//! except the string-format checks of `atproto-syntax`.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use atproto_data::Value;

use crate::catalog::Catalog;
use crate::diag::{render_path, Seg};
use crate::formats;
use crate::model::*;

/// How deep the validator descends (values nested in values) before
/// giving up with [`ValidationErrorKind::TooDeep`].
pub const MAX_VALIDATION_DEPTH: usize = 128;

/// What sort of problem a [`ValidationError`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ValidationErrorKind {
    /// The lexicon (collection or definition) is not in the catalog.
    UnknownLexicon,
    /// The definition can not describe this kind of value (e.g. a query).
    NotValidatable,
    /// A value has the wrong data-model type.
    WrongType,
    /// A required field is missing.
    Required,
    /// `null` where the field is not nullable.
    NotNullable,
    /// A `const`, `enum`, range, length, size or MIME constraint failed.
    Constraint,
    /// A string does not match its `format`.
    Format,
    /// A `$type` problem: missing, wrong, or not allowed by a union.
    Type,
    /// A malformed blob.
    Blob,
    /// A reference the catalog could not resolve.
    Unresolved,
    /// Nested deeper than [`MAX_VALIDATION_DEPTH`].
    TooDeep,
}

/// One validation problem: where, and what.
///
/// `Display` gives `path: message`, e.g.
/// `embed.images[0].alt: string is longer than maxGraphemes (1000)`; just
/// the message for problems with the value as a whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationError {
    /// Path in the value (`a.b[2].c`); empty for the value itself.
    pub path: String,
    /// What is wrong.
    pub message: String,
    /// The category of the problem.
    pub kind: ValidationErrorKind,
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Every problem found in one value (never empty). `Display` joins them
/// with `; `.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", join(.0))]
pub struct ValidationErrors(Vec<ValidationError>);

fn join(errors: &[ValidationError]) -> String {
    let parts: Vec<String> = errors.iter().map(ToString::to_string).collect();
    parts.join("; ")
}

impl ValidationErrors {
    /// The problems, in the order found.
    pub fn errors(&self) -> &[ValidationError] {
        &self.0
    }

    /// Iterate over the problems.
    pub fn iter(&self) -> std::slice::Iter<'_, ValidationError> {
        self.0.iter()
    }

    /// Number of problems (at least one).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Always false; present for API symmetry.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The problems, owned.
    pub fn into_vec(self) -> Vec<ValidationError> {
        self.0
    }

    /// Whether validation failed only because the lexicon is not in the
    /// catalog (the PDS then decides by its validation mode).
    pub fn is_unknown_lexicon(&self) -> bool {
        self.0
            .iter()
            .all(|e| e.kind == ValidationErrorKind::UnknownLexicon)
    }

    fn single(kind: ValidationErrorKind, message: String) -> ValidationErrors {
        ValidationErrors(vec![ValidationError {
            path: String::new(),
            message,
            kind,
        }])
    }
}

impl<'a> IntoIterator for &'a ValidationErrors {
    type Item = &'a ValidationError;
    type IntoIter = std::slice::Iter<'a, ValidationError>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// A record key that does not fit the record type's key scheme.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("record key {rkey:?} is not valid for key type {key}: {reason}")]
pub struct RecordKeyError {
    /// The offending key.
    pub rkey: String,
    /// The scheme it was checked against.
    pub key: RecordKey,
    /// Why it does not fit.
    pub reason: String,
}

impl RecordKey {
    /// Check a record key against this scheme. Every scheme also requires
    /// general record-key syntax.
    pub fn check(&self, rkey: &str) -> Result<(), RecordKeyError> {
        let fail = |reason: String| RecordKeyError {
            rkey: rkey.to_owned(),
            key: self.clone(),
            reason,
        };
        atproto_syntax::RecordKey::from_str(rkey).map_err(|e| fail(e.to_string()))?;
        match self {
            RecordKey::Any => Ok(()),
            RecordKey::Tid => atproto_syntax::Tid::from_str(rkey)
                .map(|_| ())
                .map_err(|e| fail(e.to_string())),
            RecordKey::Nsid => atproto_syntax::Nsid::from_str(rkey)
                .map(|_| ())
                .map_err(|e| fail(e.to_string())),
            RecordKey::Literal(lit) if lit == rkey => Ok(()),
            RecordKey::Literal(lit) => Err(fail(format!("the only allowed key is {lit:?}"))),
        }
    }
}

impl Catalog {
    /// Validate a record of type `collection` (an NSID with a `record` main
    /// definition): `$type` must equal the collection, then every field is
    /// checked. All problems are reported.
    pub fn validate_record(
        &self,
        collection: &atproto_syntax::Nsid,
        value: &Value,
    ) -> Result<(), ValidationErrors> {
        let id = self.resolve(collection.as_str()).ok_or_else(|| {
            ValidationErrors::single(
                ValidationErrorKind::UnknownLexicon,
                format!("no lexicon for collection {collection}"),
            )
        })?;
        match self.def(id) {
            Some(LexDef::Record(r)) => {
                let mut v = Validator::new(self);
                v.record(collection.as_str(), r, value);
                v.finish()
            }
            Some(other) => Err(ValidationErrors::single(
                ValidationErrorKind::NotValidatable,
                format!(
                    "{collection} is a {} definition, not a record type",
                    other.type_name()
                ),
            )),
            None => Err(ValidationErrors::single(
                ValidationErrorKind::UnknownLexicon,
                format!("no lexicon for collection {collection}"),
            )),
        }
    }

    /// Check a record key against the key scheme of `collection`.
    pub fn validate_rkey(
        &self,
        collection: &atproto_syntax::Nsid,
        rkey: &str,
    ) -> Result<(), ValidationErrors> {
        match self.record(collection.as_str()) {
            Some(r) => r.key.check(rkey).map_err(|e| {
                ValidationErrors::single(ValidationErrorKind::Constraint, e.to_string())
            }),
            None => Err(ValidationErrors::single(
                ValidationErrorKind::UnknownLexicon,
                format!("no record lexicon for collection {collection}"),
            )),
        }
    }

    /// Validate a value against any definition, named `nsid#name` (or
    /// `nsid` for `main`). Records are validated as records (with `$type`);
    /// objects and other schemas as plain values. XRPC definitions are not
    /// values: use [`Catalog::validate_input`], [`Catalog::validate_output`]
    /// or [`Catalog::validate_message`].
    pub fn validate(&self, def_ref: &str, value: &Value) -> Result<(), ValidationErrors> {
        let id = self.resolve(def_ref).ok_or_else(|| {
            ValidationErrors::single(
                ValidationErrorKind::UnknownLexicon,
                format!("no lexicon definition {def_ref}"),
            )
        })?;
        self.validate_def(id, value)
    }

    /// [`Catalog::validate`] by [`DefId`].
    pub fn validate_def(&self, id: DefId, value: &Value) -> Result<(), ValidationErrors> {
        let mut v = Validator::new(self);
        match self.def(id) {
            None => {
                return Err(ValidationErrors::single(
                    ValidationErrorKind::UnknownLexicon,
                    format!("no definition {id:?} in this catalog"),
                ))
            }
            Some(LexDef::Record(r)) => {
                let nsid = self.doc(id.doc).map(|d| d.id.as_str()).unwrap_or_default();
                v.record(nsid, r, value);
            }
            Some(
                def @ (LexDef::Query(_)
                | LexDef::Procedure(_)
                | LexDef::Subscription(_)
                | LexDef::PermissionSet(_)
                | LexDef::Token(_)),
            ) => {
                return Err(ValidationErrors::single(
                    ValidationErrorKind::NotValidatable,
                    format!("a {} definition does not describe a value", def.type_name()),
                ))
            }
            Some(_) => v.def(id, value, DefUse::Ref),
        }
        v.finish()
    }

    /// Validate the JSON input body of procedure `nsid`.
    pub fn validate_input(&self, nsid: &str, value: &Value) -> Result<(), ValidationErrors> {
        match self.get_def(nsid) {
            Some(LexDef::Procedure(p)) => {
                self.validate_body(nsid, "input", p.input.as_ref(), value)
            }
            other => Err(self.not_endpoint(nsid, other, "procedure")),
        }
    }

    /// Validate the JSON output body of query or procedure `nsid`.
    pub fn validate_output(&self, nsid: &str, value: &Value) -> Result<(), ValidationErrors> {
        match self.get_def(nsid) {
            Some(LexDef::Query(q)) => self.validate_body(nsid, "output", q.output.as_ref(), value),
            Some(LexDef::Procedure(p)) => {
                self.validate_body(nsid, "output", p.output.as_ref(), value)
            }
            other => Err(self.not_endpoint(nsid, other, "query or procedure")),
        }
    }

    /// Validate one message of subscription `nsid`. `message_type` is the
    /// frame's type (`#commit`, or an absolute `nsid#name`); the message
    /// body itself needs no `$type`.
    pub fn validate_message(
        &self,
        nsid: &str,
        message_type: &str,
        value: &Value,
    ) -> Result<(), ValidationErrors> {
        let Some(LexDef::Subscription(s)) = self.get_def(nsid) else {
            return Err(self.not_endpoint(nsid, self.get_def(nsid), "subscription"));
        };
        let Some(message) = &s.message else {
            return Err(ValidationErrors::single(
                ValidationErrorKind::NotValidatable,
                format!("subscription {nsid} declares no message schema"),
            ));
        };
        let full = match message_type.strip_prefix('#') {
            Some(name) => format!("{nsid}#{name}"),
            None => message_type.to_owned(),
        };
        let variant = message
            .schema
            .refs
            .iter()
            .find(|r| r.target.matches_type(&full) || r.target.to_string() == full);
        match variant.and_then(|r| r.resolved) {
            Some(id) => {
                let mut v = Validator::new(self);
                v.def(id, value, DefUse::UnionVariant);
                v.finish()
            }
            None if message.schema.closed => Err(ValidationErrors::single(
                ValidationErrorKind::Type,
                format!("message type {message_type} is not one of the subscription's messages"),
            )),
            None => Ok(()),
        }
    }

    /// Read XRPC query parameters (`name=value` pairs, repeated names for
    /// arrays) into typed values per the `parameters` of `nsid`, applying
    /// defaults and checking every constraint. Undeclared parameters are
    /// ignored.
    pub fn parse_params<'q>(
        &self,
        nsid: &str,
        query: impl IntoIterator<Item = (&'q str, &'q str)>,
    ) -> Result<BTreeMap<String, Value>, ValidationErrors> {
        let params = match self.get_def(nsid) {
            Some(LexDef::Query(q)) => q.parameters.as_ref(),
            Some(LexDef::Procedure(p)) => p.parameters.as_ref(),
            Some(LexDef::Subscription(s)) => s.parameters.as_ref(),
            other => {
                return Err(self.not_endpoint(nsid, other, "query, procedure or subscription"))
            }
        };
        let mut given: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (k, v) in query {
            given.entry(k).or_default().push(v);
        }
        let mut out = BTreeMap::new();
        let mut errors = Vec::new();
        let Some(params) = params else {
            return Ok(out);
        };
        let mut fail = |path: String, kind, message: String| {
            errors.push(ValidationError {
                path,
                message,
                kind,
            })
        };
        for (name, schema) in &params.properties {
            let Some(raw) = given.get(name.as_str()) else {
                if params.is_required(name) {
                    fail(
                        render_path(&[Seg::Key(name)]),
                        ValidationErrorKind::Required,
                        "required parameter is missing".into(),
                    );
                } else if let Some(d) = param_default(schema) {
                    out.insert(name.clone(), d);
                }
                continue;
            };
            match schema {
                LexParam::Array(a) => {
                    let mut items = Vec::with_capacity(raw.len());
                    for (i, r) in raw.iter().enumerate() {
                        match parse_param_value(primitive_kind(&a.items), r) {
                            Ok(v) => items.push(v),
                            Err(m) => fail(
                                render_path(&[Seg::Key(name), Seg::Index(i)]),
                                ValidationErrorKind::WrongType,
                                m,
                            ),
                        }
                    }
                    out.insert(name.clone(), Value::Array(items));
                }
                single => {
                    if raw.len() > 1 {
                        fail(
                            render_path(&[Seg::Key(name)]),
                            ValidationErrorKind::Constraint,
                            "parameter given more than once".into(),
                        );
                        continue;
                    }
                    let Some(first) = raw.first() else { continue };
                    match parse_param_value(param_kind(single), first) {
                        Ok(v) => {
                            out.insert(name.clone(), v);
                        }
                        Err(m) => fail(
                            render_path(&[Seg::Key(name)]),
                            ValidationErrorKind::WrongType,
                            m,
                        ),
                    }
                }
            }
        }
        // Constraints, on the typed values.
        let mut v = Validator::new(self);
        for (name, value) in &out {
            let Some(schema) = params.properties.get(name) else {
                continue;
            };
            v.path.push(Seg::Key(name));
            match schema {
                LexParam::Boolean(b) => v.boolean(b, value),
                LexParam::Integer(i) => v.integer(i, value),
                LexParam::String(s) => v.string(s, value),
                LexParam::Unknown(_) => {}
                LexParam::Array(a) => v.primitive_array(a, value),
            }
            v.path.pop();
        }
        errors.extend(v.errors);
        if errors.is_empty() {
            Ok(out)
        } else {
            Err(ValidationErrors(errors))
        }
    }

    fn validate_body(
        &self,
        nsid: &str,
        which: &str,
        body: Option<&LexXrpcBody>,
        value: &Value,
    ) -> Result<(), ValidationErrors> {
        let Some(body) = body else {
            return Err(ValidationErrors::single(
                ValidationErrorKind::NotValidatable,
                format!("{nsid} declares no {which}"),
            ));
        };
        let mut v = Validator::new(self);
        match &body.schema {
            None => {}
            Some(LexBodySchema::Object(o)) => v.object(o, value),
            Some(LexBodySchema::Ref(r)) => v.reference(r, value),
            Some(LexBodySchema::Union(u)) => v.union(u, value),
        }
        v.finish()
    }

    fn not_endpoint(&self, nsid: &str, def: Option<&LexDef>, expected: &str) -> ValidationErrors {
        match def {
            None => ValidationErrors::single(
                ValidationErrorKind::UnknownLexicon,
                format!("no lexicon for {nsid}"),
            ),
            Some(d) => ValidationErrors::single(
                ValidationErrorKind::NotValidatable,
                format!("{nsid} is a {} definition, not a {expected}", d.type_name()),
            ),
        }
    }
}

#[derive(Clone, Copy)]
enum ParamKind {
    Boolean,
    Integer,
    String,
}

fn primitive_kind(p: &LexPrimitive) -> ParamKind {
    match p {
        LexPrimitive::Boolean(_) => ParamKind::Boolean,
        LexPrimitive::Integer(_) => ParamKind::Integer,
        LexPrimitive::String(_) | LexPrimitive::Unknown(_) => ParamKind::String,
    }
}

fn param_kind(p: &LexParam) -> ParamKind {
    match p {
        LexParam::Boolean(_) => ParamKind::Boolean,
        LexParam::Integer(_) => ParamKind::Integer,
        LexParam::String(_) | LexParam::Unknown(_) | LexParam::Array(_) => ParamKind::String,
    }
}

fn parse_param_value(kind: ParamKind, raw: &str) -> Result<Value, String> {
    match kind {
        ParamKind::Boolean => match raw {
            "true" => Ok(Value::Bool(true)),
            "false" => Ok(Value::Bool(false)),
            _ => Err(format!("expected true or false, found {raw:?}")),
        },
        ParamKind::Integer => raw
            .parse::<i64>()
            .map(Value::Integer)
            .map_err(|_| format!("expected an integer, found {raw:?}")),
        ParamKind::String => Ok(Value::String(raw.to_owned())),
    }
}

fn param_default(p: &LexParam) -> Option<Value> {
    match p {
        LexParam::Boolean(b) => b.default.map(Value::Bool),
        LexParam::Integer(i) => i.default.map(Value::Integer),
        LexParam::String(s) => s.default.clone().map(Value::String),
        LexParam::Unknown(_) | LexParam::Array(_) => None,
    }
}

/// How a definition is reached, which decides the `$type` rules.
#[derive(Clone, Copy, PartialEq, Eq)]
enum DefUse {
    /// Through a `ref`: records must carry their `$type`.
    Ref,
    /// As a union variant whose `$type` already matched.
    UnionVariant,
}

struct Validator<'a> {
    cat: &'a Catalog,
    path: Vec<Seg<'a>>,
    errors: Vec<ValidationError>,
    depth: usize,
}

fn kind_of(v: &Value) -> &'static str {
    v.kind_name()
}

/// A short rendering of a list of allowed values for messages.
fn show_list<T: fmt::Debug>(items: &[T]) -> String {
    const MAX: usize = 10;
    let mut parts: Vec<String> = items.iter().take(MAX).map(|i| format!("{i:?}")).collect();
    if items.len() > MAX {
        parts.push(format!("... {} more", items.len() - MAX));
    }
    format!("[{}]", parts.join(", "))
}

impl<'a> Validator<'a> {
    fn new(cat: &'a Catalog) -> Validator<'a> {
        Validator {
            cat,
            path: Vec::new(),
            errors: Vec::new(),
            depth: 0,
        }
    }

    fn finish(self) -> Result<(), ValidationErrors> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(ValidationErrors(self.errors))
        }
    }

    fn fail(&mut self, kind: ValidationErrorKind, message: impl Into<String>) {
        self.errors.push(ValidationError {
            path: render_path(&self.path),
            message: message.into(),
            kind,
        });
    }

    fn fail_at(&mut self, seg: Seg<'a>, kind: ValidationErrorKind, message: impl Into<String>) {
        self.path.push(seg);
        self.fail(kind, message);
        self.path.pop();
    }

    fn wrong_type(&mut self, expected: &str, v: &Value) {
        self.fail(
            ValidationErrorKind::WrongType,
            format!("expected {expected}, found {}", kind_of(v)),
        );
    }

    /// Enter one nesting level; false (with an error) when too deep.
    fn descend(&mut self) -> bool {
        if self.depth >= MAX_VALIDATION_DEPTH {
            self.fail(
                ValidationErrorKind::TooDeep,
                format!("value nested deeper than {MAX_VALIDATION_DEPTH} levels"),
            );
            return false;
        }
        self.depth += 1;
        true
    }

    fn ascend(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }

    /// A record value of type `nsid`.
    fn record(&mut self, nsid: &str, r: &'a LexRecord, value: &'a Value) {
        let Value::Map(map) = value else {
            self.wrong_type("a record object", value);
            return;
        };
        match map.get("$type") {
            None => self.fail_at(
                Seg::Key("$type"),
                ValidationErrorKind::Type,
                format!("record is missing $type (must be {nsid:?})"),
            ),
            Some(Value::String(t)) if t == nsid => {}
            Some(Value::String(t)) => self.fail_at(
                Seg::Key("$type"),
                ValidationErrorKind::Type,
                format!("record $type must be {nsid:?}, found {t:?}"),
            ),
            Some(other) => {
                self.path.push(Seg::Key("$type"));
                self.wrong_type("a string", other);
                self.path.pop();
            }
        }
        self.object(&r.record, value);
    }

    fn def(&mut self, id: DefId, value: &'a Value, how: DefUse) {
        let cat = self.cat;
        let Some(def) = cat.def(id) else {
            self.fail(
                ValidationErrorKind::Unresolved,
                format!("reference to a definition missing from the catalog ({id:?})"),
            );
            return;
        };
        if !self.descend() {
            return;
        }
        match def {
            LexDef::Object(o) => self.object(o, value),
            LexDef::Record(r) => match how {
                DefUse::UnionVariant => self.object(&r.record, value),
                DefUse::Ref => {
                    let nsid = cat.doc(id.doc).map(|d| d.id.as_str()).unwrap_or_default();
                    self.record(nsid, r, value)
                }
            },
            LexDef::Boolean(b) => self.boolean(b, value),
            LexDef::Integer(i) => self.integer(i, value),
            LexDef::String(s) => self.string(s, value),
            LexDef::Bytes(b) => self.bytes(b, value),
            LexDef::CidLink(_) => self.cid_link(value),
            LexDef::Blob(b) => self.blob(b, value),
            LexDef::Array(a) => self.array(a, value),
            LexDef::Unsupported(_) => {}
            LexDef::Token(_)
            | LexDef::Query(_)
            | LexDef::Procedure(_)
            | LexDef::Subscription(_)
            | LexDef::PermissionSet(_) => self.fail(
                ValidationErrorKind::NotValidatable,
                format!("a {} definition does not describe a value", def.type_name()),
            ),
        }
        self.ascend();
    }

    fn ty(&mut self, t: &'a LexType, value: &'a Value) {
        match t {
            LexType::Boolean(b) => self.boolean(b, value),
            LexType::Integer(i) => self.integer(i, value),
            LexType::String(s) => self.string(s, value),
            LexType::Bytes(b) => self.bytes(b, value),
            LexType::CidLink(_) => self.cid_link(value),
            LexType::Blob(b) => self.blob(b, value),
            LexType::Array(a) => self.array(a, value),
            LexType::Object(o) => {
                if self.descend() {
                    self.object(o, value);
                    self.ascend();
                }
            }
            LexType::Ref(r) => self.reference(r, value),
            LexType::Union(u) => self.union(u, value),
            LexType::Unknown(_) => self.unknown(value),
            LexType::Unsupported(_) => {}
        }
    }

    fn object(&mut self, o: &'a LexObject, value: &'a Value) {
        let Value::Map(map) = value else {
            self.wrong_type("an object", value);
            return;
        };
        for (name, schema) in &o.properties {
            match map.get(name.as_str()) {
                None => {
                    if o.is_required(name) {
                        self.fail_at(
                            Seg::Key(name),
                            ValidationErrorKind::Required,
                            "required field is missing",
                        );
                    }
                }
                Some(Value::Null) => {
                    if !o.is_nullable(name) {
                        self.fail_at(
                            Seg::Key(name),
                            ValidationErrorKind::NotNullable,
                            "null is not allowed (the field is not nullable)",
                        );
                    }
                }
                Some(v) => {
                    self.path.push(Seg::Key(name));
                    self.ty(schema, v);
                    self.path.pop();
                }
            }
        }
    }

    fn boolean(&mut self, b: &LexBoolean, value: &Value) {
        let Value::Bool(x) = value else {
            self.wrong_type("a boolean", value);
            return;
        };
        if let Some(c) = b.const_value {
            if c != *x {
                self.fail(
                    ValidationErrorKind::Constraint,
                    format!("value must be {c} (const), found {x}"),
                );
            }
        }
    }

    fn integer(&mut self, i: &LexInteger, value: &Value) {
        let Value::Integer(x) = value else {
            self.wrong_type("an integer", value);
            return;
        };
        let x = *x;
        if let Some(c) = i.const_value {
            if c != x {
                self.fail(
                    ValidationErrorKind::Constraint,
                    format!("value must be {c} (const), found {x}"),
                );
            }
        }
        if let Some(e) = &i.enum_values {
            if !e.contains(&x) {
                self.fail(
                    ValidationErrorKind::Constraint,
                    format!("{x} is not one of the allowed values {}", show_list(e)),
                );
            }
        }
        if let Some(min) = i.minimum {
            if x < min {
                self.fail(
                    ValidationErrorKind::Constraint,
                    format!("{x} is less than minimum ({min})"),
                );
            }
        }
        if let Some(max) = i.maximum {
            if x > max {
                self.fail(
                    ValidationErrorKind::Constraint,
                    format!("{x} is greater than maximum ({max})"),
                );
            }
        }
    }

    fn string(&mut self, s: &LexString, value: &Value) {
        let Value::String(x) = value else {
            self.wrong_type("a string", value);
            return;
        };
        if let Some(c) = &s.const_value {
            if c != x {
                self.fail(
                    ValidationErrorKind::Constraint,
                    format!("value must be {c:?} (const), found {x:?}"),
                );
            }
        }
        if let Some(e) = &s.enum_values {
            if !e.iter().any(|v| v == x) {
                self.fail(
                    ValidationErrorKind::Constraint,
                    format!("{x:?} is not one of the allowed values {}", show_list(e)),
                );
            }
        }
        let bytes = x.len() as u64;
        if let Some(max) = s.max_length {
            if bytes > max {
                self.fail(
                    ValidationErrorKind::Constraint,
                    format!("string is longer than maxLength ({max} bytes): {bytes} bytes"),
                );
            }
        }
        if let Some(min) = s.min_length {
            if bytes < min {
                self.fail(
                    ValidationErrorKind::Constraint,
                    format!("string is shorter than minLength ({min} bytes): {bytes} bytes"),
                );
            }
        }
        // A string has at most as many graphemes as bytes, so counting is
        // only needed when the byte length alone does not decide.
        if let Some(max) = s.max_graphemes {
            if bytes > max {
                let limit = usize::try_from(max).unwrap_or(usize::MAX).saturating_add(1);
                if formats::grapheme_count_upto(x, limit) as u64 > max {
                    self.fail(
                        ValidationErrorKind::Constraint,
                        format!("string is longer than maxGraphemes ({max})"),
                    );
                }
            }
        }
        if let Some(min) = s.min_graphemes {
            let limit = usize::try_from(min).unwrap_or(usize::MAX);
            if bytes < min || (formats::grapheme_count_upto(x, limit) as u64) < min {
                self.fail(
                    ValidationErrorKind::Constraint,
                    format!("string is shorter than minGraphemes ({min})"),
                );
            }
        }
        if let Some(f) = &s.format {
            if let Err(e) = formats::check_format(f, x) {
                self.fail(
                    ValidationErrorKind::Format,
                    format!("string is not a valid {f}: {}", e.reason()),
                );
            }
        }
    }

    fn bytes(&mut self, b: &LexBytes, value: &Value) {
        let Value::Bytes(x) = value else {
            self.wrong_type("bytes", value);
            return;
        };
        let len = x.len() as u64;
        if let Some(max) = b.max_length {
            if len > max {
                self.fail(
                    ValidationErrorKind::Constraint,
                    format!("bytes are longer than maxLength ({max}): {len} bytes"),
                );
            }
        }
        if let Some(min) = b.min_length {
            if len < min {
                self.fail(
                    ValidationErrorKind::Constraint,
                    format!("bytes are shorter than minLength ({min}): {len} bytes"),
                );
            }
        }
    }

    fn cid_link(&mut self, value: &Value) {
        if !matches!(value, Value::Link(_)) {
            self.wrong_type("a cid-link", value);
        }
    }

    fn blob(&mut self, b: &LexBlob, value: &'a Value) {
        let Value::Map(map) = value else {
            self.wrong_type("a blob", value);
            return;
        };
        let Some((mime, size)) = self.blob_shape(map) else {
            return;
        };
        if !b.accepts(mime) {
            let accept = b.accept.as_deref().unwrap_or_default();
            self.fail(
                ValidationErrorKind::Constraint,
                format!(
                    "blob mimeType {mime:?} is not accepted (accept: {})",
                    accept.join(", ")
                ),
            );
        }
        if let (Some(max), Some(size)) = (b.max_size, size) {
            if size > max {
                self.fail(
                    ValidationErrorKind::Constraint,
                    format!("blob is larger than maxSize ({max} bytes): {size} bytes"),
                );
            }
        }
    }

    /// Check the blob structure: `{$type: "blob", ref: link, mimeType, size}`
    /// or the legacy `{cid: "<cid string>", mimeType}`. Returns the MIME type
    /// and the size (unknown for legacy blobs), or `None` after reporting.
    fn blob_shape(&mut self, map: &'a BTreeMap<String, Value>) -> Option<(&'a str, Option<u64>)> {
        let mut ok = true;
        let legacy = match map.get("$type") {
            Some(Value::String(t)) if t == "blob" => false,
            Some(other) => {
                self.fail_at(
                    Seg::Key("$type"),
                    ValidationErrorKind::Blob,
                    format!("a blob must have $type \"blob\", found {other:?}"),
                );
                return None;
            }
            None if map.contains_key("cid") => true,
            None => {
                self.fail(
                    ValidationErrorKind::Blob,
                    "a blob must have $type \"blob\" (or be a legacy {cid, mimeType} blob)",
                );
                return None;
            }
        };
        let mime = match map.get("mimeType") {
            Some(Value::String(m)) if !m.is_empty() => Some(m.as_str()),
            Some(Value::String(_)) => {
                self.fail_at(
                    Seg::Key("mimeType"),
                    ValidationErrorKind::Blob,
                    "blob mimeType must not be empty",
                );
                None
            }
            Some(other) => {
                self.path.push(Seg::Key("mimeType"));
                self.wrong_type("a string", other);
                self.path.pop();
                None
            }
            None => {
                self.fail_at(
                    Seg::Key("mimeType"),
                    ValidationErrorKind::Blob,
                    "blob mimeType is missing",
                );
                None
            }
        };
        let mut size = None;
        if legacy {
            match map.get("cid") {
                Some(Value::String(c)) => {
                    if let Err(e) = atproto_syntax::CidString::from_str(c) {
                        ok = false;
                        self.fail_at(
                            Seg::Key("cid"),
                            ValidationErrorKind::Blob,
                            format!("legacy blob cid is not a valid CID: {}", e.reason()),
                        );
                    }
                }
                Some(other) => {
                    ok = false;
                    self.path.push(Seg::Key("cid"));
                    self.wrong_type("a CID string", other);
                    self.path.pop();
                }
                None => ok = false,
            }
        } else {
            match map.get("ref") {
                Some(Value::Link(_)) => {}
                Some(other) => {
                    ok = false;
                    self.path.push(Seg::Key("ref"));
                    self.wrong_type("a cid-link", other);
                    self.path.pop();
                }
                None => {
                    ok = false;
                    self.fail_at(
                        Seg::Key("ref"),
                        ValidationErrorKind::Blob,
                        "blob ref is missing",
                    );
                }
            }
            match map.get("size") {
                Some(Value::Integer(n)) => match u64::try_from(*n) {
                    Ok(n) => size = Some(n),
                    Err(_) => {
                        ok = false;
                        self.fail_at(
                            Seg::Key("size"),
                            ValidationErrorKind::Blob,
                            format!("blob size must not be negative, found {n}"),
                        );
                    }
                },
                Some(other) => {
                    ok = false;
                    self.path.push(Seg::Key("size"));
                    self.wrong_type("an integer", other);
                    self.path.pop();
                }
                None => {
                    ok = false;
                    self.fail_at(
                        Seg::Key("size"),
                        ValidationErrorKind::Blob,
                        "blob size is missing",
                    );
                }
            }
        }
        match (ok, mime) {
            (true, Some(m)) => Some((m, size)),
            _ => None,
        }
    }

    fn array(&mut self, a: &'a LexArray, value: &'a Value) {
        let Value::Array(items) = value else {
            self.wrong_type("an array", value);
            return;
        };
        self.array_len(a.min_length, a.max_length, items.len());
        if !self.descend() {
            return;
        }
        for (i, item) in items.iter().enumerate() {
            self.path.push(Seg::Index(i));
            self.ty(&a.items, item);
            self.path.pop();
        }
        self.ascend();
    }

    fn primitive_array(&mut self, a: &LexPrimitiveArray, value: &Value) {
        let Value::Array(items) = value else {
            self.wrong_type("an array", value);
            return;
        };
        self.array_len(a.min_length, a.max_length, items.len());
        for (i, item) in items.iter().enumerate() {
            self.path.push(Seg::Index(i));
            match &a.items {
                LexPrimitive::Boolean(b) => self.boolean(b, item),
                LexPrimitive::Integer(n) => self.integer(n, item),
                LexPrimitive::String(s) => self.string(s, item),
                LexPrimitive::Unknown(_) => {}
            }
            self.path.pop();
        }
    }

    fn array_len(&mut self, min: Option<u64>, max: Option<u64>, len: usize) {
        let len = len as u64;
        if let Some(max) = max {
            if len > max {
                self.fail(
                    ValidationErrorKind::Constraint,
                    format!("array has {len} elements, more than maxLength ({max})"),
                );
            }
        }
        if let Some(min) = min {
            if len < min {
                self.fail(
                    ValidationErrorKind::Constraint,
                    format!("array has {len} elements, fewer than minLength ({min})"),
                );
            }
        }
    }

    fn reference(&mut self, r: &'a LexRef, value: &'a Value) {
        match r.resolved {
            Some(id) => self.def(id, value, DefUse::Ref),
            None => self.fail(
                ValidationErrorKind::Unresolved,
                format!("ref {} is not resolved in this catalog", r.target),
            ),
        }
    }

    fn union(&mut self, u: &'a LexUnion, value: &'a Value) {
        let Value::Map(map) = value else {
            self.wrong_type("an object with $type (union)", value);
            return;
        };
        let t = match map.get("$type") {
            Some(Value::String(t)) => t.as_str(),
            Some(other) => {
                self.path.push(Seg::Key("$type"));
                self.wrong_type("a string", other);
                self.path.pop();
                return;
            }
            None => {
                self.fail_at(
                    Seg::Key("$type"),
                    ValidationErrorKind::Type,
                    "union value is missing $type",
                );
                return;
            }
        };
        if t.ends_with("#main") {
            self.fail_at(
                Seg::Key("$type"),
                ValidationErrorKind::Type,
                format!("$type {t:?} must not end in #main (use the bare NSID)"),
            );
            return;
        }
        match u.variant(t) {
            Some(r) => match r.resolved {
                Some(id) => self.def(id, value, DefUse::UnionVariant),
                None => self.fail(
                    ValidationErrorKind::Unresolved,
                    format!("union variant {} is not resolved in this catalog", r.target),
                ),
            },
            None if u.closed => {
                let allowed: Vec<String> = u.refs.iter().map(|r| r.target.to_string()).collect();
                self.fail_at(
                    Seg::Key("$type"),
                    ValidationErrorKind::Type,
                    format!(
                        "$type {t:?} is not one of the closed union's types {}",
                        show_list(&allowed)
                    ),
                );
            }
            None => {
                if t.starts_with(LEX_URI_PREFIX) || DefRef::parse(t, None).is_err() {
                    self.fail_at(
                        Seg::Key("$type"),
                        ValidationErrorKind::Type,
                        format!("$type {t:?} is not a valid type name (nsid or nsid#name)"),
                    );
                }
            }
        }
    }

    fn unknown(&mut self, value: &Value) {
        let Value::Map(map) = value else {
            self.wrong_type("an object (unknown)", value);
            return;
        };
        if map.get("$type").and_then(Value::as_str) == Some("blob") {
            self.fail(
                ValidationErrorKind::WrongType,
                "expected an object (unknown), found a blob",
            );
        }
    }
}
