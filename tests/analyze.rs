//! End-to-end tests of `tapedeck analyze`.
