//! Cargo features per lexicon namespace.
//!
//! The generated modules of a namespace (the first two NSID segments:
//! `app.bsky`, `tools.ozone`, ...) are compiled only with the namespace's
//! feature (`app-bsky`, `tools-ozone`), except for the namespaces listed as
//! always compiled (`com.atproto`). When one namespace references another,
//! its feature must enable the other's: [`feature_dependencies`] computes
//! what the reference graph requires and [`check_declared`] compares it
//! with what `Cargo.toml` declares.

use std::collections::{BTreeMap, BTreeSet};

use atproto_lexicon::Catalog;

use crate::CodegenError;

/// Which namespaces are behind a feature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeatureRules {
    /// Namespaces (first two NSID segments, `com.atproto`) that are always
    /// compiled.
    pub always_on: Vec<String>,
    /// Name of the feature that enables every namespace (`full`), if any.
    pub all_feature: Option<String>,
}

impl Default for FeatureRules {
    fn default() -> Self {
        FeatureRules {
            always_on: vec!["com.atproto".to_owned()],
            all_feature: Some("full".to_owned()),
        }
    }
}

/// The namespace of an NSID: its first two segments.
pub fn namespace(nsid: &str) -> &str {
    match nsid.match_indices('.').nth(1) {
        Some((i, _)) => &nsid[..i],
        None => nsid,
    }
}

impl FeatureRules {
    /// The feature gating a namespace (`app.bsky` → `app-bsky`), `None`
    /// for an always compiled one.
    pub fn feature_for_namespace(&self, ns: &str) -> Option<String> {
        if self.always_on.iter().any(|a| a == ns) {
            None
        } else {
            Some(ns.replace('.', "-"))
        }
    }

    /// The feature gating the document `nsid`.
    pub fn feature_for(&self, nsid: &str) -> Option<String> {
        self.feature_for_namespace(namespace(nsid))
    }
}

/// For every feature of the catalog, the features it must enable (directly)
/// because its documents reference theirs. Fails when an always-compiled
/// namespace references a gated one.
pub fn feature_dependencies(
    catalog: &Catalog,
    rules: &FeatureRules,
) -> Result<BTreeMap<String, BTreeSet<String>>, CodegenError> {
    let mut deps: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut problems = Vec::new();
    for (from, targets) in catalog.ref_graph() {
        let from_feature = rules.feature_for(from);
        if let Some(f) = &from_feature {
            deps.entry(f.clone()).or_default();
        }
        for to in targets {
            let Some(to_feature) = rules.feature_for(to) else {
                continue;
            };
            match &from_feature {
                Some(f) if *f == to_feature => {}
                Some(f) => {
                    deps.entry(f.clone()).or_default().insert(to_feature);
                }
                None => problems.push(format!(
                    "{from} is always compiled but references {to}, which is behind feature `{to_feature}`"
                )),
            }
        }
    }
    if problems.is_empty() {
        Ok(deps)
    } else {
        Err(CodegenError::Features(problems))
    }
}

/// The `[features]` table of a `Cargo.toml`: each feature and what it
/// lists. Only the simple `name = ["a", "b"]` form (possibly over several
/// lines) is read, which is what a features table holds.
pub fn parse_cargo_features(toml: &str) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    let mut in_features = false;
    let mut current: Option<(String, String)> = None;
    for raw in toml.lines() {
        let line = strip_comment(raw).trim();
        if current.is_none() && line.starts_with('[') {
            in_features = line == "[features]";
            continue;
        }
        if !in_features {
            continue;
        }
        if let Some((name, mut buf)) = current.take() {
            buf.push_str(line);
            if buf.contains(']') {
                out.insert(name, list_items(&buf));
            } else {
                current = Some((name, buf));
            }
            continue;
        }
        if let Some((name, value)) = line.split_once('=') {
            let name = name.trim().trim_matches('"').to_owned();
            let value = value.trim().to_owned();
            if value.contains(']') {
                out.insert(name, list_items(&value));
            } else {
                current = Some((name, value));
            }
        }
    }
    out
}

/// A TOML line without its `#` comment (a `#` inside a string is kept).
fn strip_comment(line: &str) -> &str {
    let mut in_string = false;
    let mut escaped = false;
    for (i, c) in line.char_indices() {
        match c {
            '\\' if in_string => escaped = !escaped,
            '"' if !escaped => in_string = !in_string,
            '#' if !in_string => return &line[..i],
            _ => escaped = false,
        }
        if c != '\\' {
            escaped = false;
        }
    }
    line
}

