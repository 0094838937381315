//! Handle rules for accounts on this server's handle domains (the
//! reference's): valid syntax and TLD, under one of the service handle
//! domains, a first label of 3 to 18 characters with no dot, and not
//! reserved.

use std::collections::HashSet;
use std::sync::OnceLock;

use atproto_types::syntax::Handle;

/// Why a handle is refused; each maps to the reference's XRPC error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandleError {
    /// 400 `InvalidHandle`.
    #[error("{0}")]
    Invalid(String),
    /// 400 `UnsupportedDomain`: not under a service handle domain.
    #[error("Not a supported handle domain")]
    UnsupportedDomain,
    /// 400 `HandleNotAvailable`: a reserved name.
    #[error("Reserved handle")]
    Reserved,
}

fn reserved() -> &'static HashSet<&'static str> {
    static SET: OnceLock<HashSet<&'static str>> = OnceLock::new();
    SET.get_or_init(|| {
        include_str!("reserved.txt")
            .lines()
            .filter(|l| !l.trim_start().starts_with('#'))
            .flat_map(str::split_whitespace)
            .collect()
    })
}

/// Whether `label` (a handle's first label) is reserved.
pub fn is_reserved(label: &str) -> bool {
    reserved().contains(label)
}

/// Normalizes (lower-cases) and checks a handle requested on this server,
/// whose handle domains are `domains` (each starting with a dot).
pub fn normalize_and_validate(handle: &str, domains: &[String]) -> Result<String, HandleError> {
    let normalized = handle.to_ascii_lowercase();
    let parsed: Handle = normalized
        .parse()
        .map_err(|e| HandleError::Invalid(format!("Invalid handle: {e}")))?;
    if parsed.is_disallowed_tld() {
        return Err(HandleError::Invalid(
            "Handle TLD is invalid or disallowed".into(),
        ));
    }
    let Some(domain) = domains.iter().find(|d| normalized.ends_with(d.as_str())) else {
        return Err(HandleError::UnsupportedDomain);
    };
    let front = &normalized[..normalized.len() - domain.len()];
    if front.contains('.') {
        return Err(HandleError::Invalid("Invalid characters in handle".into()));
    }
    if front.len() < 3 {
        return Err(HandleError::Invalid("Handle too short".into()));
    }
    if front.len() > 18 {
        return Err(HandleError::Invalid("Handle too long".into()));
    }
    if is_reserved(front) {
        return Err(HandleError::Reserved);
    }
    Ok(normalized)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(h: &str) -> Result<String, HandleError> {
        normalize_and_validate(h, &[".test".to_owned(), ".example.com".to_owned()])
    }

    #[test]
    fn accepted() {
        assert_eq!(check("alice.test").unwrap(), "alice.test");
        assert_eq!(check("Alice.Example.COM").unwrap(), "alice.example.com");
        assert_eq!(check("abc.test").unwrap(), "abc.test");
        assert_eq!(
            check("a23456789012345678.test").unwrap(),
            "a23456789012345678.test"
        );
        assert_eq!(check("with-dash.test").unwrap(), "with-dash.test");
    }

    #[test]
    fn refused() {
        assert_eq!(
            check("ab.test"),
            Err(HandleError::Invalid("Handle too short".into()))
        );
        assert_eq!(
            check("a234567890123456789.test"),
            Err(HandleError::Invalid("Handle too long".into()))
        );
        assert_eq!(
            check("a.b.test"),
            Err(HandleError::Invalid("Invalid characters in handle".into()))
        );
        assert_eq!(
            check("alice.other.com"),
            Err(HandleError::UnsupportedDomain)
        );
        assert_eq!(check("admin.test"), Err(HandleError::Reserved));
        assert_eq!(check("bsky.example.com"), Err(HandleError::Reserved));
        assert!(matches!(check("alice.local"), Err(HandleError::Invalid(m)) if m.contains("TLD")));
        assert!(matches!(check("al ice.test"), Err(HandleError::Invalid(_))));
        assert!(matches!(check("-alice.test"), Err(HandleError::Invalid(_))));
        assert!(matches!(check("test"), Err(HandleError::Invalid(_))));
    }

    #[test]
    fn reserved_list_loads() {
        assert!(is_reserved("atp"));
        assert!(is_reserved("www"));
        assert!(is_reserved("cgi-bin"));
        assert!(!is_reserved("alice"));
        assert!(!is_reserved("#"));
        assert!(reserved().len() > 700);
    }
}
