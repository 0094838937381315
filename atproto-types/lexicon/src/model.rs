//! The lexicon document model (IR): what a lexicon JSON file says, checked
//! and typed.
//!
//! Documents are read with [`LexDoc::from_json`] (or through a
//! [`Catalog`](crate::Catalog)), which checks them against the lexicon
//! specification and reports problems as [`Diagnostic`](crate::Diagnostic)s.
//! Every type serialises back to the lexicon JSON shape with serde.
//!
//! The shapes follow the specification one to one:
//!
//! * a [`LexDoc`] holds named [`LexDef`]s (sorted by name);
//! * a [`LexDef`] is a primary type ([`LexRecord`], [`LexXrpcQuery`],
//!   [`LexXrpcProcedure`], [`LexXrpcSubscription`], [`LexPermissionSet`]),
//!   a [`LexToken`], or one of the schemas that may be named;
//! * field schemas are [`LexType`]s; query parameters are [`LexParams`].
//!
//! References ([`LexRef`], [`LexUnion`]) keep the string written in the
//! document, its absolute form ([`DefRef`]) and, once a catalog has resolved
//! them, the [`DefId`] of their target.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use atproto_syntax::Nsid;
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};

/// The name of the primary definition of a document.
pub const MAIN: &str = "main";

/// Optional prefix of absolute references in compiled schemas
/// (`lex:com.example.defs#view`); see [`DefRef::parse`].
pub const LEX_URI_PREFIX: &str = "lex:";

/// A lexicon document: one NSID and its definitions.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LexDoc {
    /// The lexicon language version; always `1`.
    pub lexicon: u32,
    /// The NSID this document defines.
    pub id: Nsid,
    /// Optional revision number of the document.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revision: Option<u64>,
    /// Short overview of the document.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The definitions, sorted by name (names are unique).
    #[serde(serialize_with = "ser_defs")]
    pub defs: Vec<LexNamedDef>,
}

impl LexDoc {
    /// The definition called `name`, if any.
    pub fn def(&self, name: &str) -> Option<&LexDef> {
        self.def_index(name).map(|i| &self.defs[i].def)
    }

    /// Position of the definition called `name` in [`LexDoc::defs`].
    pub fn def_index(&self, name: &str) -> Option<usize> {
        self.defs
            .binary_search_by(|d| d.name.as_str().cmp(name))
            .ok()
    }

    /// The `main` definition, if any.
    pub fn main(&self) -> Option<&LexDef> {
        self.def(MAIN)
    }

    /// The record definition of this document (`main` of type `record`).
    pub fn record(&self) -> Option<&LexRecord> {
        match self.main() {
            Some(LexDef::Record(r)) => Some(r),
            _ => None,
        }
    }
}

fn ser_defs<S: Serializer>(defs: &[LexNamedDef], s: S) -> Result<S::Ok, S::Error> {
    let mut map = s.serialize_map(Some(defs.len()))?;
    for d in defs {
        map.serialize_entry(&d.name, &d.def)?;
    }
    map.end()
}

/// A definition together with its name in the document.
#[derive(Debug, Clone, PartialEq)]
pub struct LexNamedDef {
    /// The short name (the key under `defs`), e.g. `main` or `viewerState`.
    pub name: String,
    /// The definition.
    pub def: LexDef,
}

/// A named definition (an entry of a document's `defs`).
///
/// `ref`, `union`, `unknown`, `params` and `permission` can not be named
/// definitions; the primary types (record, query, procedure, subscription,
/// permission-set) may only be named `main`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum LexDef {
    /// A repository record type.
    Record(LexRecord),
    /// An XRPC query (HTTP GET).
    Query(LexXrpcQuery),
    /// An XRPC procedure (HTTP POST).
    Procedure(LexXrpcProcedure),
    /// An event stream (WebSocket).
    Subscription(LexXrpcSubscription),
    /// A bundle of auth permissions.
    PermissionSet(LexPermissionSet),
    /// A named symbol with no data representation.
    Token(LexToken),
    /// An object schema.
    Object(LexObject),
    /// A boolean schema.
    Boolean(LexBoolean),
    /// An integer schema.
    Integer(LexInteger),
    /// A string schema.
    String(LexString),
    /// A bytes schema.
    Bytes(LexBytes),
    /// A CID link schema.
    CidLink(LexCidLink),
    /// A blob schema.
    Blob(LexBlob),
    /// An array schema.
    Array(LexArray),
    /// A definition whose `type` this implementation does not know. It was
    /// reported as a warning and is kept verbatim; values are not checked
    /// against it.
    #[serde(untagged)]
    Unsupported(LexUnsupported),
}

