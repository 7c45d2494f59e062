//! End-to-end tests of `tapedeck sessions`.
