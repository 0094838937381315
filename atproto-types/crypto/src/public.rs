//! Public keys: parsing, encoding and signature verification.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

use k256::ecdsa::signature::hazmat::PrehashVerifier;

use crate::algorithm::Algorithm;
use crate::encoding::{multibase_decode, multibase_encode, varint_encode, varint_split};
use crate::error::{KeyError, KeyKind, VerifyError};
use crate::{sha256, COMPRESSED_PUBLIC_KEY_LEN, SIGNATURE_LEN, UNCOMPRESSED_PUBLIC_KEY_LEN};

const DID_KEY_PREFIX: &str = "did:key:";

/// A P-256 or secp256k1 public key.
///
/// Equality and hashing follow the algorithm and the point. `Debug` and
/// `Display` print the `did:key`.
#[derive(Clone)]
pub struct PublicKey {
    inner: Inner,
    compressed: [u8; COMPRESSED_PUBLIC_KEY_LEN],
}

#[derive(Clone)]
enum Inner {
    P256(p256::ecdsa::VerifyingKey),
    K256(k256::ecdsa::VerifyingKey),
}

impl PublicKey {
    pub(crate) fn from_p256(key: p256::ecdsa::VerifyingKey) -> Self {
        let compressed = compress(key.to_encoded_point(true).as_bytes());
        PublicKey {
            inner: Inner::P256(key),
            compressed,
        }
    }

    pub(crate) fn from_k256(key: k256::ecdsa::VerifyingKey) -> Self {
        let compressed = compress(key.to_encoded_point(true).as_bytes());
        PublicKey {
            inner: Inner::K256(key),
            compressed,
        }
    }

    /// The key's algorithm.
    pub fn algorithm(&self) -> Algorithm {
        match self.inner {
            Inner::P256(_) => Algorithm::P256,
            Inner::K256(_) => Algorithm::K256,
        }
    }

    /// A key from a compressed SEC1 point (33 bytes, `0x02`/`0x03` prefix).
    pub fn from_compressed_bytes(alg: Algorithm, bytes: &[u8]) -> Result<Self, KeyError> {
        if bytes.len() != COMPRESSED_PUBLIC_KEY_LEN || !matches!(bytes[0], 0x02 | 0x03) {
            return Err(KeyError::PublicKeyLength {
                alg,
                expected: "a 33-byte compressed point starting 0x02 or 0x03",
                len: bytes.len(),
                first: bytes.first().copied(),
            });
        }
        Self::parse_sec1(alg, bytes)
    }

    /// A key from a SEC1 point, compressed (33 bytes, `0x02`/`0x03`) or
    /// uncompressed (65 bytes, `0x04`).
    pub fn from_sec1_bytes(alg: Algorithm, bytes: &[u8]) -> Result<Self, KeyError> {
        let shape_ok = match bytes.len() {
            COMPRESSED_PUBLIC_KEY_LEN => matches!(bytes[0], 0x02 | 0x03),
            UNCOMPRESSED_PUBLIC_KEY_LEN => bytes[0] == 0x04,
            _ => false,
        };
        if !shape_ok {
            return Err(KeyError::PublicKeyLength {
                alg,
                expected:
                    "a 33-byte compressed point (0x02/0x03) or a 65-byte uncompressed point (0x04)",
                len: bytes.len(),
                first: bytes.first().copied(),
            });
        }
        Self::parse_sec1(alg, bytes)
    }

    fn parse_sec1(alg: Algorithm, bytes: &[u8]) -> Result<Self, KeyError> {
        match alg {
            Algorithm::P256 => p256::ecdsa::VerifyingKey::from_sec1_bytes(bytes)
                .map(Self::from_p256)
                .map_err(|_| KeyError::InvalidPoint(alg)),
            Algorithm::K256 => k256::ecdsa::VerifyingKey::from_sec1_bytes(bytes)
                .map(Self::from_k256)
                .map_err(|_| KeyError::InvalidPoint(alg)),
        }
    }

    /// The compressed SEC1 point (33 bytes).
    pub fn to_compressed_bytes(&self) -> [u8; COMPRESSED_PUBLIC_KEY_LEN] {
        self.compressed
    }

    /// The uncompressed SEC1 point (65 bytes: `0x04 || x || y`), e.g. for a
    /// JWK.
    pub fn to_uncompressed_bytes(&self) -> [u8; UNCOMPRESSED_PUBLIC_KEY_LEN] {
        let mut out = [0u8; UNCOMPRESSED_PUBLIC_KEY_LEN];
        match &self.inner {
            Inner::P256(k) => out.copy_from_slice(k.to_encoded_point(false).as_bytes()),
            Inner::K256(k) => out.copy_from_slice(k.to_encoded_point(false).as_bytes()),
        }
        out
    }

