//! The atproto data model: one value type ([`Value`]), a canonical and strict
//! DAG-CBOR codec, the atproto-JSON mapping, CIDs, blobs and serde glue.
//!
//! - [`to_dag_cbor`] writes canonical DAG-CBOR; [`from_dag_cbor`] reads it
//!   strictly (no floats, no indefinite lengths, shortest-form arguments,
//!   sorted unique string keys, tag 42 only, bounded nesting) and also applies
//!   the data-model rules (`$type`, blobs, reserved keys).
//! - [`cbor::Encoder`] and [`cbor::Decoder`] write and strictly read
//!   DAG-CBOR item by item, for fixed shapes that need no [`Value`] (the
//!   value codec is built on them).
//! - [`Value::from_json`] / [`Value::to_json`] map atproto-JSON
//!   (`{"$link": ..}`, `{"$bytes": ..}`) to and from [`Value`].
//! - [`cid_for_dag_cbor`] and [`cid_for_raw`] compute CIDv1 with SHA-256.
//! - [`Blob`], [`BlobRef`], [`CidLink`] and [`Bytes`] are typed helpers with
//!   serde support for use in derived structs; [`to_value`] / [`from_value`]
//!   convert serde types to and from [`Value`].
//!
//! ```
//! use atproto_data::{cid_for_dag_cbor, from_dag_cbor, to_dag_cbor, Value};
//!
//! let json = serde_json::json!({"$type": "com.example.note", "text": "hi", "n": 3});
//! let value = Value::from_json_object(&json)?;
//! let bytes = to_dag_cbor(&value);
//! assert_eq!(from_dag_cbor(&bytes)?, value);
//! assert!(cid_for_dag_cbor(&bytes).to_string().starts_with("bafyrei"));
//! assert_eq!(value.to_json(), json);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod blob;
pub mod cbor;
mod error;
mod json;
mod model;
mod serde_impl;
mod value;

pub use blob::{Blob, BlobRef, LegacyBlob};
pub use cbor::{
    decode_prefix, from_dag_cbor, from_dag_cbor_with_max_depth, to_dag_cbor, write_dag_cbor,
};
pub use cid::Cid;
pub use error::{DataError, DataErrorKind, DecodeError, DecodeErrorKind, PathSegment};
pub use model::{MAX_CONTAINER_LEN, MAX_NESTED_LEVELS, MAX_OBJECT_KEY_LEN};
pub use serde_impl::{from_value, to_value, Bytes, CidLink};
pub use value::Value;

use sha2::{Digest, Sha256};

/// Multicodec code of DAG-CBOR.
pub const DAG_CBOR_CODEC: u64 = 0x71;
/// Multicodec code of raw bytes (blobs).
pub const RAW_CODEC: u64 = 0x55;
/// Multihash code of SHA-256.
pub const SHA2_256_CODE: u64 = 0x12;

fn sha256_cid(codec: u64, bytes: &[u8]) -> Cid {
    let digest = Sha256::digest(bytes);
    let hash = multihash::Multihash::<64>::wrap(SHA2_256_CODE, &digest)
        .expect("a 32-byte SHA-256 digest always fits a 64-byte multihash");
    Cid::new_v1(codec, hash)
}

/// The CIDv1 (codec dag-cbor 0x71, SHA-256) of DAG-CBOR block bytes.
pub fn cid_for_dag_cbor(bytes: &[u8]) -> Cid {
    sha256_cid(DAG_CBOR_CODEC, bytes)
}

/// The CIDv1 (codec raw 0x55, SHA-256) of blob bytes.
pub fn cid_for_raw(bytes: &[u8]) -> Cid {
    sha256_cid(RAW_CODEC, bytes)
}

/// Encode a value as DAG-CBOR and compute its CID in one go.
pub fn encode_with_cid(v: &Value) -> (Cid, Vec<u8>) {
    let bytes = to_dag_cbor(v);
    (cid_for_dag_cbor(&bytes), bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cid_helpers() {
        let c = cid_for_raw(b"hello");
        assert_eq!(c.codec(), RAW_CODEC);
        assert_eq!(c.hash().code(), SHA2_256_CODE);
        assert_eq!(c.version(), cid::Version::V1);
        assert!(c.to_string().starts_with("bafkrei"));
        let d = cid_for_dag_cbor(&[0xa0]);
        assert!(d.to_string().starts_with("bafyrei"));
    }
}