impl LexDef {
    /// The `type` string of this definition.
    pub fn type_name(&self) -> &str {
        match self {
            LexDef::Record(_) => "record",
            LexDef::Query(_) => "query",
            LexDef::Procedure(_) => "procedure",
            LexDef::Subscription(_) => "subscription",
            LexDef::PermissionSet(_) => "permission-set",
            LexDef::Token(_) => "token",
            LexDef::Object(_) => "object",
            LexDef::Boolean(_) => "boolean",
            LexDef::Integer(_) => "integer",
            LexDef::String(_) => "string",
            LexDef::Bytes(_) => "bytes",
            LexDef::CidLink(_) => "cid-link",
            LexDef::Blob(_) => "blob",
            LexDef::Array(_) => "array",
            LexDef::Unsupported(u) => &u.type_name,
        }
    }

    /// The description of this definition.
    pub fn description(&self) -> Option<&str> {
        match self {
            LexDef::Record(x) => x.description.as_deref(),
            LexDef::Query(x) => x.description.as_deref(),
            LexDef::Procedure(x) => x.description.as_deref(),
            LexDef::Subscription(x) => x.description.as_deref(),
            LexDef::PermissionSet(x) => x.description.as_deref(),
            LexDef::Token(x) => x.description.as_deref(),
            LexDef::Object(x) => x.description.as_deref(),
            LexDef::Boolean(x) => x.description.as_deref(),
            LexDef::Integer(x) => x.description.as_deref(),
            LexDef::String(x) => x.description.as_deref(),
            LexDef::Bytes(x) => x.description.as_deref(),
            LexDef::CidLink(x) => x.description.as_deref(),
            LexDef::Blob(x) => x.description.as_deref(),
            LexDef::Array(x) => x.description.as_deref(),
            LexDef::Unsupported(x) => x.description.as_deref(),
        }
    }

    /// Whether this is one of the primary types (only allowed as `main`).
    pub fn is_primary(&self) -> bool {
        matches!(
            self,
            LexDef::Record(_)
                | LexDef::Query(_)
                | LexDef::Procedure(_)
                | LexDef::Subscription(_)
                | LexDef::PermissionSet(_)
        )
    }
}

/// A field schema: anything that can describe a value inside an object,
/// an array, a body or a message.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum LexType {
    /// `true` or `false`.
    Boolean(LexBoolean),
    /// A signed 64-bit integer.
    Integer(LexInteger),
    /// A Unicode string.
    String(LexString),
    /// Raw bytes.
    Bytes(LexBytes),
    /// A CID link.
    CidLink(LexCidLink),
    /// A blob reference.
    Blob(LexBlob),
    /// An array.
    Array(LexArray),
    /// An inline object.
    Object(LexObject),
    /// A reference to a named definition.
    Ref(LexRef),
    /// One of several object types, discriminated by `$type`.
    Union(LexUnion),
    /// Any object.
    Unknown(LexUnknown),
    /// A schema whose `type` this implementation does not know (reported as
    /// a warning, kept verbatim, any value accepted).
    #[serde(untagged)]
    Unsupported(LexUnsupported),
}

