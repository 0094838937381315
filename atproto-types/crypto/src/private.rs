//! Private keys: generation, import/export and signing.

use std::fmt;

use k256::ecdsa::signature::hazmat::{PrehashSigner, RandomizedPrehashSigner};
use rand::rngs::OsRng;

use crate::algorithm::Algorithm;
use crate::encoding::{
    hex_decode, hex_encode, multibase_decode, multibase_encode, varint_encode, varint_split,
};
use crate::error::{KeyError, KeyKind};
use crate::public::PublicKey;
use crate::{sha256, Zeroizing, PRIVATE_KEY_LEN, SIGNATURE_LEN};

/// A P-256 or secp256k1 private (signing) key.
///
/// The secret is wiped from memory when the key is dropped. `Debug` prints
/// only the algorithm (`PrivateKey(ES256K, <redacted>)`), and there is no
/// `Display`: the secret leaves only through the explicit export methods,
/// whose results are [`Zeroizing`].
#[derive(Clone)]
pub struct PrivateKey {
    inner: Inner,
}

#[derive(Clone)]
enum Inner {
    P256(p256::ecdsa::SigningKey),
    K256(k256::ecdsa::SigningKey),
}

impl PrivateKey {
    /// A new random key from the operating system's CSPRNG.
    pub fn generate(alg: Algorithm) -> Self {
        let inner = match alg {
            Algorithm::P256 => Inner::P256(p256::ecdsa::SigningKey::random(&mut OsRng)),
            Algorithm::K256 => Inner::K256(k256::ecdsa::SigningKey::random(&mut OsRng)),
        };
        PrivateKey { inner }
    }

    /// A key from its 32 raw big-endian scalar bytes. Rejects other
    /// lengths, zero, and values not below the curve order.
    pub fn from_bytes(alg: Algorithm, bytes: &[u8]) -> Result<Self, KeyError> {
        if bytes.len() != PRIVATE_KEY_LEN {
            return Err(KeyError::PrivateKeyLength(bytes.len()));
        }
        let inner = match alg {
            Algorithm::P256 => p256::ecdsa::SigningKey::from_slice(bytes)
                .map(Inner::P256)
                .map_err(|_| KeyError::InvalidScalar(alg))?,
            Algorithm::K256 => k256::ecdsa::SigningKey::from_slice(bytes)
                .map(Inner::K256)
                .map_err(|_| KeyError::InvalidScalar(alg))?,
        };
        Ok(PrivateKey { inner })
    }

    /// A key from 64 hex digits (either case, no `0x`).
    pub fn from_hex(alg: Algorithm, hex: &str) -> Result<Self, KeyError> {
        let bytes = hex_decode(hex)?;
        Self::from_bytes(alg, &bytes)
    }

