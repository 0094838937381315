//! Generic URIs (Lexicon `uri` format), following the RFC 3986 syntax.

use crate::error::{show_char, SyntaxError, SyntaxKind};

/// Longest URI accepted (8 KiB).
pub const URI_MAX_LEN: usize = 8192;

/// A valid generic URI, e.g. `https://example.com/path?q=1#frag`,
/// `did:plc:abc` or `dns:example.com`.
///
/// Checks the RFC 3986 syntax: a scheme (a letter, then letters, digits,
/// `+`, `-` or `.`), a `:`, then a non-empty hierarchical part (optionally
/// `//authority` with userinfo, host and numeric port), query and fragment,
/// each limited to its allowed characters, with `%` always followed by two hex
/// digits. Non-ASCII characters are accepted where RFC 3987 (IRIs) would
/// allow them; whitespace and control characters never are. At most 8 KiB.
/// Kept verbatim.
#[derive(Clone)]
pub struct Uri(String);

string_newtype!(Uri);
string_eq_ord!(Uri);

fn err(reason: impl Into<std::borrow::Cow<'static, str>>) -> SyntaxError {
    SyntaxError::new(SyntaxKind::Uri, reason)
}

fn is_unreserved(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~')
}

fn is_sub_delim(c: char) -> bool {
    matches!(
        c,
        '!' | '$' | '&' | '\'' | '(' | ')' | '*' | '+' | ',' | ';' | '='
    )
}

/// Check that every character of `part` is unreserved, a sub-delimiter, one
/// of `extra`, a `%XX` escape or a non-ASCII IRI character.
fn check_chars(part: &str, extra: &str, what: &str) -> Result<(), SyntaxError> {
    let mut chars = part.chars();
    while let Some(c) = chars.next() {
        if c == '%' {
            let h1 = chars.next();
            let h2 = chars.next();
            if !(h1.is_some_and(|h| h.is_ascii_hexdigit())
                && h2.is_some_and(|h| h.is_ascii_hexdigit()))
            {
                return Err(err(format!(
                    "'%' in the URI {what} must be followed by two hex digits"
                )));
            }
            continue;
        }
        let ok = is_unreserved(c)
            || is_sub_delim(c)
            || extra.contains(c)
            || !(c.is_ascii() || c.is_whitespace() || c.is_control());
        if !ok {
            return Err(err(format!("URI {what} may not contain {}", show_char(c))));
        }
    }
    Ok(())
}

fn check_authority(authority: &str) -> Result<(), SyntaxError> {
    // An IP-literal host, optionally with userinfo before and a port after.
    let host_start = authority.rfind('@').map_or(0, |i| i + 1);
    let (before, hostport) = authority.split_at(host_start);
    if let Some(inner) = hostport.strip_prefix('[') {
        check_chars(before, ":@", "userinfo")?;
        let Some(close) = inner.find(']') else {
            return Err(err("URI IP-literal host is missing its closing ']'"));
        };
        let literal = &inner[..close];
        let ok = if let Some(future) = literal.strip_prefix(['v', 'V']) {
            future.contains('.')
                && future
                    .chars()
                    .all(|c| is_unreserved(c) || is_sub_delim(c) || c == ':')
        } else {
            literal.contains(':')
                && literal
                    .chars()
                    .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.')
        };
        if !ok {
            return Err(err(format!(
                "URI IP-literal host [{literal}] is not an IPv6 or IPvFuture address"
            )));
        }
        let after = &inner[close + 1..];
        if let Some(port) = after.strip_prefix(':') {
            if !port.bytes().all(|b| b.is_ascii_digit()) {
                return Err(err(format!("URI port {port:?} must be digits")));
            }
        } else if !after.is_empty() {
            return Err(err("unexpected characters after the URI IP-literal host"));
        }
        return Ok(());
    }
    // Otherwise userinfo, host and port are not told apart: colons are also
    // how DIDs appear in authorities (e.g. `at://did:plc:abc/...`).
    check_chars(authority, ":@", "authority")
}