impl LexType {
    /// The `type` string of this schema.
    pub fn type_name(&self) -> &str {
        match self {
            LexType::Boolean(_) => "boolean",
            LexType::Integer(_) => "integer",
            LexType::String(_) => "string",
            LexType::Bytes(_) => "bytes",
            LexType::CidLink(_) => "cid-link",
            LexType::Blob(_) => "blob",
            LexType::Array(_) => "array",
            LexType::Object(_) => "object",
            LexType::Ref(_) => "ref",
            LexType::Union(_) => "union",
            LexType::Unknown(_) => "unknown",
            LexType::Unsupported(u) => &u.type_name,
        }
    }

    /// The description of this schema.
    pub fn description(&self) -> Option<&str> {
        match self {
            LexType::Boolean(x) => x.description.as_deref(),
            LexType::Integer(x) => x.description.as_deref(),
            LexType::String(x) => x.description.as_deref(),
            LexType::Bytes(x) => x.description.as_deref(),
            LexType::CidLink(x) => x.description.as_deref(),
            LexType::Blob(x) => x.description.as_deref(),
            LexType::Array(x) => x.description.as_deref(),
            LexType::Object(x) => x.description.as_deref(),
            LexType::Ref(x) => x.description.as_deref(),
            LexType::Union(x) => x.description.as_deref(),
            LexType::Unknown(x) => x.description.as_deref(),
            LexType::Unsupported(x) => x.description.as_deref(),
        }
    }
}

/// A schema type this implementation does not know, kept as written.
#[derive(Debug, Clone, PartialEq)]
pub struct LexUnsupported {
    /// The unrecognised `type` value.
    pub type_name: String,
    /// The description, if the schema had one.
    pub description: Option<String>,
    /// The whole schema object as written (including `type`).
    pub raw: serde_json::Map<String, serde_json::Value>,
}

impl Serialize for LexUnsupported {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.raw.serialize(s)
    }
}

// ---------------------------------------------------------------------------
// Primary types
// ---------------------------------------------------------------------------

/// The record key scheme of a record type (`key` of a `record` definition).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RecordKey {
    /// `tid`: a timestamp identifier.
    Tid,
    /// `nsid`: the key must be a valid NSID.
    Nsid,
    /// `any`: any valid record key.
    Any,
    /// `literal:<value>`: exactly this key (e.g. `literal:self`).
    Literal(String),
}

impl RecordKey {
    /// The string form used in lexicon documents (`tid`, `literal:self`, ...).
    pub fn as_lexicon_str(&self) -> Cow<'_, str> {
        match self {
            RecordKey::Tid => Cow::Borrowed("tid"),
            RecordKey::Nsid => Cow::Borrowed("nsid"),
            RecordKey::Any => Cow::Borrowed("any"),
            RecordKey::Literal(v) => Cow::Owned(format!("literal:{v}")),
        }
    }
}

impl fmt::Display for RecordKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.as_lexicon_str())
    }
}

impl Serialize for RecordKey {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.as_lexicon_str())
    }
}

/// A record type: `{"type": "record", "key": ..., "record": {object}}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LexRecord {
    /// Description of the record type.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The record key scheme.
    pub key: RecordKey,
    /// The record's object schema.
    #[serde(serialize_with = "ser_object_schema")]
    pub record: LexObject,
}

/// An XRPC query (HTTP GET).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LexXrpcQuery {
    /// Description of the endpoint.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// HTTP query parameters.
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "ser_params")]
    pub parameters: Option<LexParams>,
    /// Response body.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<LexXrpcBody>,
    /// Named errors the endpoint may return.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<LexXrpcError>,
}

/// An XRPC procedure (HTTP POST).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LexXrpcProcedure {
    /// Description of the endpoint.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// HTTP query parameters.
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "ser_params")]
    pub parameters: Option<LexParams>,
    /// Request body.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input: Option<LexXrpcBody>,
    /// Response body.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<LexXrpcBody>,
    /// Named errors the endpoint may return.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<LexXrpcError>,
}

