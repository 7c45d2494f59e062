//! End-to-end tests of `tapedeck replay`.
