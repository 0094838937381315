//! Vectors for mst: being written.
