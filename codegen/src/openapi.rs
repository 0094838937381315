//! An OpenAPI 3.1 description of every XRPC method in a catalog, made
//! from the lexicon IR directly.
//!
//! * Every query is a `GET /xrpc/<nsid>` and every procedure a
//!   `POST /xrpc/<nsid>` (operation id: the NSID, tag: its namespace),
//!   with its query parameters (arrays as repeated keys: `style: form`,
//!   `explode: true`), its request body by encoding, its output by
//!   encoding, and the XRPC error responses (`{"error", "message"}`; the
//!   lexicon's named errors are listed in the 400 response's description
//!   and in `x-atproto-errors`).
//! * Subscriptions are `GET` paths answering `101 Switching Protocols`,
//!   with `x-atproto-subscription` naming their message types (OpenAPI has
//!   no WebSocket model).
//! * Every named schema (objects, records, tokens, strings, arrays, ...)
//!   is in `components.schemas` under `<nsid>` (for `main`) or
//!   `<nsid>.<name>`; references are `$ref`s; unions are `oneOf` with a
//!   `$type` discriminator (open unions are marked `x-atproto-open-union`,
//!   since they also accept types not listed); objects declare their
//!   optional `$type` as a `const`.
//! * Lexicon string lengths are in UTF-8 bytes, JSON Schema's in
//!   characters: `maxLength` is kept (a sound bound), `minLength` is
//!   divided by 4 (a sound bound), and the exact byte and grapheme limits
//!   are kept as `x-atproto-*` keywords. Formats map to `date-time` and
//!   `uri` where JSON Schema has them, and keep their lexicon name
//!   otherwise (`did`, `handle`, `at-uri`, `cid`, ...).

use std::collections::{BTreeMap, HashMap};

use atproto_lexicon::{
    Catalog, DefRef, LexArray, LexBodySchema, LexDef, LexInteger, LexObject, LexParam, LexParams,
    LexPrimitive, LexRef, LexString, LexType, LexUnion, LexXrpcBody, LexXrpcError, StringFormat,
};
use serde_json::{json, Map, Value};

/// Name of the shared XRPC error schema (and prefix of the shared
/// responses).
pub const ERROR_SCHEMA: &str = "XrpcError";
/// Name of the shared blob schema.
pub const BLOB_SCHEMA: &str = "Blob";

/// The OpenAPI 3.1 document for `catalog` (see the module docs).
pub fn openapi(catalog: &Catalog) -> Value {
    let keys = ComponentKeys::new(catalog);
    let gen = Gen {
        catalog,
        keys: &keys,
    };
    let mut paths = Map::new();
    let mut schemas = Map::new();
    schemas.insert(ERROR_SCHEMA.into(), error_schema());
    schemas.insert(BLOB_SCHEMA.into(), blob_schema());
    for (_, doc, named) in catalog.defs() {
        let def_ref = DefRef::new(doc.id.clone(), named.name.clone());
        let nsid = doc.id.as_str();
        match &named.def {
            LexDef::Query(q) => {
                let mut op = gen.operation(nsid, q.description.as_deref(), &q.errors);
                gen.add_params(&mut op, q.parameters.as_ref());
                op.insert(
                    "responses".into(),
                    gen.responses(q.output.as_ref(), &q.errors),
                );
                paths.insert(path(nsid), json!({ "get": Value::Object(op) }));
            }
            LexDef::Procedure(p) => {
                let mut op = gen.operation(nsid, p.description.as_deref(), &p.errors);
                gen.add_params(&mut op, p.parameters.as_ref());
                if let Some(input) = &p.input {
                    op.insert("requestBody".into(), gen.request_body(input));
                }
                op.insert(
                    "responses".into(),
                    gen.responses(p.output.as_ref(), &p.errors),
                );
                paths.insert(path(nsid), json!({ "post": Value::Object(op) }));
            }
            LexDef::Subscription(s) => {
                let mut op = gen.operation(nsid, s.description.as_deref(), &s.errors);
                gen.add_params(&mut op, s.parameters.as_ref());
                let messages: Vec<Value> = s
                    .message
                    .iter()
                    .flat_map(|m| m.schema.refs.iter())
                    .map(|r| Value::String(r.target.type_name().into_owned()))
                    .collect();
                op.insert(
                    "x-atproto-subscription".into(),
                    json!({ "messages": messages }),
                );
                if let Some(m) = &s.message {
                    op.insert(
                        "x-atproto-message-schema".into(),
                        gen.union(&m.schema, false),
                    );
                }
                let mut responses = Map::new();
                responses.insert(
                    "101".into(),
                    json!({
                        "description": "WebSocket upgrade. Each binary message is a frame: a DAG-CBOR header ({op: 1, t: \"#name\"} or {op: -1}) followed by a DAG-CBOR body."
                    }),
                );
                add_error_responses(&mut responses, &s.errors);
                op.insert("responses".into(), Value::Object(responses));
                paths.insert(path(nsid), json!({ "get": Value::Object(op) }));
            }
            LexDef::PermissionSet(_) | LexDef::Unsupported(_) => {}
            other => {
                schemas.insert(keys.key(&def_ref), gen.named_def(&def_ref, other));
            }
        }
    }
    let mut responses = Map::new();
    for (name, description) in SHARED_RESPONSES {
        responses.insert(
            (*name).into(),
            json!({
                "description": description,
                "content": { "application/json": { "schema": schema_ref(ERROR_SCHEMA) } }
            }),
        );
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "atproto XRPC",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "XRPC methods generated from atproto lexicons. Every error answers {\"error\": name, \"message\": text}."
        },
        "paths": Value::Object(paths),
        "components": {
            "schemas": Value::Object(schemas),
            "responses": Value::Object(responses),
        }
    })
}