    /// A key from its Multikey form: `z` + base58btc of the public key
    /// multicodec varint (`p256-pub` 0x1200 or `secp256k1-pub` 0xe7)
    /// followed by the 33-byte compressed point. This is what DID documents
    /// carry in `publicKeyMultibase` with `"type": "Multikey"`.
    pub fn from_multibase(s: &str) -> Result<Self, KeyError> {
        let bytes = multibase_decode(s)?;
        let (code, point) = varint_split(&bytes)?;
        let alg =
            Algorithm::from_public_multicodec(code).ok_or(KeyError::UnsupportedMulticodec {
                kind: KeyKind::Public,
                code,
            })?;
        Self::from_compressed_bytes(alg, point)
    }

    /// The Multikey form (see [`PublicKey::from_multibase`]).
    pub fn to_multibase(&self) -> String {
        let mut bytes = varint_encode(self.algorithm().public_multicodec());
        bytes.extend_from_slice(&self.compressed);
        multibase_encode(&bytes)
    }

    /// A key from a legacy DID document `publicKeyMultibase`: `z` + base58btc
    /// of the bare SEC1 point, compressed or uncompressed, with no
    /// multicodec prefix. The algorithm comes from the verification method
    /// type (see [`Algorithm::from_legacy_verification_method_type`]).
    pub fn from_legacy_multibase(alg: Algorithm, s: &str) -> Result<Self, KeyError> {
        let bytes = multibase_decode(s)?;
        Self::from_sec1_bytes(alg, &bytes)
    }

    /// A key from a `did:key` (`did:key:` + the Multikey form).
    pub fn from_did_key(did: &str) -> Result<Self, KeyError> {
        let multibase = did
            .strip_prefix(DID_KEY_PREFIX)
            .ok_or(KeyError::NotDidKey)?;
        Self::from_multibase(multibase)
    }

    /// The `did:key`.
    pub fn to_did_key(&self) -> String {
        let mut out = String::from(DID_KEY_PREFIX);
        out.push_str(&self.to_multibase());
        out
    }

    /// A key from either self-describing form: a `did:key` or a Multikey.
    pub fn parse(s: &str) -> Result<Self, KeyError> {
        if s.starts_with(DID_KEY_PREFIX) {
            Self::from_did_key(s)
        } else {
            Self::from_multibase(s)
        }
    }

    /// A key whose algorithm is known from context (a JWT `alg` header, a
    /// legacy verification method type, a command-line flag): a `did:key`,
    /// a Multikey, or a legacy bare multibase point. A `did:key` or
    /// Multikey naming another algorithm is rejected.
    pub fn parse_with_algorithm(alg: Algorithm, s: &str) -> Result<Self, KeyError> {
        let key = if s.starts_with(DID_KEY_PREFIX) {
            Self::from_did_key(s)?
        } else {
            let bytes = multibase_decode(s)?;
            match bytes.len() {
                COMPRESSED_PUBLIC_KEY_LEN | UNCOMPRESSED_PUBLIC_KEY_LEN => {
                    Self::from_sec1_bytes(alg, &bytes)?
                }
                _ => Self::from_multibase(s)?,
            }
        };
        if key.algorithm() != alg {
            return Err(KeyError::AlgorithmMismatch {
                expected: alg,
                found: key.algorithm(),
            });
        }
        Ok(key)
    }

    /// Verify an atproto signature: `signature` must be exactly 64 bytes of
    /// compact `r || s`, low-S, over the SHA-256 hash of `message`.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), VerifyError> {
        self.verify_prehashed(&sha256(message), signature)
    }

    /// Like [`PublicKey::verify`], for a caller that already holds the
    /// SHA-256 digest of the message.
    pub fn verify_prehashed(&self, digest: &[u8; 32], signature: &[u8]) -> Result<(), VerifyError> {
        if signature.len() != SIGNATURE_LEN {
            return Err(VerifyError::Length {
                len: signature.len(),
                der: looks_like_der(signature),
            });
        }
        match &self.inner {
            Inner::P256(key) => {
                let sig = p256::ecdsa::Signature::from_slice(signature)
                    .map_err(|_| VerifyError::OutOfRange)?;
                if sig.normalize_s().is_some() {
                    return Err(VerifyError::HighS);
                }
                key.verify_prehash(digest, &sig)
                    .map_err(|_| VerifyError::Mismatch)
            }
            Inner::K256(key) => {
                let sig = k256::ecdsa::Signature::from_slice(signature)
                    .map_err(|_| VerifyError::OutOfRange)?;
                if sig.normalize_s().is_some() {
                    return Err(VerifyError::HighS);
                }
                key.verify_prehash(digest, &sig)
                    .map_err(|_| VerifyError::Mismatch)
            }
        }
    }
}

