//! atproto identifier and string-format syntax types.
//!
//! Each type can only hold a valid value and keeps the original string
//! verbatim, so records round-trip byte for byte. Every type implements
//! `FromStr`, `TryFrom<String>`, `TryFrom<&str>`, `as_str()`, `into_inner()`,
//! `Into<String>`, `AsRef<str>`, `Display`, `Debug`, `Clone`, `Eq`, `Hash`,
//! `Ord`, and serde `Serialize`/`Deserialize` (as a string; deserializing
//! validates). Failures are [`SyntaxError`]s naming the kind and the reason.
//!
//! | type | Lexicon format | spec |
//! | --- | --- | --- |
//! | [`Did`] | `did` | atproto DID syntax |
//! | [`Handle`] | `handle` | atproto handle syntax |
//! | [`Nsid`] | `nsid` | atproto NSID syntax |
//! | [`AtUri`] | `at-uri` | restricted AT-URI syntax |
//! | [`AtIdentifier`] | `at-identifier` | DID or handle |
//! | [`Tid`] | `tid` | TID syntax (+ [`TidClock`]) |
//! | [`RecordKey`] | `record-key` | record key syntax |
//! | [`Datetime`] | `datetime` | Lexicon datetime |
//! | [`Language`] | `language` | BCP 47 language tag |
//! | [`CidString`] | `cid` | CID string syntax |
//! | [`Uri`] | `uri` | RFC 3986 URI |
//!
//! ```
//! use atproto_syntax::{AtUri, Handle, Tid};
//!
//! let uri: AtUri = "at://did:plc:abc/app.bsky.feed.post/3jzfcijpj2z2a".parse()?;
//! assert_eq!(uri.collection().map(|c| c.name()), Some("post"));
//!
//! let handle: Handle = "Alice.Test".parse()?;
//! assert_eq!(handle.as_str(), "Alice.Test");
//! assert_eq!(handle.normalized().as_str(), "alice.test");
//!
//! let err = "alice".parse::<Handle>().unwrap_err();
//! assert_eq!(err.reason(), "handle needs at least two segments separated by '.'");
//!
//! let (a, b) = (Tid::now(), Tid::now());
//! assert!(a < b);
//! # Ok::<(), atproto_syntax::SyntaxError>(())
//! ```

#[macro_use]
mod macros;

pub mod at_identifier;
pub mod at_uri;
pub mod cid;
pub mod datetime;
pub mod did;
mod error;
pub mod handle;
pub mod language;
pub mod nsid;
pub mod record_key;
pub mod tid;
pub mod uri;

pub use at_identifier::AtIdentifier;
pub use at_uri::AtUri;
pub use cid::CidString;
pub use datetime::Datetime;
pub use did::Did;
pub use error::{SyntaxError, SyntaxKind};
pub use handle::Handle;
pub use language::Language;
pub use nsid::Nsid;
pub use record_key::RecordKey;
pub use tid::{Tid, TidClock};
pub use uri::Uri;
