//! Round trips through the generated types.
