//! atproto for Rust applications.
//!
//! This crate is a facade over the crates that own each concern:
//! [`syntax`] (identifiers and string formats), [`data`] (the data model,
//! DAG-CBOR and atproto-JSON), [`crypto`] (keys and signatures) and [`repo`]
//! (MST, commits, CAR, proofs).

pub use atproto_crypto as crypto;
pub use atproto_data as data;
pub use atproto_lexicon as lexicon;
pub use atproto_repo as repo;
pub use atproto_syntax as syntax;

#[cfg(feature = "server")]
pub mod xrpc;
