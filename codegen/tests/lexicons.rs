//! Generation from the vendored lexicons in `lexicons/`.

use std::path::PathBuf;

use atproto_codegen::{generate, Options};
use atproto_lexicon::Catalog;

fn lexicons_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../lexicons")
}

#[test]
fn every_vendored_lexicon_generates() {
    let catalog = match Catalog::from_dir(lexicons_dir()) {
        Ok(c) => c,
        Err(e) => panic!("{e}"),
    };
    let files = match generate(&catalog, &Options::for_source_tree()) {
        Ok(f) => f,
        Err(e) => panic!("{e}"),
    };
    assert!(files.len() > catalog.len());
    if let Ok(dir) = std::env::var("ATPROTO_CODEGEN_DUMP") {
        if let Err(e) = atproto_codegen::write_to_dir(&files, std::path::Path::new(&dir)) {
            panic!("{e}");
        }
    }
}
