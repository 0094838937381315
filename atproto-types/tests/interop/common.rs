//! Locating and reading the interop vectors.

use std::path::PathBuf;

/// The vectors directory. Panics loudly when `ATPROTO_INTEROP_TESTS` is
/// unset or wrong: a missing vector set must never look like a pass.
pub fn vectors_dir() -> PathBuf {
    let Some(dir) = std::env::var_os("ATPROTO_INTEROP_TESTS") else {
        panic!(
            "ATPROTO_INTEROP_TESTS is not set: point it at the atproto interop-tests \
             checkout (CI uses ../shared/interop-tests). Refusing to pass without the vectors."
        );
    };
    // A relative path is taken from the workspace root (where README's test
    // command runs), not from this package's directory, where cargo runs
    // the test binary.
    let dir = PathBuf::from(dir);
    let dir = if dir.is_relative() {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join(dir)
    } else {
        dir
    };
    assert!(
        dir.join("syntax").is_dir(),
        "ATPROTO_INTEROP_TESTS={} does not contain the interop vectors (no syntax/ folder)",
        dir.display()
    );
    dir
}

/// Read a vector file under the vectors directory as text.
pub fn read(rel: &str) -> String {
    let path = vectors_dir().join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// Parse a JSON vector file.
pub fn read_json(rel: &str) -> serde_json::Value {
    serde_json::from_str(&read(rel)).unwrap_or_else(|e| panic!("parsing {rel}: {e}"))
}

/// Lines of a text vector file: every line verbatim (never trimmed), skipping
/// only empty lines and lines starting with `#`.
pub fn read_lines(rel: &str) -> Vec<String> {
    let text = read(rel);
    let lines: Vec<String> = text
        .split('\n')
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect();
    assert!(!lines.is_empty(), "{rel} holds no vectors");
    lines
}
