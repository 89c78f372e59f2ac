//! Prints the operator's configuration reference, the content of `docs/configuration.md`:
//! `cargo run -p fiaas-transform --example configuration-reference > docs/configuration.md`.

fn main() {
    print!(
        "{}",
        fiaas_transform::config_reference::configuration_markdown()
    );
}