/// An event stream (XRPC subscription over WebSocket).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LexXrpcSubscription {
    /// Description of the stream.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// HTTP query parameters.
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "ser_params")]
    pub parameters: Option<LexParams>,
    /// What messages look like.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<LexSubscriptionMessage>,
    /// Named errors the stream may send.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<LexXrpcError>,
}

/// The `message` of a subscription: always a union of refs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LexSubscriptionMessage {
    /// Description of the messages.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The message variants.
    #[serde(serialize_with = "ser_union_schema")]
    pub schema: LexUnion,
}

/// Struct-typed schema fields serialise with their `type` tag.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
enum Tagged<'a> {
    Union(&'a LexUnion),
    Object(&'a LexObject),
    Params(&'a LexParams),
}

fn ser_union_schema<S: Serializer>(u: &LexUnion, s: S) -> Result<S::Ok, S::Error> {
    Tagged::Union(u).serialize(s)
}

fn ser_object_schema<S: Serializer>(o: &LexObject, s: S) -> Result<S::Ok, S::Error> {
    Tagged::Object(o).serialize(s)
}

fn ser_params<S: Serializer>(p: &Option<LexParams>, s: S) -> Result<S::Ok, S::Error> {
    p.as_ref().map(Tagged::Params).serialize(s)
}

/// A request or response body of an XRPC endpoint.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LexXrpcBody {
    /// Description of the body.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// MIME type of the body, e.g. `application/json` or `*/*`.
    pub encoding: String,
    /// Schema of a JSON body, if given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schema: Option<LexBodySchema>,
}

/// The schema of an XRPC body: an object, a ref or a union of refs.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum LexBodySchema {
    /// An inline object.
    Object(LexObject),
    /// A reference to an object definition.
    Ref(LexRef),
    /// A union of object definitions.
    Union(LexUnion),
}

/// A named error of an XRPC endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LexXrpcError {
    /// The error name, with no whitespace (e.g. `RecordNotFound`).
    pub name: String,
    /// Description of the error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// HTTP query parameters of an XRPC endpoint (`type: params`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LexParams {
    /// Description of the parameters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Names of the required parameters.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub required: Vec<String>,
    /// The parameters by name.
    pub properties: BTreeMap<String, LexParam>,
}

impl LexParams {
    /// Whether the parameter `name` is required.
    pub fn is_required(&self, name: &str) -> bool {
        self.required.iter().any(|r| r == name)
    }
}

/// The schema of one query parameter.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum LexParam {
    /// A boolean parameter (`true` / `false`).
    Boolean(LexBoolean),
    /// An integer parameter.
    Integer(LexInteger),
    /// A string parameter.
    String(LexString),
    /// An unconstrained parameter.
    Unknown(LexUnknown),
    /// A repeated parameter.
    Array(LexPrimitiveArray),
}

/// An array of primitive values, as used by query parameters.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LexPrimitiveArray {
    /// Description of the parameter.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The element schema.
    pub items: LexPrimitive,
    /// Minimum number of elements.
    #[serde(rename = "minLength", skip_serializing_if = "Option::is_none")]
    pub min_length: Option<u64>,
    /// Maximum number of elements.
    #[serde(rename = "maxLength", skip_serializing_if = "Option::is_none")]
    pub max_length: Option<u64>,
}

/// A primitive schema: the element type of a parameter array.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum LexPrimitive {
    /// A boolean.
    Boolean(LexBoolean),
    /// An integer.
    Integer(LexInteger),
    /// A string.
    String(LexString),
    /// Anything.
    Unknown(LexUnknown),
}

/// A permission set: a bundle of auth permissions (OAuth scopes).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LexPermissionSet {
    /// Description of the set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Short name shown to users.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Localised titles by language tag.
    #[serde(rename = "title:lang", skip_serializing_if = "BTreeMap::is_empty")]
    pub title_lang: BTreeMap<String, String>,
    /// What the set grants, shown to users.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Localised details by language tag.
    #[serde(rename = "detail:lang", skip_serializing_if = "BTreeMap::is_empty")]
    pub detail_lang: BTreeMap<String, String>,
    /// The permissions.
    pub permissions: Vec<LexPermission>,
}

