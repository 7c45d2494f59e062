//! End-to-end tests of `tapedeck testbed`.
