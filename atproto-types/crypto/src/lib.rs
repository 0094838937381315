//! atproto keys and signatures.
//!
//! atproto uses two elliptic curves, and implementations must support both
//! (<https://atproto.com/specs/cryptography>):
//!
//! * `p256` (NIST P-256, secp256r1), JWT algorithm `ES256`;
//! * `k256` (secp256k1), JWT algorithm `ES256K`.
//!
//! Signatures are ECDSA over the SHA-256 hash of the message, serialised as
//! 64 bytes of compact `r || s` (never DER), and must use the "low-S" form:
//! [`PrivateKey::sign`] always produces low-S signatures and
//! [`PublicKey::verify`] rejects high-S ones.
//!
//! Public keys are shared as compressed points in the "Multikey" form: the
//! multicodec code of the key type (as an unsigned varint) followed by the
//! 33-byte compressed point, encoded as multibase base58btc (a `z` prefix).
//! A `did:key` is `did:key:` followed by that multibase string. Legacy DID
//! documents (verification method types `EcdsaSecp256r1VerificationKey2019`
//! and `EcdsaSecp256k1VerificationKey2019`) carry the bare point in multibase
//! without a multicodec prefix; [`PublicKey::from_legacy_multibase`] reads it.
//!
//! ```
//! use atproto_crypto::{Algorithm, PrivateKey, PublicKey};
//!
//! let key = PrivateKey::generate(Algorithm::K256);
//! let sig = key.sign(b"hello");
//! let did = key.public_key().to_did_key();
//! let public = PublicKey::from_did_key(&did).expect("own did:key parses");
//! assert!(public.verify(b"hello", &sig).is_ok());
//! assert!(public.verify(b"hullo", &sig).is_err());
//! ```

mod algorithm;
mod encoding;
mod error;
mod private;
mod public;

pub use algorithm::Algorithm;
pub use error::{Error, KeyError, KeyKind, VerifyError};
pub use private::PrivateKey;
pub use public::PublicKey;

/// Wrapper that wipes its contents from memory when dropped; used for the
/// secret-bearing return values of [`PrivateKey`]. It dereferences to the
/// wrapped value.
pub use k256::elliptic_curve::zeroize::Zeroizing;

/// Length of a compact `r || s` signature, for both curves.
pub const SIGNATURE_LEN: usize = 64;

/// Length of a compressed SEC1 public key point, for both curves.
pub const COMPRESSED_PUBLIC_KEY_LEN: usize = 33;

/// Length of an uncompressed SEC1 public key point (`0x04 || x || y`).
pub const UNCOMPRESSED_PUBLIC_KEY_LEN: usize = 65;

/// Length of a private key (a big-endian scalar), for both curves.
pub const PRIVATE_KEY_LEN: usize = 32;

/// The `did:key` of a public key given as a SEC1 point (compressed, or
/// uncompressed which is compressed first).
pub fn did_key_for(alg: Algorithm, sec1_point: &[u8]) -> Result<String, KeyError> {
    Ok(PublicKey::from_sec1_bytes(alg, sec1_point)?.to_did_key())
}

/// Verify `signature` over `message` with the key named by a `did:key`.
pub fn verify_with_did_key(did_key: &str, message: &[u8], signature: &[u8]) -> Result<(), Error> {
    let key = PublicKey::from_did_key(did_key)?;
    key.verify(message, signature)?;
    Ok(())
}

/// SHA-256 of `data`: the digest atproto signs.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(data).into()
}
