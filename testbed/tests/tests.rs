//! Tests of the testbed through real HTTP on 127.0.0.1: one binary, one
//! module per area.

mod client;

mod api;
mod releases;
mod simulate;
