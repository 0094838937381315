//! `lexicons!`: Rust types for an application's own atproto lexicons,
//! generated at compile time by the same generator (`atproto-codegen`) that
//! makes the types of `atproto-types`.
//!
//! ```
//! // The documents under <crate>/tests/lexicons/**/*.json; at the crate
//! // root (generated code names its types `crate::lexicons::...`).
//! atproto_macros::lexicons!("tests/lexicons");
//!
//! use lexicons::com::example::thing;
//!
//! fn main() -> Result<(), serde_json::Error> {
//!     let text = r#"{
//!         "$type": "com.example.thing",
//!         "name": "a thing",
//!         "subject": {
//!             "uri": "at://did:plc:ewvi7nxzyoun6zhxrhs64oiz/com.example.thing/3k2akfmbxy32c",
//!             "cid": "bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm"
//!         },
//!         "createdAt": "2024-05-01T12:00:00.000Z"
//!     }"#;
//!     let thing: thing::Record = serde_json::from_str(text)?;
//!     // `com.atproto.repo.strongRef` is the type from atproto_types.
//!     let subject: &atproto_types::lexicons::com::atproto::repo::strong_ref::Main =
//!         &thing.subject;
//!     assert_eq!(subject.uri.as_str(), "at://did:plc:ewvi7nxzyoun6zhxrhs64oiz/com.example.thing/3k2akfmbxy32c");
//!     Ok(())
//! }
//! ```
//!
//! The macro expands to a module `pub mod lexicons { ... }` holding one
//! module per lexicon document, nested by NSID, exactly as in
//! `atproto_types::lexicons` (see `atproto_codegen::naming` for the naming
//! rules), plus `lexicons::LEXICON_SOURCES`: every document as
//! `(NSID, JSON text)`, sorted by NSID, for building an
//! `atproto_lexicon::Catalog` (with `atproto_types::lex::LEXICON_SOURCES`
//! for the documents it references).
//!
//! * **Path**: the directory is relative to the invoking crate's
//!   `CARGO_MANIFEST_DIR`; every `*.json` file under it (recursively) is a
//!   lexicon document.
//! * **Where**: generated code names its own types by absolute path, so the
//!   macro expects to be invoked at the crate root. Invoked inside a module,
//!   say so: `lexicons!("lexicons", crate_root = "crate::generated")` when
//!   the macro is in `crate::generated` (the types are then at
//!   `crate::generated::lexicons::...`).
//! * **References to `com.atproto`, `app.bsky`, ...**: the documents
//!   vendored in this workspace (`lexicons/` at its root) are known to the
//!   macro; a reference to one of them resolves to its type in
//!   `::atproto_types::lexicons` instead of being generated again. The
//!   referenced namespace must be compiled in `atproto-types` (its feature,
//!   e.g. `app-bsky`, enabled). A document of the application with the
//!   same NSID as a vendored one replaces it.
//! * **Dependencies**: the generated code uses `::atproto_types` and
//!   `::serde` (derive), so the crate needs both.
//! * **Errors**: an invalid lexicon (bad JSON, a document that breaks the
//!   lexicon rules, a dangling reference) is a compile error per problem,
//!   naming the document, its file and the JSON path.
//! * **Rebuilds**: each document is read with `include_str!`
//!   (`LEXICON_SOURCES`), so editing one rebuilds the crate. Adding a
//!   file is not noticed until something else changes; a build script
//!   printing `cargo:rerun-if-changed=lexicons` covers that too.
//! * Only the types are generated: not the XRPC server route traits of
//!   `atproto_types` (feature `server`).

use proc_macro::TokenStream;

mod expand;

/// Generate the types of the lexicon documents under a directory (relative
/// to `CARGO_MANIFEST_DIR`); see the [crate docs](crate).
///
/// `lexicons!("path")` or
/// `lexicons!("path", crate_root = "crate::module::where::invoked")`.
#[proc_macro]
pub fn lexicons(input: TokenStream) -> TokenStream {
    let args = syn::parse_macro_input!(input as expand::Args);
    let manifest_dir = match std::env::var_os("CARGO_MANIFEST_DIR") {
        Some(d) => std::path::PathBuf::from(d),
        None => {
            return syn::Error::new(args.dir.span(), "CARGO_MANIFEST_DIR is not set")
                .to_compile_error()
                .into()
        }
    };
    expand::lexicons(&args, &manifest_dir).into()
}