fn list_items(s: &str) -> Vec<String> {
    s.trim()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .split(',')
        .map(|i| i.trim().trim_matches('"').to_owned())
        .filter(|i| !i.is_empty())
        .collect()
}

fn closure(feature: &str, declared: &BTreeMap<String, Vec<String>>) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut stack = vec![feature.to_owned()];
    while let Some(f) = stack.pop() {
        if let Some(list) = declared.get(&f) {
            for d in list {
                // `dep:x` and `crate/feature` entries are not features of
                // this crate.
                if !d.contains(':') && !d.contains('/') && seen.insert(d.clone()) {
                    stack.push(d.clone());
                }
            }
        }
    }
    seen
}

/// Compare declared features with the required ones: every gated feature
/// exists, enables (directly or through others) exactly the gated features
/// its references need, and the all-namespaces feature enables every one.
/// Returns one message per problem, naming the feature to fix.
pub fn check_declared(
    required: &BTreeMap<String, BTreeSet<String>>,
    declared: &BTreeMap<String, Vec<String>>,
    rules: &FeatureRules,
) -> Vec<String> {
    let mut problems = Vec::new();
    // What the requirements close over.
    let mut required_closure: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for f in required.keys() {
        let mut seen = BTreeSet::new();
        let mut stack: Vec<&str> = vec![f];
        while let Some(x) = stack.pop() {
            for d in required.get(x).into_iter().flatten() {
                if seen.insert(d.clone()) {
                    stack.push(d);
                }
            }
        }
        required_closure.insert(f, seen);
    }
    for (f, needs) in &required_closure {
        if !declared.contains_key(*f) {
            let list: Vec<String> = required
                .get(*f)
                .into_iter()
                .flatten()
                .map(|d| format!("\"{d}\""))
                .collect();
            problems.push(format!(
                "feature `{f}` is missing: add `{f} = [{}]` to [features]",
                list.join(", ")
            ));
            continue;
        }
        let has = closure(f, declared);
        for n in needs.iter().filter(|n| !has.contains(*n)) {
            problems.push(format!(
                "feature `{f}` must enable `{n}` (lexicons of `{f}` reference lexicons of `{n}`)"
            ));
        }
        for extra in has
            .iter()
            .filter(|h| required.contains_key(*h) && !needs.contains(*h))
        {
            problems.push(format!(
                "feature `{f}` enables `{extra}`, but no lexicon of `{f}` references `{extra}`: remove it"
            ));
        }
    }
    if let Some(all) = &rules.all_feature {
        if !declared.contains_key(all) {
            problems.push(format!("feature `{all}` (every namespace) is missing"));
        } else {
            let has = closure(all, declared);
            for f in required.keys().filter(|f| !has.contains(*f)) {
                problems.push(format!("feature `{all}` must enable `{f}`"));
            }
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces() {
        assert_eq!(namespace("app.bsky.feed.post"), "app.bsky");
        let rules = FeatureRules::default();
        assert_eq!(rules.feature_for("com.atproto.repo.createRecord"), None);
        assert_eq!(
            rules.feature_for("tools.ozone.moderation.defs").as_deref(),
            Some("tools-ozone")
        );
    }

    #[test]
    fn parse_and_check() {
        let toml = r#"
[package]
name = "x"

[features]
server = ["dep:axum"]  # comment "with quotes"
"quoted#name" = []
app-bsky = []
chat-bsky = ["app-bsky"]
tools-ozone = [
    "chat-bsky",
]
full = ["tools-ozone"]

[dependencies]
a = "1"
"#;
        let declared = parse_cargo_features(toml);
        assert_eq!(declared["tools-ozone"], vec!["chat-bsky".to_owned()]);
        assert_eq!(declared["server"], vec!["dep:axum".to_owned()]);
        assert!(declared.contains_key("quoted#name"));
        let mut required: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        required.insert("app-bsky".into(), BTreeSet::new());
        required.insert("chat-bsky".into(), ["app-bsky".to_owned()].into());
        required.insert(
            "tools-ozone".into(),
            ["app-bsky".to_owned(), "chat-bsky".to_owned()].into(),
        );
        let rules = FeatureRules::default();
        assert!(check_declared(&required, &declared, &rules).is_empty());

        required.insert("com-germnetwork".into(), BTreeSet::new());
        let problems = check_declared(&required, &declared, &rules);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].contains("com-germnetwork"));
    }
}
