//! Random strings people read and type: emailed and PLC-operation tokens,
//! app passwords, invite codes. Groups of base32 characters (RFC 4648
//! alphabet, no look-alike digits 0, 1, 8, 9) joined by `-`, from the
//! thread's CSPRNG.

use rand::Rng;

const UPPER: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const LOWER: &[u8] = b"abcdefghijklmnopqrstuvwxyz234567";

/// `groups` groups of `len` characters of `alphabet`, joined by `-`.
fn groups(alphabet: &[u8], groups: usize, len: usize) -> String {
    let mut rng = rand::thread_rng();
    let mut out = String::with_capacity(groups * (len + 1));
    for g in 0..groups {
        if g > 0 {
            out.push('-');
        }
        for _ in 0..len {
            out.push(char::from(alphabet[rng.gen_range(0..alphabet.len())]));
        }
    }
    out
}

/// An emailed or PLC-operation token: `XXXXX-XXXXX` (50 bits; as the
/// reference's `getRandomToken`).
pub fn token() -> String {
    groups(UPPER, 2, 5)
}

/// An app password: `xxxx-xxxx-xxxx-xxxx` (80 bits).
pub fn app_password() -> String {
    groups(LOWER, 4, 4)
}

/// An invite code: the hostname with dots as dashes, then `xxxxx-xxxxx`.
pub fn invite_code(hostname: &str) -> String {
    format!("{}-{}", hostname.replace('.', "-"), groups(LOWER, 2, 5))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base32(s: &str, upper: bool) -> bool {
        s.chars().all(|c| {
            c == '-'
                || ('2'..='7').contains(&c)
                || if upper {
                    c.is_ascii_uppercase()
                } else {
                    c.is_ascii_lowercase()
                }
        })
    }

    #[test]
    fn tokens() {
        let t = token();
        assert_eq!(t.len(), 11, "{t}");
        assert_eq!(&t[5..6], "-");
        assert!(base32(&t, true), "{t}");
        assert_ne!(token(), t);
    }

    #[test]
    fn app_passwords() {
        let p = app_password();
        assert_eq!(p.len(), 19, "{p}");
        let parts: Vec<&str> = p.split('-').collect();
        assert_eq!(parts.len(), 4, "{p}");
        assert!(parts.iter().all(|g| g.len() == 4), "{p}");
        assert!(base32(&p, false), "{p}");
        assert_ne!(p, app_password());
    }

    #[test]
    fn invite_codes() {
        let code = invite_code("pds.example.com");
        let rest = code.strip_prefix("pds-example-com-").expect("prefix");
        assert_eq!(rest.len(), 11, "{code}");
        assert_eq!(&rest[5..6], "-");
        assert!(base32(rest, false), "{code}");
        assert_ne!(code, invite_code("pds.example.com"));
    }
}
