//! `atproto lexicon ...` run as a process, on the vendored lexicons and on
//! small documents written to a temporary directory.

mod common;

use std::path::Path;

use common::{lexicons_dir, run};

fn write(dir: &Path, rel: &str, text: &str) {
    let path = dir.join(rel);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("create dirs");
    }
    std::fs::write(path, text).expect("write file");
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

const THING: &str = r##"{
  "lexicon": 1,
  "id": "com.example.thing",
  "defs": {
    "main": {
      "type": "record",
      "key": "tid",
      "record": {
        "type": "object",
        "required": ["name"],
        "properties": {
          "name": {"type": "string", "maxLength": 10},
          "other": {"type": "ref", "ref": "com.example.defs#other"},
          "local": {"type": "ref", "ref": "#detail"}
        }
      }
    },
    "detail": {"type": "object", "properties": {"n": {"type": "integer"}}}
  }
}"##;

const DEFS: &str = r#"{
  "lexicon": 1,
  "id": "com.example.defs",
  "defs": {"other": {"type": "object", "properties": {}}}
}"#;

#[test]
fn check_vendored_lexicons() {
    let dir = lexicons_dir();
    let r = run(&["lexicon", "check", &s(&dir)], "");
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let lines = r.lines();
    assert!(lines.len() > 300, "{} lines", lines.len());
    assert!(lines.iter().all(|l| l.ends_with(": valid")), "{}", r.stdout);
    let mut sorted = lines.clone();
    sorted.sort();
    assert_eq!(lines, sorted, "files are listed in path order");
    let post = s(&dir.join("app/bsky/feed/post.json"));
    assert!(lines.contains(&format!("{post}: valid").as_str()));

    // One file alone: just the verdict.
    let r = run(&["lexicon", "check", &post], "");
    assert_eq!((r.stdout.as_str(), r.code), ("valid\n", 0));
}

#[test]
fn check_single_files() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    write(dir, "thing.json", THING);
    write(dir, "not_json.json", "{ nope");
    write(
        dir,
        "bad_version.json",
        r#"{"lexicon": 2, "id": "com.example.v", "defs": {"main": {"type": "token"}}}"#,
    );
    write(
        dir,
        "bad_limit.json",
        r#"{"lexicon": 1, "id": "com.example.l", "defs": {"main": {"type": "string", "maxLength": "ten"}}}"#,
    );
    write(
        dir,
        "local_dangling.json",
        r##"{"lexicon": 1, "id": "com.example.d", "defs": {"main": {"type": "object", "properties": {"x": {"type": "ref", "ref": "#missing"}}}}}"##,
    );

    // A reference to another document can not be checked alone.
    let r = run(&["lexicon", "check", &s(&dir.join("thing.json"))], "");
    assert_eq!((r.stdout.as_str(), r.code), ("valid\n", 0), "{}", r.stderr);

    let r = run(&["lexicon", "check", &s(&dir.join("not_json.json"))], "");
    assert_eq!(r.code, 1);
    assert!(
        r.stdout.starts_with("invalid: not valid JSON"),
        "{}",
        r.stdout
    );
    assert_eq!(r.lines().len(), 1);

    let r = run(&["lexicon", "check", &s(&dir.join("bad_version.json"))], "");
    assert_eq!(r.code, 1);
    assert!(
        r.stdout.starts_with("invalid: lexicon: ") && r.stdout.contains("version"),
        "{}",
        r.stdout
    );

    let r = run(&["lexicon", "check", &s(&dir.join("bad_limit.json"))], "");
    assert_eq!(r.code, 1);
    assert!(
        r.stdout.starts_with("invalid: defs.main.maxLength: "),
        "{}",
        r.stdout
    );

    let r = run(
        &["lexicon", "check", &s(&dir.join("local_dangling.json"))],
        "",
    );
    assert_eq!(r.code, 1);
    assert_eq!(
        r.stdout,
        "invalid: defs.main.properties.x.ref: unknown ref com.example.d#missing\n"
    );

    let r = run(&["lexicon", "check", &s(&dir.join("absent.json"))], "");
    assert_eq!(r.code, 1);
    assert!(r.stdout.is_empty());
    assert!(r.stderr.starts_with("error: "), "{}", r.stderr);
}

