//! Code generation from atproto lexicon documents.
//!
//! * [`naming`] decides how lexicon names (NSIDs, definition names,
//!   property names, union variants, enum values) become Rust identifiers
//!   and paths; every generator uses it.
//! * [`generate`] turns a [`Catalog`](atproto_lexicon::Catalog) into Rust
//!   source files: one module per lexicon document, nested by NSID, using
//!   the runtime support in `atproto_types::lex`.
//! * [`features`] maps lexicon namespaces to Cargo features and checks
//!   that the features' dependencies follow the reference graph.

pub mod features;
pub mod naming;
pub mod openapi;
pub mod routes;

mod emit;
mod error;
mod generate;
mod graph;
mod ir;

pub use error::CodegenError;
pub use generate::{
    generate, warnings, write_to_dir, GeneratedFile, ModuleStyle, Options, SourceEmbedding,
};