/// A DER `SEQUENCE` whose length byte covers the rest of the input.
fn looks_like_der(sig: &[u8]) -> bool {
    sig.len() >= 2 && sig[0] == 0x30 && usize::from(sig[1]) == sig.len() - 2
}

fn compress(encoded: &[u8]) -> [u8; COMPRESSED_PUBLIC_KEY_LEN] {
    let mut out = [0u8; COMPRESSED_PUBLIC_KEY_LEN];
    // A compressed encoding of a valid (non-identity) key is always 33
    // bytes; the copy is bounded either way.
    let n = encoded.len().min(COMPRESSED_PUBLIC_KEY_LEN);
    out[..n].copy_from_slice(&encoded[..n]);
    out
}

impl PartialEq for PublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.algorithm() == other.algorithm() && self.compressed == other.compressed
    }
}

impl Eq for PublicKey {}

impl Hash for PublicKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.algorithm().hash(state);
        self.compressed.hash(state);
    }
}

/// `PublicKey(did:key:…)`.
impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.to_did_key())
    }
}

/// The `did:key`.
impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_did_key())
    }
}

/// Parses a `did:key` or a Multikey (see [`PublicKey::parse`]).
impl FromStr for PublicKey {
    type Err = KeyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::PrivateKey;

    /// The order n of each curve, big-endian.
    fn order(alg: Algorithm) -> [u8; 32] {
        let hex = match alg {
            Algorithm::P256 => "ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551",
            Algorithm::K256 => "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141",
        };
        let bytes = crate::encoding::hex_decode(hex).expect("constant hex");
        let mut out = [0u8; 32];
        out.copy_from_slice(&bytes);
        out
    }

    /// n - s, big-endian, for 0 < s < n.
    fn negate_s(alg: Algorithm, s: &[u8]) -> [u8; 32] {
        let n = order(alg);
        let mut out = [0u8; 32];
        let mut borrow = 0i16;
        for i in (0..32).rev() {
            let mut d = i16::from(n[i]) - i16::from(s[i]) - borrow;
            borrow = 0;
            if d < 0 {
                d += 256;
                borrow = 1;
            }
            out[i] = d as u8;
        }
        out
    }

    fn is_low_s(alg: Algorithm, s: &[u8]) -> bool {
        // s <= n/2  <=>  s <= n - s
        s <= &negate_s(alg, s)[..]
    }

    fn der_encode(sig: &[u8; 64]) -> Vec<u8> {
        fn int(bytes: &[u8]) -> Vec<u8> {
            let mut b: Vec<u8> = bytes.iter().copied().skip_while(|&x| x == 0).collect();
            if b.first().is_none_or(|&x| x & 0x80 != 0) {
                b.insert(0, 0);
            }
            let mut out = vec![0x02, b.len() as u8];
            out.extend(b);
            out
        }
        let mut body = int(&sig[..32]);
        body.extend(int(&sig[32..]));
        let mut out = vec![0x30, body.len() as u8];
        out.extend(body);
        out
    }

    #[test]
    fn sign_verify_round_trip() {
        for alg in Algorithm::ALL {
            let key = PrivateKey::generate(alg);
            let public = key.public_key();
            assert_eq!(public.algorithm(), alg);
            for msg in [&b""[..], b"hello", &[0u8; 1000]] {
                let sig = key.sign(msg);
                assert_eq!(public.verify(msg, &sig), Ok(()), "{alg}");
                assert_eq!(public.verify_prehashed(&sha256(msg), &sig), Ok(()));
            }
        }
    }

    #[test]
    fn signatures_are_always_low_s() {
        for alg in Algorithm::ALL {
            let key = PrivateKey::generate(alg);
            let public = key.public_key();
            for i in 0u32..200 {
                let msg = i.to_be_bytes();
                let sig = key.sign(&msg);
                assert!(is_low_s(alg, &sig[32..]), "{alg} message {i}: high-S");
                assert_eq!(public.verify(&msg, &sig), Ok(()));
            }
        }
    }

