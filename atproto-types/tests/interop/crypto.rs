//! Vectors for crypto: being written.
