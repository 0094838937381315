//! Support for the black-box tests of the PDS.
