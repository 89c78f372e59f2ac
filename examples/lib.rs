//! Examples of fiaas: library API examples live next to this file as
//! `cargo run -p fiaas-examples --example NAME`, and example apps (each as a fiaas.yml and as
//! the Application resource the daemon watches) under `apps/`, checked by `tests/apps.rs`.
