//! Vectors for data_model: being written.
