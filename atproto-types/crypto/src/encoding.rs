//! Multibase (base58btc only), multicodec varints and hex.

use crate::error::KeyError;
use crate::Zeroizing;

/// `z` + base58btc of `bytes`.
pub(crate) fn multibase_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(1 + bytes.len() * 138 / 100 + 1);
    out.push('z');
    out.push_str(&bs58::encode(bytes).into_string());
    out
}

/// Decode a `z`-prefixed base58btc multibase string. The result is wrapped
/// so that private key payloads are wiped after use.
pub(crate) fn multibase_decode(s: &str) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    let mut chars = s.chars();
    match chars.next() {
        Some('z') => {}
        Some(c) => return Err(KeyError::NotBase58btc(format!("{c:?}"))),
        None => return Err(KeyError::NotBase58btc("an empty string".to_owned())),
    }
    let payload = chars.as_str();
    if payload.is_empty() {
        return Err(KeyError::Base58("empty payload".to_owned()));
    }
    bs58::decode(payload)
        .into_vec()
        .map(Zeroizing::new)
        .map_err(|e| KeyError::Base58(e.to_string()))
}

/// Unsigned LEB128 encoding of a multicodec code.
pub(crate) fn varint_encode(mut code: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(3);
    loop {
        let low = (code & 0x7f) as u8;
        code >>= 7;
        if code == 0 {
            out.push(low);
            return out;
        }
        out.push(low | 0x80);
    }
}

/// Split a leading multicodec varint from `bytes`: `(code, rest)`. Rejects
/// truncated, over-long (more than 9 bytes, per the multiformats varint
/// spec) and non-minimal encodings.
pub(crate) fn varint_split(bytes: &[u8]) -> Result<(u64, &[u8]), KeyError> {
    let mut code: u64 = 0;
    for (i, &b) in bytes.iter().enumerate().take(9) {
        code |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            if b == 0 && i > 0 {
                return Err(KeyError::BadVarint);
            }
            return Ok((code, &bytes[i + 1..]));
        }
    }
    Err(KeyError::BadVarint)
}

/// Lower-case hex.
pub(crate) fn hex_encode(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

/// Decode hex (either case, no prefix, no separators).
pub(crate) fn hex_decode(s: &str) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    fn nibble(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    let bytes = s.as_bytes();
    let pairs = bytes.chunks_exact(2);
    if !pairs.remainder().is_empty() {
        return Err(KeyError::Hex("odd number of digits"));
    }
    let mut out = Zeroizing::new(Vec::with_capacity(bytes.len() / 2));
    for pair in pairs {
        match (nibble(pair[0]), nibble(pair[1])) {
            (Some(hi), Some(lo)) => out.push(hi << 4 | lo),
            _ => return Err(KeyError::Hex("non-hex character")),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints() {
        assert_eq!(varint_encode(0xe7), [0xe7, 0x01]);
        assert_eq!(varint_encode(0x1200), [0x80, 0x24]);
        assert_eq!(varint_encode(0x1301), [0x81, 0x26]);
        assert_eq!(varint_encode(0x1306), [0x86, 0x26]);
        assert_eq!(varint_encode(0x01), [0x01]);
        for code in [0u64, 1, 0x7f, 0x80, 0xe7, 0x1200, 0x1306, u64::MAX >> 1] {
            let mut enc = varint_encode(code);
            enc.push(0xaa);
            assert_eq!(varint_split(&enc), Ok((code, &[0xaa][..])), "{code:#x}");
        }
        assert_eq!(varint_split(&[]), Err(KeyError::BadVarint));
        assert_eq!(varint_split(&[0x80]), Err(KeyError::BadVarint));
        // Non-minimal: 0xe7 padded with a zero continuation byte.
        assert_eq!(varint_split(&[0xe7, 0x81, 0x00]), Err(KeyError::BadVarint));
        assert_eq!(varint_split(&[0xff; 10]), Err(KeyError::BadVarint));
    }

    #[test]
    fn multibase() {
        assert_eq!(multibase_encode(b"hello"), "zCn8eVZg");
        assert_eq!(
            multibase_decode("zCn8eVZg").map(|v| v.to_vec()),
            Ok(b"hello".to_vec())
        );
        assert!(matches!(
            multibase_decode("maGVsbG8"),
            Err(KeyError::NotBase58btc(_))
        ));
        assert!(matches!(
            multibase_decode(""),
            Err(KeyError::NotBase58btc(_))
        ));
        assert!(matches!(multibase_decode("z"), Err(KeyError::Base58(_))));
        assert!(matches!(
            multibase_decode("z0OIl"),
            Err(KeyError::Base58(_))
        ));
    }

    #[test]
    fn hex() {
        assert_eq!(hex_encode(&[0x00, 0xab, 0xff]), "00abff");
        assert_eq!(
            hex_decode("00AbfF").map(|v| v.to_vec()),
            Ok(vec![0x00, 0xab, 0xff])
        );
        assert!(hex_decode("abc").is_err());
        assert!(hex_decode("zz").is_err());
        assert!(hex_decode("0x00").is_err());
        assert_eq!(hex_decode("").map(|v| v.len()), Ok(0));
    }
}