    /// The 32 raw scalar bytes. Secret: the returned buffer is wiped when
    /// dropped.
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(match &self.inner {
            Inner::P256(k) => k.to_bytes().to_vec(),
            Inner::K256(k) => k.to_bytes().to_vec(),
        })
    }

    /// The 32 scalar bytes as lower-case hex. Secret: wiped when dropped.
    pub fn to_hex(&self) -> Zeroizing<String> {
        Zeroizing::new(hex_encode(&self.to_bytes()))
    }

    /// A key from its multibase form: `z` + base58btc of the private key
    /// multicodec varint (`p256-priv` 0x1306 or `secp256k1-priv` 0x1301)
    /// followed by the 32 scalar bytes. PLC rotation keys are exchanged
    /// this way.
    pub fn from_multibase(s: &str) -> Result<Self, KeyError> {
        let bytes = multibase_decode(s)?;
        let (code, scalar) = varint_split(&bytes)?;
        let alg =
            Algorithm::from_private_multicodec(code).ok_or(KeyError::UnsupportedMulticodec {
                kind: KeyKind::Private,
                code,
            })?;
        Self::from_bytes(alg, scalar)
    }

    /// The multibase form (see [`PrivateKey::from_multibase`]). Secret:
    /// wiped when dropped.
    pub fn to_multibase(&self) -> Zeroizing<String> {
        let mut bytes = Zeroizing::new(varint_encode(self.algorithm().private_multicodec()));
        bytes.extend_from_slice(&self.to_bytes());
        Zeroizing::new(multibase_encode(&bytes))
    }

    /// The key's algorithm.
    pub fn algorithm(&self) -> Algorithm {
        match self.inner {
            Inner::P256(_) => Algorithm::P256,
            Inner::K256(_) => Algorithm::K256,
        }
    }

    /// The matching public key.
    pub fn public_key(&self) -> PublicKey {
        match &self.inner {
            Inner::P256(k) => PublicKey::from_p256(*k.verifying_key()),
            Inner::K256(k) => PublicKey::from_k256(*k.verifying_key()),
        }
    }

    /// The `did:key` of the public key.
    pub fn did_key(&self) -> String {
        self.public_key().to_did_key()
    }

    /// Sign `message` the atproto way: ECDSA over its SHA-256 hash, with a
    /// deterministic (RFC 6979) nonce, as 64 bytes of compact `r || s`,
    /// always in low-S form.
    pub fn sign(&self, message: &[u8]) -> [u8; SIGNATURE_LEN] {
        self.sign_prehashed(&sha256(message))
    }

    /// Like [`PrivateKey::sign`], for a caller that already holds the
    /// SHA-256 digest of the message.
    pub fn sign_prehashed(&self, digest: &[u8; 32]) -> [u8; SIGNATURE_LEN] {
        let mut out = [0u8; SIGNATURE_LEN];
        match &self.inner {
            Inner::P256(k) => {
                let sig = sign_p256(k, digest);
                let sig = sig.normalize_s().unwrap_or(sig);
                out.copy_from_slice(&sig.to_bytes());
            }
            Inner::K256(k) => {
                let sig = sign_k256(k, digest);
                let sig = sig.normalize_s().unwrap_or(sig);
                out.copy_from_slice(&sig.to_bytes());
            }
        }
        out
    }
}

// Signing a 32-byte digest fails only when the nonce yields r = 0 or s = 0,
// which has negligible probability; the deterministic nonce is then retried
// with fresh randomness rather than panicking.

fn sign_p256(key: &p256::ecdsa::SigningKey, digest: &[u8; 32]) -> p256::ecdsa::Signature {
    match key.sign_prehash(digest) {
        Ok(sig) => sig,
        Err(_) => loop {
            if let Ok(sig) = key.sign_prehash_with_rng(&mut OsRng, digest) {
                break sig;
            }
        },
    }
}

fn sign_k256(key: &k256::ecdsa::SigningKey, digest: &[u8; 32]) -> k256::ecdsa::Signature {
    match key.sign_prehash(digest) {
        Ok(sig) => sig,
        Err(_) => loop {
            if let Ok(sig) = key.sign_prehash_with_rng(&mut OsRng, digest) {
                break sig;
            }
        },
    }
}

