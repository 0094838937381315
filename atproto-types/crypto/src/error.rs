//! Errors.

use crate::algorithm::Algorithm;

/// A key could not be parsed or built.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The string does not start with `did:key:`.
    #[error("not a did:key: must start with \"did:key:\"")]
    NotDidKey,
    /// A multibase string was empty or used another base than base58btc.
    #[error("multibase key must start with 'z' (base58btc), found {0}")]
    NotBase58btc(String),
    /// The base58btc payload is not valid base58.
    #[error("invalid base58btc: {0}")]
    Base58(String),
    /// The multicodec prefix is truncated, non-minimal or over-long.
    #[error("malformed multicodec varint prefix")]
    BadVarint,
    /// The multicodec is not a supported key type of the expected kind.
    #[error(
        "unsupported {kind} key multicodec 0x{code:x} (expected {})",
        expected_codes(*.kind)
    )]
    UnsupportedMulticodec {
        /// `public` or `private`.
        kind: KeyKind,
        /// The code found.
        code: u64,
    },
    /// A public key has the wrong length or leading byte.
    #[error("{alg} public key must be {expected}, got {len} bytes{}", first_byte(*.first))]
    PublicKeyLength {
        /// The key's algorithm.
        alg: Algorithm,
        /// What was accepted here.
        expected: &'static str,
        /// The length found.
        len: usize,
        /// The first byte, when there was one.
        first: Option<u8>,
    },
    /// The bytes do not encode a point on the curve.
    #[error("not a valid {0} public key point")]
    InvalidPoint(Algorithm),
    /// A private key is not exactly 32 bytes.
    #[error("private key must be 32 bytes, got {0}")]
    PrivateKeyLength(usize),
    /// A private key is zero or not below the curve order.
    #[error("not a valid {0} private key (zero, or not below the curve order)")]
    InvalidScalar(Algorithm),
    /// Bad hex text.
    #[error("invalid hex: {0}")]
    Hex(&'static str),
    /// A self-describing key names another algorithm than the one required.
    #[error("key is {found}, expected {expected}")]
    AlgorithmMismatch {
        /// The algorithm required by the caller.
        expected: Algorithm,
        /// The algorithm the key names.
        found: Algorithm,
    },
    /// An algorithm name is neither `ES256` nor `ES256K`.
    #[error("unknown algorithm {0:?} (expected ES256 or ES256K)")]
    UnknownAlgorithm(String),
}

/// Whether a multicodec was read for a public or a private key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyKind {
    /// A public key.
    Public,
    /// A private key.
    Private,
}

impl std::fmt::Display for KeyKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            KeyKind::Public => "public",
            KeyKind::Private => "private",
        })
    }
}

fn expected_codes(kind: KeyKind) -> &'static str {
    match kind {
        KeyKind::Public => "p256-pub 0x1200 or secp256k1-pub 0xe7",
        KeyKind::Private => "p256-priv 0x1306 or secp256k1-priv 0x1301",
    }
}

fn first_byte(first: Option<u8>) -> String {
    match first {
        Some(b) => format!(" starting 0x{b:02x}"),
        None => String::new(),
    }
}

/// A signature did not verify.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// Not a 64-byte compact signature (DER encodings are not accepted).
    #[error(
        "signature must be 64 bytes of compact r||s, got {len} bytes{}",
        if *.der { " (looks DER-encoded: DER signatures are not accepted)" } else { "" }
    )]
    Length {
        /// The length found.
        len: usize,
        /// Whether the bytes look like a DER `SEQUENCE`.
        der: bool,
    },
    /// `r` or `s` is zero or not below the curve order.
    #[error("signature r or s is out of range")]
    OutOfRange,
    /// The signature is in high-S form, which atproto forbids.
    #[error("high-S signature (atproto requires low-S)")]
    HighS,
    /// Well-formed, but not a signature of this message by this key.
    #[error("signature does not match the message and key")]
    Mismatch,
}

/// Either error, for helpers that parse a key and verify with it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The key could not be parsed.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The signature did not verify.
    #[error(transparent)]
    Verify(#[from] VerifyError),
}
