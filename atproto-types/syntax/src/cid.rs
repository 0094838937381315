//! CIDs in string form (Lexicon `cid` format): a syntax check only. The
//! binary CID type lives in the data-model crate.

use crate::error::{show_char, SyntaxError, SyntaxKind};

/// Shortest CID string accepted.
pub const CID_MIN_LEN: usize = 8;
/// Longest CID string accepted.
pub const CID_MAX_LEN: usize = 512;

const B58: &str = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
const B64: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const B64URL: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// A multibase encoding: its name, its alphabet, and whether `=` padding is
/// allowed at the end.
struct Base {
    name: &'static str,
    alphabet: &'static str,
    padded: bool,
}

fn base_for(prefix: char) -> Option<Base> {
    let (name, alphabet, padded) = match prefix {
        '0' => ("base2", "01", false),
        '7' => ("base8", "01234567", false),
        '9' => ("base10", "0123456789", false),
        'f' => ("base16", "0123456789abcdef", false),
        'F' => ("base16upper", "0123456789ABCDEF", false),
        'v' => ("base32hex", "0123456789abcdefghijklmnopqrstuv", false),
        'V' => ("base32hexupper", "0123456789ABCDEFGHIJKLMNOPQRSTUV", false),
        't' => ("base32hexpad", "0123456789abcdefghijklmnopqrstuv", true),
        'T' => (
            "base32hexpadupper",
            "0123456789ABCDEFGHIJKLMNOPQRSTUV",
            true,
        ),
        'b' => ("base32", "abcdefghijklmnopqrstuvwxyz234567", false),
        'B' => ("base32upper", "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", false),
        'c' => ("base32pad", "abcdefghijklmnopqrstuvwxyz234567", true),
        'C' => ("base32padupper", "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", true),
        'h' => ("base32z", "ybndrfg8ejkmcpqxot1uwisza345h769", false),
        'k' => ("base36", "0123456789abcdefghijklmnopqrstuvwxyz", false),
        'K' => ("base36upper", "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ", false),
        'z' => ("base58btc", B58, false),
        'Z' => ("base58flickr", B58, false),
        'm' => ("base64", B64, false),
        'M' => ("base64pad", B64, true),
        'u' => ("base64url", B64URL, false),
        'U' => ("base64urlpad", B64URL, true),
        _ => return None,
    };
    Some(Base {
        name,
        alphabet,
        padded,
    })
}

/// A syntactically valid CID string (CIDv1 with a multibase prefix).
///
/// The check is syntactic: 8 to 512 characters, a known multibase prefix
/// (`b` for base32 is what atproto writes), and only characters of that
/// base's alphabet after it (with `=` padding only at the end, for padded
/// bases). Legacy CIDv0 strings (`Qm...`) are rejected. The bytes are not
/// decoded. Kept verbatim.
#[derive(Clone)]
pub struct CidString(String);

string_newtype!(CidString);
string_eq_ord!(CidString);

fn err(reason: impl Into<std::borrow::Cow<'static, str>>) -> SyntaxError {
    SyntaxError::new(SyntaxKind::Cid, reason)
}

pub(crate) fn check(s: &str) -> Result<(), SyntaxError> {
    if s.starts_with("Qm") && s.len() == 46 {
        return Err(err("CIDv0 ('Qm...') is not supported, only CIDv1"));
    }
    let len = s.chars().count();
    if len < CID_MIN_LEN {
        return Err(err(format!(
            "CID string shorter than {CID_MIN_LEN} characters ({len})"
        )));
    }
    if len > CID_MAX_LEN {
        return Err(err(format!(
            "CID string longer than {CID_MAX_LEN} characters ({len})"
        )));
    }
    let mut chars = s.chars();
    let prefix = chars.next().unwrap_or(' ');
    let Some(base) = base_for(prefix) else {
        return Err(err(format!(
            "CID string must start with a multibase prefix (e.g. 'b' for base32), found {}",
            show_char(prefix)
        )));
    };
    // One table lookup per character rather than a search of the alphabet.
    let mut in_alphabet = [false; 128];
    for b in base.alphabet.bytes() {
        if let Some(slot) = in_alphabet.get_mut(usize::from(b)) {
            *slot = true;
        }
    }
    let mut padding = false;
    for c in chars {
        if base.padded && c == '=' {
            padding = true;
            continue;
        }
        if padding {
            return Err(err(format!(
                "{} CID string has {} after '=' padding",
                base.name,
                show_char(c)
            )));
        }
        let known = u8::try_from(c)
            .ok()
            .and_then(|b| in_alphabet.get(usize::from(b)).copied())
            .unwrap_or(false);
        if !known {
            return Err(err(format!(
                "{} CID string contains {}, which is not in the {} alphabet",
                base.name,
                show_char(c),
                base.name
            )));
        }
    }
    Ok(())
}

impl CidString {
    fn from_string(s: String) -> Result<Self, SyntaxError> {
        check(&s)?;
        Ok(CidString(s))
    }

    /// The CID string exactly as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The CID string, consuming the value.
    pub fn into_inner(self) -> String {
        self.0
    }

    /// The multibase prefix character (`b` for base32).
    pub fn multibase_prefix(&self) -> char {
        self.0.chars().next().unwrap_or('b')
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid() {
        for s in [
            "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi",
            "bafyreidfayvfuwqa7qlnopdjiqrxzs6blmoeu4rujcjtnci5beludirz2a",
            "zdj7WWeQ43G6JJvLWQWZpyHuAMq6uYWRjkBXFad11vE2LHhQ7",
            "mBcDxtdWx0aWhhc2g+",
            "MAXESIA==",
            "7134036155352661643226414134664076",
            "f017012202c5f688262e0ece8569aa6f94d60aad55ca8d9d83734e4a7430d0cff6588ec2b",
        ] {
            assert!(s.parse::<CidString>().is_ok(), "{s}");
        }
    }

    #[test]
    fn invalid() {
        for s in [
            "example.com",
            "https://example.com",
            "cid:bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi",
            ".",
            "12345",
            " bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi",
            "bafybe igdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi",
            "QmbWqxBEKC3P8tqsKc98xmWNzrzDtRLMiMPL8wBuTGsMnR",
            "noop",
            "bafyBEIG",
            "MAXE=SIA",
            "z0OIl0OIl",
        ] {
            assert!(s.parse::<CidString>().is_err(), "{s}");
        }
        let e = "QmbWqxBEKC3P8tqsKc98xmWNzrzDtRLMiMPL8wBuTGsMnR"
            .parse::<CidString>()
            .unwrap_err();
        assert!(e.reason().contains("CIDv0"), "{e}");
    }

    #[test]
    fn serde_round_trip() {
        let s = "\"bafyreidfayvfuwqa7qlnopdjiqrxzs6blmoeu4rujcjtnci5beludirz2a\"";
        let c: CidString = serde_json::from_str(s).unwrap();
        assert_eq!(c.multibase_prefix(), 'b');
        assert_eq!(serde_json::to_string(&c).unwrap(), s);
    }
}
