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

/// The types of every namespace are compiled (this crate's dev-dependency
/// enables `atproto-types/full`), and the embedded sources are the vendored
/// documents.
#[test]
fn every_namespace_is_compiled_and_embedded() {
    use atproto_types::lexicons::{app, chat, com, tools};
    let nsids = [
        com::atproto::repo::create_record::NSID,
        app::bsky::feed::get_timeline::NSID,
        chat::bsky::convo::get_log::NSID,
        tools::ozone::moderation::emit_event::NSID,
        <app::bsky::feed::post::Record as atproto_types::lex::LexRecord>::NSID,
        <com::germnetwork::declaration::Record as atproto_types::lex::LexRecord>::NSID,
    ];
    let catalog = match Catalog::from_dir(lexicons_dir()) {
        Ok(c) => c,
        Err(e) => panic!("{e}"),
    };
    for nsid in nsids {
        assert!(catalog.doc_by_nsid(nsid).is_some(), "{nsid}");
    }
    assert_eq!(atproto_types::lex::LEXICON_SOURCES.len(), catalog.len());
    for (nsid, json) in atproto_types::lex::LEXICON_SOURCES {
        let on_disk =
            std::fs::read_to_string(lexicons_dir().join(Catalog::conventional_path(nsid)));
        assert_eq!(on_disk.ok().as_deref(), Some(*json), "{nsid}");
    }
}