/// One permission of a permission set (`type: permission`).
#[derive(Debug, Clone, PartialEq)]
pub enum LexPermission {
    /// `resource: repo`: write access to record collections.
    Repo(LexRepoPermission),
    /// `resource: rpc`: calls to remote services.
    Rpc(LexRpcPermission),
    /// Any other resource (`blob`, `account`, `identity` or future ones):
    /// kept verbatim; access control must ignore it.
    Other(LexOtherPermission),
}

/// A `repo` permission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LexRepoPermission {
    /// Record collections (NSIDs); never empty.
    pub collection: Vec<Nsid>,
    /// Allowed actions; empty means all actions.
    pub action: Vec<RepoAction>,
}

/// A record operation named by a `repo` permission.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RepoAction {
    /// Creating records.
    Create,
    /// Updating records.
    Update,
    /// Deleting records.
    Delete,
}

impl RepoAction {
    /// The lexicon spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            RepoAction::Create => "create",
            RepoAction::Update => "update",
            RepoAction::Delete => "delete",
        }
    }
}

/// An `rpc` permission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LexRpcPermission {
    /// Allowed endpoints (NSIDs, or `*`); never empty.
    pub lxm: Vec<String>,
    /// The audience service, `*` for any; absent when `inherit_aud` is set.
    pub aud: Option<String>,
    /// Whether the audience is inherited from the including scope.
    pub inherit_aud: bool,
}

/// A permission of a resource type not interpreted here.
#[derive(Debug, Clone, PartialEq)]
pub struct LexOtherPermission {
    /// The resource name.
    pub resource: String,
    /// All other fields, verbatim.
    pub fields: serde_json::Map<String, serde_json::Value>,
}

impl Serialize for LexPermission {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("type", "permission")?;
        match self {
            LexPermission::Repo(p) => {
                map.serialize_entry("resource", "repo")?;
                map.serialize_entry("collection", &p.collection)?;
                if !p.action.is_empty() {
                    map.serialize_entry("action", &p.action)?;
                }
            }
            LexPermission::Rpc(p) => {
                map.serialize_entry("resource", "rpc")?;
                map.serialize_entry("lxm", &p.lxm)?;
                if let Some(aud) = &p.aud {
                    map.serialize_entry("aud", aud)?;
                }
                if p.inherit_aud {
                    map.serialize_entry("inheritAud", &true)?;
                }
            }
            LexPermission::Other(p) => {
                map.serialize_entry("resource", &p.resource)?;
                for (k, v) in &p.fields {
                    map.serialize_entry(k, v)?;
                }
            }
        }
        map.end()
    }
}

/// A token: a named symbol without data representation, referenced by its
/// full name in `knownValues`/`enum` of strings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LexToken {
    /// What the token means.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

// ---------------------------------------------------------------------------
// Field schemas
// ---------------------------------------------------------------------------

/// `boolean`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct LexBoolean {
    /// Description of the field.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Default value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default: Option<bool>,
    /// The only allowed value.
    #[serde(rename = "const", skip_serializing_if = "Option::is_none")]
    pub const_value: Option<bool>,
}

/// `integer`: a signed 64-bit integer.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct LexInteger {
    /// Description of the field.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Smallest allowed value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub minimum: Option<i64>,
    /// Largest allowed value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub maximum: Option<i64>,
    /// Closed set of allowed values.
    #[serde(rename = "enum", skip_serializing_if = "Option::is_none")]
    pub enum_values: Option<Vec<i64>>,
    /// Default value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default: Option<i64>,
    /// The only allowed value.
    #[serde(rename = "const", skip_serializing_if = "Option::is_none")]
    pub const_value: Option<i64>,
}