/// The shared error responses, by component name.
const SHARED_RESPONSES: &[(&str, &str)] = &[
    (
        "InvalidRequest",
        "Invalid parameters, body or encoding (InvalidRequest), an expired or invalid token (ExpiredToken, InvalidToken), or one of the method's named errors",
    ),
    ("AuthenticationRequired", "Authentication required"),
    ("Forbidden", "Forbidden"),
    ("PayloadTooLarge", "Request body too large"),
    ("RateLimitExceeded", "Rate limit exceeded"),
    ("InternalServerError", "Internal server error"),
    ("MethodNotImplemented", "Method not implemented"),
];

fn path(nsid: &str) -> String {
    format!("/xrpc/{nsid}")
}

fn schema_ref(key: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{key}") })
}

fn response_ref(key: &str) -> Value {
    json!({ "$ref": format!("#/components/responses/{key}") })
}

fn error_schema() -> Value {
    json!({
        "type": "object",
        "description": "An XRPC error.",
        "required": ["error"],
        "properties": {
            "error": { "type": "string", "description": "The error name, e.g. InvalidRequest or a method's named error." },
            "message": { "type": "string", "description": "A human-readable description." }
        }
    })
}

fn blob_schema() -> Value {
    json!({
        "type": "object",
        "description": "A reference to an uploaded blob.",
        "required": ["$type", "ref", "mimeType", "size"],
        "properties": {
            "$type": { "const": "blob" },
            "ref": link_schema(),
            "mimeType": { "type": "string" },
            "size": { "type": "integer", "minimum": 0 }
        }
    })
}

fn link_schema() -> Value {
    json!({
        "type": "object",
        "description": "A CID link.",
        "required": ["$link"],
        "properties": { "$link": { "type": "string", "format": "cid" } }
    })
}

fn bytes_schema() -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("type".into(), "object".into());
    m.insert("required".into(), json!(["$bytes"]));
    m.insert(
        "properties".into(),
        json!({ "$bytes": { "type": "string", "contentEncoding": "base64" } }),
    );
    m
}

fn add_error_responses(responses: &mut Map<String, Value>, errors: &[LexXrpcError]) {
    let mut bad_request = Map::new();
    let mut description =
        String::from("Invalid request (InvalidRequest, ExpiredToken, InvalidToken)");
    if !errors.is_empty() {
        let names: Vec<&str> = errors.iter().map(|e| e.name.as_str()).collect();
        description.push_str(", or one of the named errors: ");
        description.push_str(&names.join(", "));
    }
    bad_request.insert("description".into(), description.into());
    bad_request.insert(
        "content".into(),
        json!({ "application/json": { "schema": schema_ref(ERROR_SCHEMA) } }),
    );
    if !errors.is_empty() {
        let list: Vec<Value> = errors
            .iter()
            .map(|e| {
                let mut m = Map::new();
                m.insert("name".into(), e.name.clone().into());
                if let Some(d) = &e.description {
                    m.insert("description".into(), d.clone().into());
                }
                Value::Object(m)
            })
            .collect();
        bad_request.insert("x-atproto-errors".into(), Value::Array(list));
    }
    responses.insert("400".into(), Value::Object(bad_request));
    for (status, name) in [
        ("401", "AuthenticationRequired"),
        ("403", "Forbidden"),
        ("429", "RateLimitExceeded"),
        ("500", "InternalServerError"),
        ("501", "MethodNotImplemented"),
    ] {
        responses.insert(status.into(), response_ref(name));
    }
}

