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

pub mod lex;

/// The types generated from the lexicons in `lexicons/`: one module per
/// lexicon document, nested by NSID
/// (`com.atproto.repo.createRecord` → [`lexicons::com::atproto::repo::create_record`]).
///
/// `com.atproto` is always compiled; `app.bsky`, `chat.bsky`,
/// `tools.ozone` and `com.germnetwork` need the features `app-bsky`,
/// `chat-bsky`, `tools-ozone` and `com-germnetwork` (or `full`). Runtime
/// support is in [`lex`].
#[allow(
    clippy::large_enum_variant,
    clippy::doc_lazy_continuation,
    clippy::too_long_first_doc_paragraph,
    rustdoc::bare_urls,
    rustdoc::broken_intra_doc_links,
    rustdoc::invalid_html_tags
)]
pub mod lexicons {
    include!(concat!(env!("OUT_DIR"), "/lexicons/mod.rs"));
}

#[cfg(feature = "server")]
pub mod xrpc;
