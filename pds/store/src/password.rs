//! Credential helpers for callers of the store, which itself only keeps
//! what it is given: Argon2id password hashes (PHC strings) for account and
//! app passwords, and SHA-256 hashes of bearer tokens (email, PLC-operation
//! and refresh tokens are never stored in the clear).

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::error::{Result, StoreError};

/// Argon2id cost parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KdfParams {
    /// Memory in KiB.
    pub memory_kib: u32,
    /// Passes.
    pub iterations: u32,
    /// Lanes.
    pub parallelism: u32,
}

impl Default for KdfParams {
    /// OWASP's Argon2id recommendation: 19 MiB, 2 passes, 1 lane.
    fn default() -> Self {
        KdfParams {
            memory_kib: 19 * 1024,
            iterations: 2,
            parallelism: 1,
        }
    }
}

fn argon(params: KdfParams) -> Result<Argon2<'static>> {
    let p = Params::new(
        params.memory_kib,
        params.iterations,
        params.parallelism,
        None,
    )
    .map_err(|e| StoreError::InvalidInput(format!("argon2 parameters: {e}")))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, p))
}

/// Hashes a password with Argon2id and a random 16-byte salt; returns the
/// PHC string (`$argon2id$v=19$m=...`), which records the parameters.
pub fn hash_password(password: &str, params: KdfParams) -> Result<String> {
    let mut salt = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt)
        .map_err(|e| StoreError::InvalidInput(format!("salt: {e}")))?;
    let hash = argon(params)?
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| StoreError::InvalidInput(format!("argon2: {e}")))?;
    Ok(hash.to_string())
}

/// Checks a password against a PHC string made by [`hash_password`] (with
/// whatever parameters it records). A malformed stored hash is an error; a
/// wrong password is `Ok(false)`.
pub fn verify_password(password: &str, phc: &str) -> Result<bool> {
    let parsed =
        PasswordHash::new(phc).map_err(|e| StoreError::Corrupt(format!("password hash: {e}")))?;
    Ok(Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok())
}

/// Hex SHA-256 of a high-entropy bearer token: what the store keeps instead
/// of the token.
pub fn token_hash(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_and_verify() {
        let light = KdfParams {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
        };
        let h = hash_password("hunter2", light).unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=64,t=1,p=1$"), "{h}");
        assert!(verify_password("hunter2", &h).unwrap());
        assert!(!verify_password("hunter3", &h).unwrap());
        assert_ne!(h, hash_password("hunter2", light).unwrap(), "salted");
        assert!(verify_password("x", "not a phc string").is_err());
        assert!(hash_password(
            "x",
            KdfParams {
                memory_kib: 1,
                iterations: 1,
                parallelism: 1
            }
        )
        .is_err());
    }

    #[test]
    fn default_params_are_memory_hard() {
        let h = hash_password("pw", KdfParams::default()).unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify_password("pw", &h).unwrap());
    }

    #[test]
    fn token_hashes() {
        assert_eq!(
            token_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