/// Component names: `<nsid>` for `main`, `<nsid>.<name>` otherwise. An
/// NSID can not contain `_`, so on the (unlikely) clash of `a.b.c` +
/// `#d` with a document `a.b.c.d`, the def gets `<nsid>_<name>`.
struct ComponentKeys {
    keys: HashMap<DefRef, String>,
}

impl ComponentKeys {
    fn new(catalog: &Catalog) -> ComponentKeys {
        let mut keys = HashMap::new();
        for (_, doc, named) in catalog.defs() {
            let r = DefRef::new(doc.id.clone(), named.name.clone());
            let key = if r.is_main() {
                doc.id.as_str().to_owned()
            } else {
                let dotted = format!("{}.{}", doc.id.as_str(), named.name);
                if catalog.doc_by_nsid(&dotted).is_some() {
                    format!("{}_{}", doc.id.as_str(), named.name)
                } else {
                    dotted
                }
            };
            keys.insert(r, sanitize_key(&key));
        }
        ComponentKeys { keys }
    }

    fn key(&self, r: &DefRef) -> String {
        match self.keys.get(r) {
            Some(k) => k.clone(),
            None => sanitize_key(&r.to_string()),
        }
    }
}

/// Component keys must match `^[a-zA-Z0-9.\-_]+$`.
fn sanitize_key(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

struct Gen<'a> {
    catalog: &'a Catalog,
    keys: &'a ComponentKeys,
}

