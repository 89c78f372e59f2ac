//! Print a v2 fiaas.yml in its v3 form, as `fiaas migrate --strip-defaults` does.
//!
//! `cargo run -p fiaas-examples --example migrate_v2 -- [FIAAS_YML]`
//! (default: `examples/apps/v2/fiaas.yml`).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/apps/v2/fiaas.yml").to_owned());
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    let document = fiaas_spec::parse_document(&text)?;
    // Stripping the values equal to the v3 defaults leaves only what the app really chose,
    // which is what one would commit as the new fiaas.yml.
    let v3 = fiaas_spec::to_v3(&document, true)?;
    print!("{}", fiaas_spec::to_yaml(&v3));
    Ok(())
}
