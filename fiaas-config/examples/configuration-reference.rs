//! Prints the operator's configuration reference, the content of `docs/configuration.md`:
//! `cargo run -p fiaas-config --example configuration-reference > docs/configuration.md`.

fn main() {
    print!("{}", fiaas_config::reference::configuration_markdown());
}
