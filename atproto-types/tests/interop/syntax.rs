//! Vectors for syntax: being written.