    #[test]
    fn tampering_is_rejected() {
        for alg in Algorithm::ALL {
            let key = PrivateKey::generate(alg);
            let public = key.public_key();
            let sig = key.sign(b"message");
            assert_eq!(public.verify(b"messagf", &sig), Err(VerifyError::Mismatch));
            for i in [0, 31, 32, 63] {
                let mut bad = sig;
                bad[i] ^= 0x01;
                assert!(public.verify(b"message", &bad).is_err(), "{alg} byte {i}");
            }
            let other = PrivateKey::generate(alg).public_key();
            assert_eq!(other.verify(b"message", &sig), Err(VerifyError::Mismatch));
            assert_eq!(
                public.verify(b"message", &sig[..63]),
                Err(VerifyError::Length {
                    len: 63,
                    der: false
                })
            );
            let mut long = sig.to_vec();
            long.push(0);
            assert!(matches!(
                public.verify(b"message", &long),
                Err(VerifyError::Length { len: 65, .. })
            ));
            assert_eq!(
                public.verify(b"message", &[0u8; 64]),
                Err(VerifyError::OutOfRange)
            );
            let mut r_is_n = [0u8; 64];
            r_is_n[..32].copy_from_slice(&order(alg));
            r_is_n[32..].copy_from_slice(&sig[32..]);
            assert_eq!(
                public.verify(b"message", &r_is_n),
                Err(VerifyError::OutOfRange)
            );
        }
    }

    #[test]
    fn high_s_is_rejected() {
        for alg in Algorithm::ALL {
            let key = PrivateKey::generate(alg);
            let public = key.public_key();
            for i in 0u8..20 {
                let msg = [i];
                let sig = key.sign(&msg);
                let mut high = sig;
                high[32..].copy_from_slice(&negate_s(alg, &sig[32..]));
                assert_ne!(high, sig);
                assert_eq!(public.verify(&msg, &high), Err(VerifyError::HighS), "{alg}");
            }
        }
    }

    #[test]
    fn der_is_rejected() {
        for alg in Algorithm::ALL {
            let key = PrivateKey::generate(alg);
            let public = key.public_key();
            let sig = key.sign(b"der");
            let der = der_encode(&sig);
            assert_eq!(der[0], 0x30);
            let err = public.verify(b"der", &der);
            assert_eq!(
                err,
                Err(VerifyError::Length {
                    len: der.len(),
                    der: true
                })
            );
            assert!(err
                .err()
                .is_some_and(|e| e.to_string().contains("DER signatures are not accepted")));
        }
    }

    #[test]
    fn did_key_and_multibase_round_trip() {
        for alg in Algorithm::ALL {
            let public = PrivateKey::generate(alg).public_key();
            let did = public.to_did_key();
            let expected_prefix = match alg {
                Algorithm::P256 => "did:key:zDn",
                Algorithm::K256 => "did:key:zQ3s",
            };
            assert!(did.starts_with(expected_prefix), "{did}");
            assert_eq!(PublicKey::from_did_key(&did), Ok(public.clone()));
            assert_eq!(did.parse::<PublicKey>(), Ok(public.clone()));
            let mb = public.to_multibase();
            assert_eq!(PublicKey::from_multibase(&mb), Ok(public.clone()));
            assert_eq!(PublicKey::parse(&mb), Ok(public.clone()));
            assert_eq!(
                PublicKey::from_compressed_bytes(alg, &public.to_compressed_bytes()),
                Ok(public.clone())
            );
            assert_eq!(
                PublicKey::from_sec1_bytes(alg, &public.to_uncompressed_bytes()),
                Ok(public.clone())
            );
            assert_eq!(format!("{public:?}"), format!("PublicKey({did})"));
            assert_eq!(public.to_string(), did);

            let legacy = multibase_encode(&public.to_compressed_bytes());
            assert_eq!(
                PublicKey::from_legacy_multibase(alg, &legacy),
                Ok(public.clone())
            );
            let legacy_uncompressed = multibase_encode(&public.to_uncompressed_bytes());
            assert_eq!(
                PublicKey::from_legacy_multibase(alg, &legacy_uncompressed),
                Ok(public.clone())
            );
            for form in [did.as_str(), mb.as_str(), legacy.as_str()] {
                assert_eq!(
                    PublicKey::parse_with_algorithm(alg, form),
                    Ok(public.clone())
                );
            }
            let other = match alg {
                Algorithm::P256 => Algorithm::K256,
                Algorithm::K256 => Algorithm::P256,
            };
            for form in [did.as_str(), mb.as_str()] {
                assert_eq!(
                    PublicKey::parse_with_algorithm(other, form),
                    Err(KeyError::AlgorithmMismatch {
                        expected: other,
                        found: alg
                    })
                );
            }
        }
    }

