//! Account signing keys encrypted at rest.
//!
//! The encryption key is derived with HKDF-SHA256 from the master secret
//! (`PDS_KEY_ENCRYPTION_SECRET`); each key is sealed with
//! ChaCha20-Poly1305 under a random nonce, with the account's DID as
//! associated data (a ciphertext moved to another account does not open).
//! Layout: `version (1) || nonce (12) || ciphertext+tag`.

use atproto_types::crypto::{Algorithm, PrivateKey};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use hkdf::Hkdf;
use rand::RngCore;
use sha2::Sha256;

const VERSION: u8 = 1;
const NONCE_LEN: usize = 12;
const HKDF_SALT: &[u8] = b"atproto-pds signing-key encryption";
const HKDF_INFO: &[u8] = b"chacha20poly1305 v1";

/// Key encryption failures.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyCipherError {
    #[error("encrypted signing key is malformed")]
    Malformed,
    #[error("encrypted signing key does not open (wrong PDS_KEY_ENCRYPTION_SECRET or another account's key)")]
    Open,
    #[error("encrypting the signing key failed")]
    Seal,
    #[error("decrypted signing key is not a valid key: {0}")]
    Key(String),
}

/// Seals and opens account signing keys.
pub struct KeyCipher {
    aead: ChaCha20Poly1305,
}

impl std::fmt::Debug for KeyCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyCipher")
    }
}

impl KeyCipher {
    /// The cipher for a master secret.
    pub fn new(master_secret: &str) -> KeyCipher {
        let hk = Hkdf::<Sha256>::new(Some(HKDF_SALT), master_secret.as_bytes());
        let mut okm = [0u8; 32];
        // 32 bytes is far below HKDF-SHA256's output limit; expand cannot fail.
        let _ = hk.expand(HKDF_INFO, &mut okm);
        KeyCipher {
            aead: ChaCha20Poly1305::new(&Key::from(okm)),
        }
    }

    /// Encrypts `key` for account `did`.
    pub fn seal(&self, did: &str, key: &PrivateKey) -> Result<Vec<u8>, KeyCipherError> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::thread_rng().fill_bytes(&mut nonce);
        let plain = key.to_bytes();
        let mut msg = Vec::with_capacity(1 + plain.len());
        msg.push(match key.algorithm() {
            Algorithm::K256 => 0u8,
            Algorithm::P256 => 1u8,
        });
        msg.extend_from_slice(&plain);
        let sealed = self
            .aead
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: &msg,
                    aad: did.as_bytes(),
                },
            )
            .map_err(|_| KeyCipherError::Seal);
        msg.iter_mut().for_each(|b| *b = 0);
        let ct = sealed?;
        let mut out = Vec::with_capacity(1 + NONCE_LEN + ct.len());
        out.push(VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        Ok(out)
    }

    /// Decrypts the signing key of account `did`.
    pub fn open(&self, did: &str, sealed: &[u8]) -> Result<PrivateKey, KeyCipherError> {
        let (version, rest) = sealed.split_first().ok_or(KeyCipherError::Malformed)?;
        if *version != VERSION || rest.len() < NONCE_LEN {
            return Err(KeyCipherError::Malformed);
        }
        let (nonce, ct) = rest.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| KeyCipherError::Malformed)?;
        let mut plain = self
            .aead
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: ct,
                    aad: did.as_bytes(),
                },
            )
            .map_err(|_| KeyCipherError::Open)?;
        let result = match plain.split_first() {
            Some((0, bytes)) => PrivateKey::from_bytes(Algorithm::K256, bytes),
            Some((1, bytes)) => PrivateKey::from_bytes(Algorithm::P256, bytes),
            _ => {
                plain.iter_mut().for_each(|b| *b = 0);
                return Err(KeyCipherError::Malformed);
            }
        }
        .map_err(|e| KeyCipherError::Key(e.to_string()));
        plain.iter_mut().for_each(|b| *b = 0);
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_binding() {
        let c = KeyCipher::new("0123456789abcdef0123456789abcdef");
        for alg in Algorithm::ALL {
            let key = PrivateKey::generate(alg);
            let sealed = c.seal("did:plc:alice", &key).unwrap();
            assert_eq!(sealed[0], VERSION);
            let plain_hex = key.to_hex().to_string();
            let sealed_hex: String = sealed.iter().map(|b| format!("{b:02x}")).collect();
            assert!(
                !sealed_hex.contains(&plain_hex),
                "the key is not in the clear"
            );
            let opened = c.open("did:plc:alice", &sealed).unwrap();
            assert_eq!(opened.did_key(), key.did_key());
            // Another account's DID, another master secret, tampering: refused.
            assert_eq!(
                c.open("did:plc:bob", &sealed).unwrap_err(),
                KeyCipherError::Open
            );
            let other = KeyCipher::new("another secret of at least 32 chars!!");
            assert_eq!(
                other.open("did:plc:alice", &sealed).unwrap_err(),
                KeyCipherError::Open
            );
            let mut bad = sealed.clone();
            if let Some(last) = bad.last_mut() {
                *last ^= 1;
            }
            assert_eq!(
                c.open("did:plc:alice", &bad).unwrap_err(),
                KeyCipherError::Open
            );
        }
        assert_eq!(
            c.open("did:plc:a", &[]).unwrap_err(),
            KeyCipherError::Malformed
        );
        assert_eq!(
            c.open("did:plc:a", &[2, 0, 0]).unwrap_err(),
            KeyCipherError::Malformed
        );
        // Nonces are random: sealing twice differs.
        let key = PrivateKey::generate(Algorithm::K256);
        assert_ne!(
            c.seal("did:plc:a", &key).unwrap(),
            c.seal("did:plc:a", &key).unwrap()
        );
    }
}
