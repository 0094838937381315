//! The official atproto interop test vectors (CC0), read from the directory
//! named by `ATPROTO_INTEROP_TESTS`. Every vector must pass; the vectors are
//! never copied into this repository.

mod interop {
    mod commit_proof;
    pub mod common;
    mod crypto;
    mod data_model;
    mod lexicon;
    mod mst;
    mod syntax;
}