/// `format` of a string schema.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum StringFormat {
    /// `at-identifier`: a handle or a DID.
    AtIdentifier,
    /// `at-uri`.
    AtUri,
    /// `cid`: a CID in string form.
    Cid,
    /// `datetime`.
    Datetime,
    /// `did`.
    Did,
    /// `handle`.
    Handle,
    /// `nsid`.
    Nsid,
    /// `tid`.
    Tid,
    /// `record-key`.
    RecordKey,
    /// `uri`: any RFC 3986 URI.
    Uri,
    /// `language`: a BCP 47 language tag.
    Language,
    /// A format this implementation does not know (reported as a warning;
    /// not checked).
    Other(String),
}

impl StringFormat {
    /// The lexicon spelling of the format.
    pub fn as_str(&self) -> &str {
        match self {
            StringFormat::AtIdentifier => "at-identifier",
            StringFormat::AtUri => "at-uri",
            StringFormat::Cid => "cid",
            StringFormat::Datetime => "datetime",
            StringFormat::Did => "did",
            StringFormat::Handle => "handle",
            StringFormat::Nsid => "nsid",
            StringFormat::Tid => "tid",
            StringFormat::RecordKey => "record-key",
            StringFormat::Uri => "uri",
            StringFormat::Language => "language",
            StringFormat::Other(s) => s,
        }
    }

    /// Parse the lexicon spelling; unknown names become [`StringFormat::Other`].
    pub fn parse(s: &str) -> StringFormat {
        match s {
            "at-identifier" => StringFormat::AtIdentifier,
            "at-uri" => StringFormat::AtUri,
            "cid" => StringFormat::Cid,
            "datetime" => StringFormat::Datetime,
            "did" => StringFormat::Did,
            "handle" => StringFormat::Handle,
            "nsid" => StringFormat::Nsid,
            "tid" => StringFormat::Tid,
            "record-key" => StringFormat::RecordKey,
            "uri" => StringFormat::Uri,
            "language" => StringFormat::Language,
            other => StringFormat::Other(other.to_owned()),
        }
    }
}

impl fmt::Display for StringFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for StringFormat {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// `string`: a Unicode string. Lengths are in UTF-8 bytes, graphemes in
/// extended grapheme clusters.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct LexString {
    /// Description of the field.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Format restriction.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format: Option<StringFormat>,
    /// Maximum length in UTF-8 bytes.
    #[serde(rename = "maxLength", skip_serializing_if = "Option::is_none")]
    pub max_length: Option<u64>,
    /// Minimum length in UTF-8 bytes.
    #[serde(rename = "minLength", skip_serializing_if = "Option::is_none")]
    pub min_length: Option<u64>,
    /// Maximum length in grapheme clusters.
    #[serde(rename = "maxGraphemes", skip_serializing_if = "Option::is_none")]
    pub max_graphemes: Option<u64>,
    /// Minimum length in grapheme clusters.
    #[serde(rename = "minGraphemes", skip_serializing_if = "Option::is_none")]
    pub min_graphemes: Option<u64>,
    /// Suggested values; other values are allowed (an open enum).
    #[serde(rename = "knownValues", skip_serializing_if = "Vec::is_empty")]
    pub known_values: Vec<String>,
    /// Closed set of allowed values.
    #[serde(rename = "enum", skip_serializing_if = "Option::is_none")]
    pub enum_values: Option<Vec<String>>,
    /// Default value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
    /// The only allowed value.
    #[serde(rename = "const", skip_serializing_if = "Option::is_none")]
    pub const_value: Option<String>,
}

/// `bytes`: raw bytes (`{"$bytes": base64}` in JSON).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct LexBytes {
    /// Description of the field.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Minimum size in bytes.
    #[serde(rename = "minLength", skip_serializing_if = "Option::is_none")]
    pub min_length: Option<u64>,
    /// Maximum size in bytes.
    #[serde(rename = "maxLength", skip_serializing_if = "Option::is_none")]
    pub max_length: Option<u64>,
}