impl Gen<'_> {
    fn operation(
        &self,
        nsid: &str,
        description: Option<&str>,
        errors: &[LexXrpcError],
    ) -> Map<String, Value> {
        let mut op = Map::new();
        op.insert("operationId".into(), nsid.into());
        let namespace = nsid.rsplit_once('.').map_or(nsid, |(ns, _)| ns);
        op.insert("tags".into(), json!([namespace]));
        if let Some(d) = description {
            let summary = d.split(". ").next().unwrap_or(d).trim_end_matches('.');
            op.insert("summary".into(), summary.into());
            op.insert("description".into(), d.into());
        }
        if !errors.is_empty() {
            let names: Vec<&str> = errors.iter().map(|e| e.name.as_str()).collect();
            op.insert("x-atproto-errors".into(), json!(names));
        }
        op
    }

    fn add_params(&self, op: &mut Map<String, Value>, params: Option<&LexParams>) {
        let Some(params) = params else { return };
        let list: Vec<Value> = params
            .properties
            .iter()
            .map(|(name, param)| {
                let mut p = Map::new();
                p.insert("name".into(), name.clone().into());
                p.insert("in".into(), "query".into());
                p.insert("required".into(), params.is_required(name).into());
                let (schema, description, is_array) = match param {
                    LexParam::Boolean(b) => (
                        self.boolean(b.default, b.const_value),
                        b.description.as_deref(),
                        false,
                    ),
                    LexParam::Integer(i) => (self.integer(i), i.description.as_deref(), false),
                    LexParam::String(s) => (self.string(s), s.description.as_deref(), false),
                    LexParam::Unknown(u) => (json!({}), u.description.as_deref(), false),
                    LexParam::Array(a) => {
                        let items = match &a.items {
                            LexPrimitive::Boolean(b) => self.boolean(b.default, b.const_value),
                            LexPrimitive::Integer(i) => self.integer(i),
                            LexPrimitive::String(s) => self.string(s),
                            LexPrimitive::Unknown(_) => json!({}),
                        };
                        let mut m = Map::new();
                        m.insert("type".into(), "array".into());
                        m.insert("items".into(), items);
                        if let Some(n) = a.min_length {
                            m.insert("minItems".into(), n.into());
                        }
                        if let Some(n) = a.max_length {
                            m.insert("maxItems".into(), n.into());
                        }
                        (Value::Object(m), a.description.as_deref(), true)
                    }
                };
                if let Some(d) = description {
                    p.insert("description".into(), d.into());
                }
                if is_array {
                    p.insert("style".into(), "form".into());
                    p.insert("explode".into(), true.into());
                }
                p.insert("schema".into(), schema);
                Value::Object(p)
            })
            .collect();
        if !list.is_empty() {
            op.insert("parameters".into(), Value::Array(list));
        }
    }

    fn body_content(&self, body: &LexXrpcBody) -> Value {
        let schema = match &body.schema {
            Some(LexBodySchema::Object(o)) => self.object(o, None),
            Some(LexBodySchema::Ref(r)) => self.reference(r),
            Some(LexBodySchema::Union(u)) => self.union(u, false),
            None if is_json(&body.encoding) => json!({}),
            None => json!({ "type": "string", "format": "binary" }),
        };
        let mut content = Map::new();
        for encoding in body.encoding.split(',').map(str::trim) {
            content.insert(encoding.to_owned(), json!({ "schema": schema.clone() }));
        }
        Value::Object(content)
    }

    fn request_body(&self, input: &LexXrpcBody) -> Value {
        let mut m = Map::new();
        m.insert("required".into(), true.into());
        if let Some(d) = &input.description {
            m.insert("description".into(), d.clone().into());
        }
        m.insert("content".into(), self.body_content(input));
        Value::Object(m)
    }

    fn responses(&self, output: Option<&LexXrpcBody>, errors: &[LexXrpcError]) -> Value {
        let mut responses = Map::new();
        let ok = match output {
            Some(body) => json!({
                "description": body.description.clone().unwrap_or_else(|| "OK".into()),
                "content": self.body_content(body),
            }),
            None => json!({ "description": "OK (no body)" }),
        };
        responses.insert("200".into(), ok);
        add_error_responses(&mut responses, errors);
        Value::Object(responses)
    }

    fn named_def(&self, r: &DefRef, def: &LexDef) -> Value {
        let mut schema = match def {
            LexDef::Record(rec) => {
                let mut s = self.object(&rec.record, Some(r));
                if let Value::Object(m) = &mut s {
                    let mut required: Vec<Value> = vec!["$type".into()];
                    if let Some(Value::Array(existing)) = m.remove("required") {
                        required.extend(existing);
                    }
                    m.insert("required".into(), Value::Array(required));
                    m.insert(
                        "x-atproto-record-key".into(),
                        rec.key.as_lexicon_str().into_owned().into(),
                    );
                    if let Some(d) = &rec.description {
                        m.insert("description".into(), d.clone().into());
                    }
                }
                s
            }
            LexDef::Token(t) => {
                let mut m = Map::new();
                m.insert("type".into(), "string".into());
                m.insert("const".into(), r.type_name().into_owned().into());
                if let Some(d) = &t.description {
                    m.insert("description".into(), d.clone().into());
                }
                m.insert("x-atproto-token".into(), true.into());
                Value::Object(m)
            }
            LexDef::Object(o) => self.object(o, Some(r)),
            LexDef::Boolean(b) => self.boolean(b.default, b.const_value),
            LexDef::Integer(i) => self.integer(i),
            LexDef::String(s) => self.string(s),
            LexDef::Bytes(b) => {
                let mut m = bytes_schema();
                add_u64(&mut m, "x-atproto-minLength", b.min_length);
                add_u64(&mut m, "x-atproto-maxLength", b.max_length);
                Value::Object(m)
            }
            LexDef::CidLink(_) => link_schema(),
            LexDef::Blob(b) => self.blob(b.accept.as_ref(), b.max_size),
            LexDef::Array(a) => self.array(a),
            LexDef::Query(_)
            | LexDef::Procedure(_)
            | LexDef::Subscription(_)
            | LexDef::PermissionSet(_)
            | LexDef::Unsupported(_) => json!({}),
        };
        if let (Value::Object(m), Some(d)) = (&mut schema, def.description()) {
            m.entry("description").or_insert_with(|| d.into());
        }
        schema
    }

    fn schema(&self, t: &LexType) -> Value {
        let mut s = match t {
            LexType::Boolean(b) => self.boolean(b.default, b.const_value),
            LexType::Integer(i) => self.integer(i),
            LexType::String(s) => self.string(s),
            LexType::Bytes(b) => {
                let mut m = bytes_schema();
                add_u64(&mut m, "x-atproto-minLength", b.min_length);
                add_u64(&mut m, "x-atproto-maxLength", b.max_length);
                Value::Object(m)
            }
            LexType::CidLink(_) => link_schema(),
            LexType::Blob(b) => self.blob(b.accept.as_ref(), b.max_size),
            LexType::Array(a) => self.array(a),
            LexType::Object(o) => self.object(o, None),
            LexType::Ref(r) => self.reference(r),
            LexType::Union(u) => self.union(u, true),
            LexType::Unknown(_) => json!({ "type": "object" }),
            LexType::Unsupported(_) => json!({}),
        };
        if let (Value::Object(m), Some(d)) = (&mut s, t.description()) {
            if !m.contains_key("$ref") {
                m.entry("description").or_insert_with(|| d.into());
            }
        }
        s
    }

    fn boolean(&self, default: Option<bool>, const_value: Option<bool>) -> Value {
        let mut m = Map::new();
        m.insert("type".into(), "boolean".into());
        if let Some(d) = default {
            m.insert("default".into(), d.into());
        }
        if let Some(c) = const_value {
            m.insert("const".into(), c.into());
        }
        Value::Object(m)
    }

    fn integer(&self, i: &LexInteger) -> Value {
        let mut m = Map::new();
        m.insert("type".into(), "integer".into());
        if let Some(n) = i.minimum {
            m.insert("minimum".into(), n.into());
        }
        if let Some(n) = i.maximum {
            m.insert("maximum".into(), n.into());
        }
        if let Some(e) = &i.enum_values {
            m.insert("enum".into(), json!(e));
        }
        if let Some(d) = i.default {
            m.insert("default".into(), d.into());
        }
        if let Some(c) = i.const_value {
            m.insert("const".into(), c.into());
        }
        Value::Object(m)
    }

    fn string(&self, s: &LexString) -> Value {
        let mut m = Map::new();
        m.insert("type".into(), "string".into());
        if let Some(f) = &s.format {
            let format = match f {
                StringFormat::Datetime => "date-time",
                StringFormat::Uri => "uri",
                other => other.as_str(),
            };
            m.insert("format".into(), format.into());
        }
        // Characters: at most the byte count, at least a quarter of it, at
        // least the grapheme count.
        if let Some(n) = s.max_length {
            m.insert("maxLength".into(), n.into());
        }
        let min_chars = s
            .min_length
            .map(|n| n.div_ceil(4))
            .max(s.min_graphemes)
            .filter(|n| *n > 0);
        if let Some(n) = min_chars {
            m.insert("minLength".into(), n.into());
        }
        add_u64(&mut m, "x-atproto-minLength", s.min_length);
        add_u64(&mut m, "x-atproto-maxLength", s.max_length);
        add_u64(&mut m, "x-atproto-minGraphemes", s.min_graphemes);
        add_u64(&mut m, "x-atproto-maxGraphemes", s.max_graphemes);
        if let Some(e) = &s.enum_values {
            m.insert("enum".into(), json!(e));
        }
        if !s.known_values.is_empty() {
            m.insert("examples".into(), json!(s.known_values));
            m.insert("x-atproto-known-values".into(), json!(s.known_values));
        }
        if let Some(d) = &s.default {
            m.insert("default".into(), d.clone().into());
        }
        if let Some(c) = &s.const_value {
            m.insert("const".into(), c.clone().into());
        }
        Value::Object(m)
    }

    fn blob(&self, accept: Option<&Vec<String>>, max_size: Option<u64>) -> Value {
        let mut m = Map::new();
        m.insert(
            "$ref".into(),
            format!("#/components/schemas/{BLOB_SCHEMA}").into(),
        );
        if let Some(a) = accept {
            m.insert("x-atproto-accept".into(), json!(a));
        }
        add_u64(&mut m, "x-atproto-maxSize", max_size);
        Value::Object(m)
    }

    fn array(&self, a: &LexArray) -> Value {
        let mut m = Map::new();
        m.insert("type".into(), "array".into());
        m.insert("items".into(), self.schema(&a.items));
        add_u64(&mut m, "minItems", a.min_length);
        add_u64(&mut m, "maxItems", a.max_length);
        Value::Object(m)
    }

    /// An object; `named` is the definition it is (for its `$type`).
    fn object(&self, o: &LexObject, named: Option<&DefRef>) -> Value {
        let mut m = Map::new();
        m.insert("type".into(), "object".into());
        if let Some(d) = &o.description {
            m.insert("description".into(), d.clone().into());
        }
        if !o.required.is_empty() {
            m.insert("required".into(), json!(o.required));
        }
        let mut props = Map::new();
        if let Some(r) = named {
            props.insert(
                "$type".into(),
                json!({ "const": r.type_name().into_owned() }),
            );
        }
        for (name, t) in &o.properties {
            let mut s = self.schema(t);
            if o.is_nullable(name) {
                s = json!({ "anyOf": [s, { "type": "null" }] });
            }
            props.insert(name.clone(), s);
        }
        m.insert("properties".into(), Value::Object(props));
        Value::Object(m)
    }

    fn reference(&self, r: &LexRef) -> Value {
        schema_ref(&self.keys.key(&self.target(r)))
    }

    /// The definition a ref points to (the resolved one when known).
    fn target(&self, r: &LexRef) -> DefRef {
        r.resolved
            .and_then(|id| self.catalog.def_ref(id))
            .unwrap_or_else(|| r.target.clone())
    }

    fn union(&self, u: &LexUnion, with_description: bool) -> Value {
        let mut one_of = Vec::new();
        let mut mapping = Map::new();
        for r in &u.refs {
            let target = self.target(r);
            let key = self.keys.key(&target);
            one_of.push(schema_ref(&key));
            mapping.insert(
                target.type_name().into_owned(),
                format!("#/components/schemas/{key}").into(),
            );
        }
        let mut m = Map::new();
        if with_description {
            if let Some(d) = &u.description {
                m.insert("description".into(), d.clone().into());
            }
        }
        m.insert("oneOf".into(), Value::Array(one_of));
        m.insert(
            "discriminator".into(),
            json!({ "propertyName": "$type", "mapping": Value::Object(mapping) }),
        );
        if !u.closed {
            m.insert("x-atproto-open-union".into(), true.into());
        }
        Value::Object(m)
    }
}

