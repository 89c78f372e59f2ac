//! Examples of the fiaas library API live next to this file as `cargo run -p fiaas-examples --example NAME`.
