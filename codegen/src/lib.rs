//! Code generation from atproto lexicon documents.
//!
//! [`naming`] decides how lexicon names (NSIDs, definition names, property
//! names, union variants, enum values) become Rust identifiers and paths.

pub mod naming;
