//! Unit tests: document checks, catalog resolution and validation rules.

mod catalog;
mod fixtures;
mod parse;
mod props;
mod validate;