/// `cid-link`: a CID link (`{"$link": cid}` in JSON).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct LexCidLink {
    /// Description of the field.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// `blob`: a reference to an uploaded file.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct LexBlob {
    /// Description of the field.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Accepted MIME types; entries may be `type/*` or `*/*`. `None`
    /// accepts any type.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accept: Option<Vec<String>>,
    /// Maximum size in bytes.
    #[serde(rename = "maxSize", skip_serializing_if = "Option::is_none")]
    pub max_size: Option<u64>,
}

impl LexBlob {
    /// Whether `mime_type` is accepted by [`LexBlob::accept`].
    pub fn accepts(&self, mime_type: &str) -> bool {
        match &self.accept {
            None => true,
            Some(list) => list
                .iter()
                .any(|pattern| crate::formats::mime_matches(pattern, mime_type)),
        }
    }
}

/// `array`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LexArray {
    /// Description of the field.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Schema of the elements.
    pub items: Box<LexType>,
    /// Minimum number of elements.
    #[serde(rename = "minLength", skip_serializing_if = "Option::is_none")]
    pub min_length: Option<u64>,
    /// Maximum number of elements.
    #[serde(rename = "maxLength", skip_serializing_if = "Option::is_none")]
    pub max_length: Option<u64>,
}

/// `object`: named properties.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct LexObject {
    /// Description of the object.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Names of the properties that must be present.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub required: Vec<String>,
    /// Names of the properties that may be `null`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub nullable: Vec<String>,
    /// The properties by name.
    pub properties: BTreeMap<String, LexType>,
}

impl LexObject {
    /// Whether property `name` is required.
    pub fn is_required(&self, name: &str) -> bool {
        self.required.iter().any(|r| r == name)
    }

    /// Whether property `name` may be `null`.
    pub fn is_nullable(&self, name: &str) -> bool {
        self.nullable.iter().any(|r| r == name)
    }
}

/// `unknown`: any object.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct LexUnknown {
    /// Description of the field.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

// ---------------------------------------------------------------------------
// References
// ---------------------------------------------------------------------------

/// The absolute name of a definition: an NSID and a def name.
///
/// `Display` gives `nsid#name`, or just `nsid` for `main` (the form used in
/// `$type` values).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DefRef {
    /// The document NSID.
    pub nsid: Nsid,
    /// The definition name (`main` when the reference had no fragment).
    pub name: String,
}

impl DefRef {
    /// A reference to `name` in `nsid`.
    pub fn new(nsid: Nsid, name: impl Into<String>) -> DefRef {
        DefRef {
            nsid,
            name: name.into(),
        }
    }

    /// Parse an absolute reference: `nsid`, `nsid#name`; with `base`, also a
    /// local `#name`. `nsid` alone means `nsid#main`.
    ///
    /// The `lex:` URI form that the TypeScript lexicon tooling writes into
    /// compiled schemas (`lex:app.bsky.actor.defs#profileView`, as found in
    /// the `@atproto/api` package) is accepted as the same absolute
    /// reference.
    pub fn parse(s: &str, base: Option<&Nsid>) -> Result<DefRef, RefSyntaxError> {
        let s = match s.strip_prefix(LEX_URI_PREFIX) {
            Some(rest) if !rest.is_empty() && !rest.starts_with('#') => rest,
            _ => s,
        };
        let (nsid_part, name) = match s.split_once('#') {
            Some((n, name)) => (n, name),
            None => (s, MAIN),
        };
        if !is_valid_def_name(name) {
            return Err(RefSyntaxError::BadName(name.to_owned()));
        }
        let nsid = if nsid_part.is_empty() {
            match base {
                Some(b) => b.clone(),
                None => return Err(RefSyntaxError::LocalWithoutBase),
            }
        } else {
            nsid_part
                .parse::<Nsid>()
                .map_err(|e| RefSyntaxError::BadNsid(e.to_string()))?
        };
        Ok(DefRef {
            nsid,
            name: name.to_owned(),
        })
    }

    /// Whether this is the `main` definition of its document.
    pub fn is_main(&self) -> bool {
        self.name == MAIN
    }