/// `PrivateKey(ES256K, <redacted>)`.
impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PrivateKey({}, <redacted>)", self.algorithm())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        for alg in Algorithm::ALL {
            let key = PrivateKey::generate(alg);
            let hex = key.to_hex();
            let debug = format!("{key:?}");
            assert_eq!(debug, format!("PrivateKey({}, <redacted>)", alg.jwt_name()));
            assert!(!debug.contains(hex.as_str()));
            assert!(!debug.contains(&hex.to_uppercase()));
            assert!(!debug.contains(key.to_multibase().as_str()));
            let pretty = format!("{key:#?}");
            assert!(!pretty.contains(hex.as_str()));
            let wrapped = format!("{:?}", Some(&key));
            assert!(!wrapped.contains(hex.as_str()));
        }
    }

    #[test]
    fn export_round_trips() {
        for alg in Algorithm::ALL {
            let key = PrivateKey::generate(alg);
            let public = key.public_key();
            let bytes = key.to_bytes();
            assert_eq!(bytes.len(), 32);
            let from_bytes = PrivateKey::from_bytes(alg, &bytes).expect("own bytes");
            assert_eq!(from_bytes.public_key(), public);
            let from_hex = PrivateKey::from_hex(alg, &key.to_hex()).expect("own hex");
            assert_eq!(from_hex.public_key(), public);
            let upper = key.to_hex().to_uppercase();
            assert_eq!(
                PrivateKey::from_hex(alg, &upper).map(|k| k.public_key()),
                Ok(public.clone())
            );
            let mb = key.to_multibase();
            let from_mb = PrivateKey::from_multibase(&mb).expect("own multibase");
            assert_eq!(from_mb.algorithm(), alg);
            assert_eq!(from_mb.public_key(), public);
            assert_eq!(key.did_key(), public.to_did_key());
            // Deterministic nonces: the same key signs the same message the same way.
            assert_eq!(key.sign(b"x"), from_mb.sign(b"x"));
        }
    }

    #[test]
    fn private_multibase_prefixes() {
        // 0x1301 and 0x1306 as varints, then 32 bytes.
        let k = PrivateKey::from_bytes(Algorithm::K256, &[7u8; 32]).expect("valid scalar");
        let decoded = multibase_decode(&k.to_multibase()).expect("own multibase");
        assert_eq!(&decoded[..2], &[0x81, 0x26]);
        assert_eq!(decoded.len(), 34);
        let p = PrivateKey::from_bytes(Algorithm::P256, &[7u8; 32]).expect("valid scalar");
        let decoded = multibase_decode(&p.to_multibase()).expect("own multibase");
        assert_eq!(&decoded[..2], &[0x86, 0x26]);

        // A public key multibase is not a private key.
        let public_mb = k.public_key().to_multibase();
        assert_eq!(
            PrivateKey::from_multibase(&public_mb).err(),
            Some(KeyError::UnsupportedMulticodec {
                kind: KeyKind::Private,
                code: 0xe7
            })
        );
        // And a private key multibase is not a public key.
        assert!(PublicKey::from_multibase(&k.to_multibase()).is_err());
        let mut short = vec![0x81, 0x26];
        short.extend_from_slice(&[7u8; 31]);
        assert_eq!(
            PrivateKey::from_multibase(&multibase_encode(&short)).err(),
            Some(KeyError::PrivateKeyLength(31))
        );
    }

    #[test]
    fn bad_private_keys_are_rejected() {
        for alg in Algorithm::ALL {
            assert_eq!(
                PrivateKey::from_bytes(alg, &[0u8; 32]).err(),
                Some(KeyError::InvalidScalar(alg))
            );
            assert_eq!(
                PrivateKey::from_bytes(alg, &[0xffu8; 32]).err(),
                Some(KeyError::InvalidScalar(alg))
            );
            assert_eq!(
                PrivateKey::from_bytes(alg, &[1u8; 31]).err(),
                Some(KeyError::PrivateKeyLength(31))
            );
            assert_eq!(
                PrivateKey::from_bytes(alg, &[1u8; 33]).err(),
                Some(KeyError::PrivateKeyLength(33))
            );
            assert!(matches!(
                PrivateKey::from_hex(alg, "xyz"),
                Err(KeyError::Hex(_))
            ));
            assert!(matches!(
                PrivateKey::from_hex(alg, &"g".repeat(64)),
                Err(KeyError::Hex(_))
            ));
            assert_eq!(
                PrivateKey::from_hex(alg, "0102").err(),
                Some(KeyError::PrivateKeyLength(2))
            );
        }
    }

    #[test]
    fn scalar_one_gives_the_generator() {
        // Scalar 1: the public key is the generator point G.
        let mut one = [0u8; 32];
        one[31] = 1;
        let key = PrivateKey::from_bytes(Algorithm::K256, &one).expect("scalar 1");
        assert_eq!(
            hex_encode(&key.public_key().to_compressed_bytes()),
            "0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798"
        );
        let key = PrivateKey::from_bytes(Algorithm::P256, &one).expect("scalar 1");
        assert_eq!(
            hex_encode(&key.public_key().to_compressed_bytes()),
            "036b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296"
        );
    }
}