fn add_u64(m: &mut Map<String, Value>, key: &str, v: Option<u64>) {
    if let Some(n) = v {
        m.insert(key.into(), n.into());
    }
}

fn is_json(encoding: &str) -> bool {
    encoding
        .split(',')
        .any(|e| e.trim().eq_ignore_ascii_case("application/json"))
}

/// Every `$ref` in `doc` that does not resolve inside it (local JSON
/// pointers only; other refs are reported too).
pub fn dangling_refs(doc: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![doc];
    while let Some(v) = stack.pop() {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(r)) = m.get("$ref") {
                    if resolve_pointer(doc, r).is_none() {
                        out.push(r.clone());
                    }
                }
                if let Some(Value::Object(d)) = m.get("discriminator") {
                    if let Some(Value::Object(mapping)) = d.get("mapping") {
                        for target in mapping.values() {
                            if let Value::String(r) = target {
                                if resolve_pointer(doc, r).is_none() {
                                    out.push(r.clone());
                                }
                            }
                        }
                    }
                }
                stack.extend(m.values());
            }
            Value::Array(a) => stack.extend(a.iter()),
            _ => {}
        }
    }
    out.sort();
    out.dedup();
    out
}

/// Resolve a local reference (`#/a/b`) in `doc`.
pub fn resolve_pointer<'a>(doc: &'a Value, reference: &str) -> Option<&'a Value> {
    let pointer = reference.strip_prefix('#')?;
    doc.pointer(pointer)
}

/// The number of paths by HTTP method in an OpenAPI document
/// (`get`, `post`).
pub fn operation_counts(doc: &Value) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    if let Some(Value::Object(paths)) = doc.get("paths") {
        for item in paths.values() {
            if let Value::Object(ops) = item {
                for verb in ops.keys() {
                    *counts.entry(verb.clone()).or_insert(0) += 1;
                }
            }
        }
    }
    counts
}
