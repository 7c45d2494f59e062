//! Integration tests of the capture proxy against real upstreams on
//! 127.0.0.1. One test binary, one module per area.

mod support;

mod faults;
mod forward;
mod reverse;
mod sessions;
mod tls;
