//! MST keys: validation, heights and prefix lengths.

use sha2::{Digest, Sha256};

/// Longest MST key accepted, in bytes.
pub const MAX_KEY_LEN: usize = 1024;

/// Why a string is not a valid MST key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid MST key {key:?}: {reason}")]
pub struct InvalidKey {
    /// The rejected key (possibly truncated for display).
    pub key: String,
    /// Why.
    pub reason: &'static str,
}

fn allowed_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'~' | b'-' | b':' | b'.')
}

/// Check the repository spec's rules for MST keys: `<collection>/<record-key>`,
/// exactly one `/` with non-empty segments on both sides, only the characters
/// `A-Za-z0-9 _ ~ - : .` besides the separator, and at most
/// [`MAX_KEY_LEN`] bytes. (This is the structural rule of the MST; it does not
/// require the collection to be a full NSID.)
pub fn validate_key(key: &str) -> Result<(), InvalidKey> {
    let fail = |reason| {
        Err(InvalidKey {
            key: key.chars().take(100).collect(),
            reason,
        })
    };
    if key.len() > MAX_KEY_LEN {
        return fail("longer than 1024 bytes");
    }
    let Some((collection, rkey)) = key.split_once('/') else {
        return fail("must be <collection>/<record-key>");
    };
    if collection.is_empty() || rkey.is_empty() {
        return fail("empty collection or record key");
    }
    if rkey.contains('/') {
        return fail("more than one '/'");
    }
    if !collection.bytes().all(allowed_char) || !rkey.bytes().all(allowed_char) {
        return fail("character outside A-Za-z0-9 _~-:.");
    }
    if rkey == "." || rkey == ".." {
        return fail("record key '.' or '..'");
    }
    Ok(())
}

/// A key's height (layer) in the MST: the number of leading zero bits of
/// SHA-256(key), counted in 2-bit chunks (fanout 4).
pub fn key_height(key: &[u8]) -> u32 {
    let hash = Sha256::digest(key);
    let mut zeros = 0u32;
    for &b in hash.iter() {
        if b == 0 {
            zeros += 8;
            continue;
        }
        zeros += b.leading_zeros();
        break;
    }
    zeros / 2
}

/// The length of the common prefix of two keys, in bytes.
pub fn common_prefix_len(a: &[u8], b: &[u8]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heights() {
        assert_eq!(key_height(b""), 0);
        assert_eq!(key_height(b"blue"), 1);
        assert_eq!(key_height(b"app.bsky.feed.post/9adeb165882c"), 8);
    }

    #[test]
    fn keys() {
        assert!(validate_key("app.bsky.feed.post/3jui7kd2z2t2y").is_ok());
        assert!(validate_key("A0/374913").is_ok());
        for bad in [
            "",
            "nocollection",
            "/rkey",
            "coll/",
            "a/b/c",
            "coll/a b",
            "coll/é",
            "coll/..",
        ] {
            assert!(validate_key(bad).is_err(), "{bad}");
        }
        let long = format!("c/{}", "a".repeat(1100));
        assert!(validate_key(&long).is_err());
    }
}
