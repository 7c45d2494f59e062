//! End-to-end tests of correlation and per-VU identity.