    #[test]
    fn bad_keys_are_rejected() {
        let public = PrivateKey::generate(Algorithm::K256).public_key();
        let did = public.to_did_key();
        let mb = public.to_multibase();

        assert_eq!(
            PublicKey::from_did_key(&did.replace("did:key:", "did:web:")),
            Err(KeyError::NotDidKey)
        );
        assert_eq!(PublicKey::from_did_key(&mb), Err(KeyError::NotDidKey));
        assert_eq!(
            PublicKey::from_did_key("did:key:"),
            Err(KeyError::NotBase58btc("an empty string".to_owned()))
        );
        assert!(matches!(
            PublicKey::from_did_key(&format!("did:key:m{}", &mb[1..])),
            Err(KeyError::NotBase58btc(_))
        ));
        assert!(matches!(
            PublicKey::from_did_key(&format!("{did}0")),
            Err(KeyError::Base58(_))
        ));
        assert!(PublicKey::from_did_key(&format!(" {did}")).is_err());
        assert!(PublicKey::from_did_key(&format!("{did} ")).is_err());

        // Wrong multicodecs: ed25519-pub, a private key code, none at all.
        let point = public.to_compressed_bytes();
        for (prefix, code) in [(vec![0xed, 0x01], 0xed), (vec![0x81, 0x26], 0x1301)] {
            let mut bytes = prefix;
            bytes.extend_from_slice(&point);
            assert_eq!(
                PublicKey::from_multibase(&multibase_encode(&bytes)),
                Err(KeyError::UnsupportedMulticodec {
                    kind: KeyKind::Public,
                    code
                })
            );
        }
        assert!(PublicKey::from_multibase(&multibase_encode(&point)).is_err());

        // Wrong lengths behind a correct prefix.
        let mut short = vec![0xe7, 0x01];
        short.extend_from_slice(&point[..32]);
        assert!(matches!(
            PublicKey::from_multibase(&multibase_encode(&short)),
            Err(KeyError::PublicKeyLength { len: 32, .. })
        ));
        let mut long = vec![0xe7, 0x01];
        long.extend_from_slice(&point);
        long.push(0);
        assert!(matches!(
            PublicKey::from_multibase(&multibase_encode(&long)),
            Err(KeyError::PublicKeyLength { len: 34, .. })
        ));
        // Uncompressed points are not Multikey.
        let mut uncompressed = vec![0xe7, 0x01];
        uncompressed.extend_from_slice(&public.to_uncompressed_bytes());
        assert!(matches!(
            PublicKey::from_multibase(&multibase_encode(&uncompressed)),
            Err(KeyError::PublicKeyLength { len: 65, .. })
        ));
        // Right shape, not on the curve (x = 5 is not on secp256k1).
        let mut off_curve = vec![0xe7, 0x01, 0x02];
        off_curve.extend_from_slice(&[0u8; 31]);
        off_curve.push(5);
        assert_eq!(
            PublicKey::from_multibase(&multibase_encode(&off_curve)),
            Err(KeyError::InvalidPoint(Algorithm::K256))
        );
        // A bad leading byte.
        let mut bad_tag = vec![0xe7, 0x01, 0x04];
        bad_tag.extend_from_slice(&point[1..]);
        assert!(matches!(
            PublicKey::from_multibase(&multibase_encode(&bad_tag)),
            Err(KeyError::PublicKeyLength {
                first: Some(0x04),
                ..
            })
        ));
        assert!(PublicKey::from_sec1_bytes(Algorithm::P256, &[]).is_err());
        assert!(PublicKey::from_sec1_bytes(Algorithm::P256, &[0x00]).is_err());
    }

    #[test]
    fn equality_and_hash() {
        use std::collections::HashSet;
        let a = PrivateKey::generate(Algorithm::P256).public_key();
        let b = PrivateKey::generate(Algorithm::P256).public_key();
        let set: HashSet<PublicKey> = [a.clone(), a.clone(), b.clone()].into_iter().collect();
        assert_eq!(set.len(), 2);
        assert_ne!(a, b);
    }
}
