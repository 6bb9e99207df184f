//! A builder API to write graphs in Rust.
