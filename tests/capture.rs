//! End-to-end tests of `tapedeck capture`.