pub(crate) fn check(s: &str) -> Result<(), SyntaxError> {
    if s.len() > URI_MAX_LEN {
        return Err(err(format!(
            "URI longer than {URI_MAX_LEN} bytes ({})",
            s.len()
        )));
    }
    let Some(colon) = s.find(':') else {
        return Err(err("URI needs a scheme followed by ':' (e.g. https:)"));
    };
    let scheme = &s[..colon];
    let mut sc = scheme.chars();
    match sc.next() {
        None => return Err(err("URI scheme is empty")),
        Some(c) if !c.is_ascii_alphabetic() => {
            return Err(err(format!(
                "URI scheme must start with a letter, found {}",
                show_char(c)
            )))
        }
        Some(_) => {}
    }
    if let Some(c) = sc.find(|&c| !(c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))) {
        return Err(err(format!(
            "URI scheme may only contain letters, digits, '+', '-' and '.', found {}",
            show_char(c)
        )));
    }
    let rest = &s[colon + 1..];
    if rest.is_empty() {
        return Err(err("URI has nothing after the scheme"));
    }
    let (rest, fragment) = match rest.find('#') {
        Some(i) => (&rest[..i], Some(&rest[i + 1..])),
        None => (rest, None),
    };
    let (hier, query) = match rest.find('?') {
        Some(i) => (&rest[..i], Some(&rest[i + 1..])),
        None => (rest, None),
    };
    let path = if let Some(after) = hier.strip_prefix("//") {
        let end = after.find('/').unwrap_or(after.len());
        check_authority(&after[..end])?;
        &after[end..]
    } else {
        hier
    };
    check_chars(path, ":@/", "path")?;
    if let Some(q) = query {
        check_chars(q, ":@/?", "query")?;
    }
    if let Some(f) = fragment {
        check_chars(f, ":@/?", "fragment")?;
    }
    Ok(())
}

impl Uri {
    fn from_string(s: String) -> Result<Self, SyntaxError> {
        check(&s)?;
        Ok(Uri(s))
    }

    /// The URI exactly as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The URI string, consuming the value.
    pub fn into_inner(self) -> String {
        self.0
    }

    /// The scheme, as given (e.g. `https`).
    pub fn scheme(&self) -> &str {
        match self.0.find(':') {
            Some(i) => &self.0[..i],
            None => "",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid() {
        for s in [
            "https://example.com",
            "https://example.com/path?q=blah&yes=true#frag.123",
            "dns:example.com",
            "at://handle.example.com/nsid/rkey",
            "did:key:zQ3shZc2QzApp2oymGvQbzP8eKheVshBHbU4ZYjeXqwSKEn6N",
            "content-type:text/plan",
            "microsoft.windows.camera:thing",
            "go://?Mercedes%20Benz",
            "http://user:pw@[::1]:8080/x",
            "http://127.0.0.1:3000/",
            "ipld://bafyreidfayvfuwqa7qlnopdjiqrxzs6blmoeu4rujcjtnci5beludirz2a",
            "https://例え.jp/パス",
            "mailto:someone@example.com",
            "at://did:plc:abc/app.bsky.feed.post/3k",
        ] {
            assert!(s.parse::<Uri>().is_ok(), "{s}");
        }
    }

    #[test]
    fn invalid() {
        for s in [
            "",
            "example.com",
            "://example.com",
            "//example.com",
            "http:",
            ".http://example.com",
            "-http://example.com",
            "12345",
            "127.0.0.1",
            "https://example.com/path gap",
            "  https://example.com/path",
            "https://example.com/trailing-whitespace  ",
            "https://example.com/%zz",
            "https://example.com/a#b#c",
            "http://[::1/x",
            "http://[::1]:80a/",
            "http://a[b]/",
            "https://example.com/<tag>",
        ] {
            assert!(s.parse::<Uri>().is_err(), "{s}");
        }
        let long = format!("https://example.com/{}", "x".repeat(8200));
        let e = long.parse::<Uri>().unwrap_err();
        assert!(e.reason().contains("longer than 8192"), "{e}");
    }

    #[test]
    fn scheme_and_serde() {
        let u: Uri = serde_json::from_str("\"HTTPS://Example.com/A\"").unwrap();
        assert_eq!(u.scheme(), "HTTPS");
        assert_eq!(
            serde_json::to_string(&u).unwrap(),
            "\"HTTPS://Example.com/A\""
        );
    }
}