    /// The `$type` form: the NSID for `main`, `nsid#name` otherwise.
    pub fn type_name(&self) -> Cow<'_, str> {
        if self.is_main() {
            Cow::Borrowed(self.nsid.as_str())
        } else {
            Cow::Owned(format!("{}#{}", self.nsid.as_str(), self.name))
        }
    }

    /// Whether a `$type` value names this definition. `main` must be named
    /// by the bare NSID (a `#main` suffix does not match).
    pub fn matches_type(&self, type_value: &str) -> bool {
        match type_value.split_once('#') {
            None => self.is_main() && self.nsid.as_str() == type_value,
            Some((nsid, name)) => {
                !self.is_main() && self.nsid.as_str() == nsid && self.name == name
            }
        }
    }
}

impl fmt::Display for DefRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.nsid.as_str())?;
        if !self.is_main() {
            write!(f, "#{}", self.name)?;
        }
        Ok(())
    }
}

impl Serialize for DefRef {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A reference string that is not a valid lexicon reference.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RefSyntaxError {
    /// The NSID part is invalid.
    #[error("invalid NSID in reference: {0}")]
    BadNsid(String),
    /// The part after `#` is not a valid definition name.
    #[error("invalid definition name {0:?} in reference")]
    BadName(String),
    /// A `#name` reference outside of any document.
    #[error("a local reference (#name) needs a document to be relative to")]
    LocalWithoutBase,
}

/// Whether `name` can name a definition: an ASCII letter followed by ASCII
/// letters, digits, `_` or `-`, at most 63 characters (the NSID name-segment
/// rules, slightly widened).
pub fn is_valid_def_name(name: &str) -> bool {
    let mut chars = name.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() => {}
        _ => return false,
    }
    name.len() <= 63 && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Identifies a document in a [`Catalog`](crate::Catalog): its position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DocId(pub u32);

/// Identifies a definition in a [`Catalog`](crate::Catalog): the document
/// position and the definition's position in [`LexDoc::defs`]. Looking a
/// `DefId` up is two vector indexings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DefId {
    /// The document.
    pub doc: DocId,
    /// Index into the document's [`LexDoc::defs`].
    pub index: u32,
}

/// `ref`: a reference to a named definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LexRef {
    /// Description of the field.
    pub description: Option<String>,
    /// The reference as written (`#view`, `com.atproto.repo.strongRef`, ...).
    pub reference: String,
    /// The absolute form of the reference.
    pub target: DefRef,
    /// The resolved definition; set by [`Catalog`](crate::Catalog) loading,
    /// `None` in a document read on its own.
    pub resolved: Option<DefId>,
}

impl Serialize for LexRef {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        if let Some(d) = &self.description {
            map.serialize_entry("description", d)?;
        }
        map.serialize_entry("ref", &self.reference)?;
        map.end()
    }
}

/// `union`: one of several object or record types, told apart by `$type`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LexUnion {
    /// Description of the field.
    pub description: Option<String>,
    /// The variants.
    pub refs: Vec<LexRef>,
    /// A closed union rejects `$type`s not in `refs`; an open one (the
    /// default) accepts them unchecked.
    pub closed: bool,
}

impl LexUnion {
    /// The variant named by a `$type` value.
    pub fn variant(&self, type_value: &str) -> Option<&LexRef> {
        self.refs.iter().find(|r| r.target.matches_type(type_value))
    }
}

impl Serialize for LexUnion {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        struct Refs<'a>(&'a [LexRef]);
        impl Serialize for Refs<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut seq = s.serialize_seq(Some(self.0.len()))?;
                for r in self.0 {
                    seq.serialize_element(&r.reference)?;
                }
                seq.end()
            }
        }
        let mut map = s.serialize_map(None)?;
        if let Some(d) = &self.description {
            map.serialize_entry("description", d)?;
        }
        map.serialize_entry("refs", &Refs(&self.refs))?;
        if self.closed {
            map.serialize_entry("closed", &true)?;
        }
        map.end()
    }
}
