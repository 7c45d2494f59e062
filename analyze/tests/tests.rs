//! Integration tests of tapedeck-analyze: statistics against scipy,
//! false-alarm rate and power of `compare`, and the HTML report in a real
//! headless Chromium.

mod synth;

mod demo;
mod html;
mod mwu_reference;
mod noise;
