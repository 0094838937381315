//! atproto lexicons at run time: the document model (IR), a resolved
//! catalog, lexicon document checks and generic validation of data against
//! lexicon definitions.
//!
//! * [`LexDoc`] and the `Lex*` types are the IR: a lexicon JSON document,
//!   checked against the lexicon specification and typed. A code generator
//!   consumes them directly; descriptions are kept for doc comments.
//! * [`Catalog`] loads many documents (a directory tree or in-memory JSON),
//!   checks each, resolves every reference to a [`DefId`] and records the
//!   reference graph between documents. Problems come back as
//!   [`Diagnostic`]s naming the document and the JSON path.
//! * [`Catalog::validate_record`], [`Catalog::validate`] and friends check
//!   [`atproto_data::Value`]s against the resolved IR, reporting every
//!   problem with its path ([`ValidationErrors`]).
//!
//! ```
//! use atproto_lexicon::Catalog;
//! use atproto_data::Value;
//!
//! let catalog = Catalog::from_json_strs([(
//!     "example.json",
//!     r#"{"lexicon": 1, "id": "com.example.note", "defs": {"main": {
//!         "type": "record", "key": "tid",
//!         "record": {"type": "object", "required": ["text"],
//!                    "properties": {"text": {"type": "string", "maxGraphemes": 5}}}}}}"#,
//! )])
//! .expect("valid lexicon");
//!
//! let collection = "com.example.note".parse().expect("valid NSID");
//! let ok = Value::from_json_str(r#"{"$type": "com.example.note", "text": "hi"}"#).expect("json");
//! assert!(catalog.validate_record(&collection, &ok).is_ok());
//!
//! let bad = Value::from_json_str(r#"{"$type": "com.example.note", "text": "too long"}"#).expect("json");
//! let errors = catalog.validate_record(&collection, &bad).unwrap_err();
//! assert_eq!(errors.to_string(), "text: string is longer than maxGraphemes (5)");
//! ```

mod catalog;
mod diag;
pub mod formats;
mod model;
mod parse;
mod validate;
mod walk;

pub use catalog::{Catalog, CatalogBuilder};
pub use diag::{Diagnostic, LexiconError, Severity};
pub use model::*;
pub use parse::parse_document;
pub use validate::{
    RecordKeyError, ValidationError, ValidationErrorKind, ValidationErrors, MAX_VALIDATION_DEPTH,
};
pub use walk::RefSite;

#[cfg(test)]
mod tests;