#[test]
fn check_directory_with_dangling_ref() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    write(dir, "com/example/thing.json", THING);

    // Alone, the reference to com.example.defs dangles.
    let r = run(&["lexicon", "check", &s(dir)], "");
    assert_eq!(r.code, 1);
    let thing = s(&dir.join("com/example/thing.json"));
    assert_eq!(
        r.stdout,
        format!(
            "{thing}: invalid: defs.main.record.properties.other.ref: unknown ref com.example.defs#other\n"
        )
    );

    // With its target, everything is valid.
    write(dir, "com/example/defs.json", DEFS);
    let r = run(&["lexicon", "check", &s(dir)], "");
    assert_eq!(r.code, 0, "{}", r.stdout);
    let defs = s(&dir.join("com/example/defs.json"));
    assert_eq!(
        r.stdout,
        format!("{defs}: valid\n{thing}: valid\n"),
        "sorted by path"
    );

    // A broken file does not hide the verdicts of the others; a duplicate
    // id makes both files invalid.
    write(dir, "com/example/zz_broken.json", "[]");
    write(dir, "com/example/copy.json", DEFS);
    let r = run(&["lexicon", "check", &s(dir)], "");
    assert_eq!(r.code, 1);
    let lines = r.lines();
    assert_eq!(lines.len(), 4, "{}", r.stdout);
    let copy = s(&dir.join("com/example/copy.json"));
    assert!(
        lines[0].starts_with(&format!("{copy}: invalid: duplicate lexicon id")),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].starts_with(&format!("{defs}: invalid: duplicate lexicon id")),
        "{}",
        lines[1]
    );
    assert_eq!(lines[2], format!("{thing}: valid"));
    assert!(
        lines[3].starts_with(&format!(
            "{}: invalid: ",
            s(&dir.join("com/example/zz_broken.json"))
        )),
        "{}",
        lines[3]
    );
}

#[test]
fn validate_records() {
    let lex = s(&lexicons_dir());
    let args = [
        "lexicon",
        "validate",
        "--lexicons",
        lex.as_str(),
        "app.bsky.feed.post",
    ];

    let post = r#"{"$type": "app.bsky.feed.post", "text": "hello", "createdAt": "2024-05-01T12:00:00.000Z"}"#;
    let r = run(&args, post);
    assert_eq!((r.stdout.as_str(), r.code), ("valid\n", 0), "{}", r.stderr);

    let long = serde_json::json!({
        "$type": "app.bsky.feed.post",
        "text": "a".repeat(301),
        "createdAt": "2024-05-01T12:00:00.000Z",
    });
    let r = run(&args, &long.to_string());
    assert_eq!(r.code, 1);
    assert_eq!(
        r.stdout,
        "invalid: text: string is longer than maxGraphemes (300)\n"
    );

    // Every problem, one line each.
    let bad = serde_json::json!({
        "$type": "app.bsky.feed.post",
        "text": "a".repeat(3001),
        "createdAt": "yesterday",
    });
    let r = run(&args, &bad.to_string());
    assert_eq!(r.code, 1);
    let lines = r.lines();
    assert_eq!(lines.len(), 3, "{}", r.stdout);
    assert!(lines.iter().all(|l| l.starts_with("invalid: ")));
    assert!(lines.iter().any(|l| l.starts_with("invalid: createdAt: ")));
    assert!(lines.iter().any(|l| l.starts_with("invalid: text: ")));

    let r = run(&args, "{\"text\": ");
    assert_eq!(r.code, 1);
    assert!(
        r.stdout.starts_with("invalid: invalid JSON"),
        "{}",
        r.stdout
    );

    let r = run(&args, r#"{"$type": "app.bsky.feed.post", "n": 1.5}"#);
    assert_eq!(r.code, 1);
    assert!(r.stdout.starts_with("invalid: "), "{}", r.stdout);
    assert_eq!(r.lines().len(), 1);

    let r = run(
        &[
            "lexicon",
            "validate",
            "--lexicons",
            &lex,
            "com.example.nothing",
        ],
        post,
    );
    assert_eq!(r.code, 1);
    assert_eq!(r.stdout, "invalid: unknown lexicon com.example.nothing\n");
}

#[test]
fn openapi_document() {
    let lex = s(&lexicons_dir());
    let r = run(&["lexicon", "openapi", "--lexicons", &lex], "");
    assert_eq!(r.code, 0, "{}", r.stderr);
    let doc: serde_json::Value = serde_json::from_str(&r.stdout).expect("JSON output");
    assert!(r.stdout.contains("\n  "), "pretty-printed");
    let create = &doc["paths"]["/xrpc/com.atproto.repo.createRecord"];
    assert!(create["post"].is_object(), "{create}");
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with('3')));
}

#[test]
fn gen_writes_modules() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = tmp.path().join("out");
    let lex = s(&lexicons_dir());
    let r = run(
        &["lexicon", "gen", "--lexicons", &lex, "--out", &s(&out)],
        "",
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r
        .stdout
        .ends_with(&format!("files written to {}\n", s(&out))));
    let root = std::fs::read_to_string(out.join("lexicons/mod.rs")).expect("lexicons/mod.rs");
    assert!(root.contains("pub mod com;"), "{root}");
    let create =
        std::fs::read_to_string(out.join("lexicons/com/atproto/repo/create_record/mod.rs"))
            .expect("create_record module");
    assert!(create.contains("pub struct Input"), "{create}");
    assert!(create.contains("::atproto_types::"), "runtime paths");
    assert!(out.join("lexicon_sources.rs").is_file());

    // Bad lexicons: nothing is written, the diagnostics are on stderr.
    let bad = tmp.path().join("bad");
    write(&bad, "com/example/thing.json", THING);
    let out2 = tmp.path().join("out2");
    let r = run(
        &["lexicon", "gen", "--lexicons", &s(&bad), "--out", &s(&out2)],
        "",
    );
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("unknown ref com.example.defs#other"),
        "{}",
        r.stderr
    );
    assert!(!out2.exists());
}
