//! Credential helpers for callers of the store, which itself only keeps
//! what it is given: Argon2id password hashes (PHC strings) for account and
//! app passwords, and SHA-256 hashes of bearer tokens (email, PLC-operation
//! and refresh tokens are never stored in the clear).
//!
//! # Memory
//!
//! Argon2id works in `memory_kib` of scratch memory (19 MiB by default).
//! At most one hash per core (up to 4) runs at once ([`KdfMemory`]; more
//! wait for a slot, they are CPU-bound anyway), so concurrent logins cost
//! a bounded few tens of MiB. The `pds` binary also fixes glibc's mmap
//! threshold, so these buffers are mapped and unmapped per hash instead of
//! staying resident in the arenas of the threads that ran them.

use std::sync::{Condvar, Mutex, MutexGuard, OnceLock, PoisonError};

use argon2::password_hash::{
    self, Decimal, Ident, Output, ParamsString, PasswordHash, PasswordHasher, PasswordVerifier,
    Salt, SaltString,
};
use argon2::{Algorithm, Argon2, Block, Params, Version};
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

/// The process-wide limit on concurrent Argon2 hashes (see the module
/// docs): each hash allocates its scratch memory while it holds a slot and
/// frees it before giving the slot back.
struct KdfMemory {
    in_use: Mutex<usize>,
    released: Condvar,
    /// Hashes that may run at once.
    max: usize,
    /// The most that ever ran at once (for tests).
    peak: Mutex<usize>,
}

/// A slot, given back when dropped (also on panic).
struct Slot<'a>(&'a KdfMemory);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        *self.0.lock() -= 1;
        self.0.released.notify_one();
    }
}

impl KdfMemory {
    fn new(max: usize) -> KdfMemory {
        KdfMemory {
            in_use: Mutex::new(0),
            released: Condvar::new(),
            max: max.max(1),
            peak: Mutex::new(0),
        }
    }

    fn global() -> &'static KdfMemory {
        static LIMIT: OnceLock<KdfMemory> = OnceLock::new();
        LIMIT.get_or_init(|| {
            let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
            KdfMemory::new(cores.min(4))
        })
    }

    fn lock(&self) -> MutexGuard<'_, usize> {
        self.in_use.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits for a free slot.
    fn slot(&self) -> Slot<'_> {
        let mut in_use = self.lock();
        while *in_use >= self.max {
            in_use = self
                .released
                .wait(in_use)
                .unwrap_or_else(PoisonError::into_inner);
        }
        *in_use += 1;
        let mut peak = self.peak.lock().unwrap_or_else(PoisonError::into_inner);
        *peak = (*peak).max(*in_use);
        Slot(self)
    }

    /// Runs `f` on `blocks` fresh scratch blocks, holding a slot.
    fn with<R>(&self, blocks: usize, f: impl FnOnce(&mut [Block]) -> R) -> R {
        let _slot = self.slot();
        let mut memory = vec![Block::default(); blocks];
        f(&mut memory)
    }
}

/// Argon2 run under [`KdfMemory`]'s limit; otherwise the same
/// computation and PHC strings as [`Argon2`]'s own [`PasswordHasher`]
/// (verification comes from `password_hash`'s blanket
/// [`PasswordVerifier`]).
struct PooledArgon2 {
    algorithm: Algorithm,
    version: Version,
    params: Params,
}

impl PasswordHasher for PooledArgon2 {
    type Params = Params;

    fn hash_password<'a>(
        &self,
        password: &[u8],
        salt: impl Into<Salt<'a>>,
    ) -> password_hash::Result<PasswordHash<'a>> {
        let salt = salt.into();
        let mut salt_arr = [0u8; 64];
        let salt_bytes = salt.decode_b64(&mut salt_arr)?;
        let output_len = self
            .params
            .output_len()
            .unwrap_or(Params::DEFAULT_OUTPUT_LEN);
        let argon = Argon2::new(self.algorithm, self.version, self.params.clone());
        let output = Output::init_with(output_len, |out| {
            KdfMemory::global().with(self.params.block_count(), |blocks| {
                Ok(argon.hash_password_into_with_memory(password, salt_bytes, out, blocks)?)
            })
        })?;
        Ok(PasswordHash {
            algorithm: self.algorithm.ident(),
            version: Some(self.version.into()),
            params: ParamsString::try_from(&self.params)?,
            salt: Some(salt),
            hash: Some(output),
        })
    }

    fn hash_password_customized<'a>(
        &self,
        password: &[u8],
        alg_id: Option<Ident<'a>>,
        version: Option<Decimal>,
        params: Params,
        salt: impl Into<Salt<'a>>,
    ) -> password_hash::Result<PasswordHash<'a>> {
        let algorithm = alg_id
            .map(Algorithm::try_from)
            .transpose()?
            .unwrap_or_default();
        let version = version
            .map(Version::try_from)
            .transpose()?
            .unwrap_or_default();
        PooledArgon2 {
            algorithm,
            version,
            params,
        }
        .hash_password(password, salt)
    }
}

fn argon(params: KdfParams) -> Result<PooledArgon2> {
    let p = Params::new(
        params.memory_kib,
        params.iterations,
        params.parallelism,
        None,
    )
    .map_err(|e| StoreError::InvalidInput(format!("argon2 parameters: {e}")))?;
    Ok(PooledArgon2 {
        algorithm: Algorithm::Argon2id,
        version: Version::V0x13,
        params: p,
    })
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
    let verifier = PooledArgon2 {
        algorithm: Algorithm::default(),
        version: Version::default(),
        params: Params::default(),
    };
    Ok(verifier
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

    /// Hashes made under the limit verify with the argon2 crate's own
    /// hasher and the other way round, at the default and other
    /// parameters.
    #[test]
    fn limited_hashes_match_the_crate() {
        for (m, t, p) in [
            (19 * 1024, 2, 1),
            (64, 1, 1),
            (256, 3, 2),
            (20 * 1024, 1, 1),
        ] {
            let params = KdfParams {
                memory_kib: m,
                iterations: t,
                parallelism: p,
            };
            let ours = hash_password("correct horse", params).unwrap();
            let parsed = PasswordHash::new(&ours).unwrap();
            assert!(Argon2::default()
                .verify_password(b"correct horse", &parsed)
                .is_ok());
            assert!(Argon2::default()
                .verify_password(b"battery staple", &parsed)
                .is_err());
            let crate_params = Params::new(m, t, p, None).unwrap();
            let theirs = Argon2::new(Algorithm::Argon2id, Version::V0x13, crate_params)
                .hash_password(b"correct horse", &SaltString::encode_b64(&[7; 16]).unwrap())
                .unwrap()
                .to_string();
            assert!(verify_password("correct horse", &theirs).unwrap());
            assert!(!verify_password("correct horsf", &theirs).unwrap());
        }
    }

    /// More concurrent hashes than slots: all finish, and no more than
    /// the limit ever run at once.
    #[test]
    fn concurrent_hashes_are_bounded() {
        let limit = KdfMemory::new(2);
        let done = std::sync::atomic::AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..6 {
                s.spawn(|| {
                    for _ in 0..3 {
                        limit.with(1024, |blocks| {
                            assert_eq!(blocks.len(), 1024);
                            std::thread::yield_now();
                        });
                        done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    }
                });
            }
        });
        assert_eq!(done.into_inner(), 18);
        assert_eq!(*limit.lock(), 0, "every slot given back");
        let peak = *limit.peak.lock().unwrap();
        assert!((1..=2).contains(&peak), "peak {peak}");
    }

    #[test]
    fn token_hashes() {
        assert_eq!(
            token_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
