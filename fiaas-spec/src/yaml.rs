//! The one place YAML is read and written, so the YAML crate can be swapped here alone.

use serde::Serialize;
use serde_json::Value;

use crate::SpecError;
use crate::lookup::{at, at_mut};

/// Largest fiaas.yml accepted; Kubernetes itself refuses objects much above this.
pub const MAX_DOCUMENT_BYTES: usize = 1024 * 1024;

/// Deepest nesting accepted; a real fiaas.yml is under ten levels deep.
const MAX_DEPTH: usize = 64;

pub(crate) fn options() -> serde_saphyr::Options {
    options_with(true)
}

fn options_with(strict_booleans: bool) -> serde_saphyr::Options {
    serde_saphyr::options! {
        // Plain `yes`/`no`/`on`/`off` stay strings here; the positions where fiaas expects a
        // boolean read them the YAML 1.1 way (see `read_plain_booleans`), as PyYAML did upstream.
        strict_booleans: strict_booleans,
        // PyYAML reads `010` as octal.
        legacy_octal_numbers: true,
        // PyYAML lets a repeated key overwrite the earlier one.
        duplicate_keys: serde_saphyr::DuplicateKeyPolicy::LastWins,
        alias_limits: serde_saphyr::alias_limits! {
            max_total_replayed_events: 10_000,
            max_replay_stack_depth: 16,
        },
        budget: serde_saphyr::budget! { max_depth: MAX_DEPTH },
    }
}

/// Parse one YAML document into a JSON value, within the size, alias and depth limits.
pub fn parse(text: &str) -> Result<Value, SpecError> {
    if text.len() > MAX_DOCUMENT_BYTES {
        return Err(SpecError::TooLarge {
            size: text.len(),
            limit: MAX_DOCUMENT_BYTES,
        });
    }
    if let Some(document) = crate::block_yaml::parse(text) {
        return Ok(document);
    }
    serde_saphyr::from_str_with_options::<Value>(text, options())
        .map_err(|e| SpecError::Yaml(first_line(&e.to_string())))
}

fn first_line(message: &str) -> String {
    message.lines().next().unwrap_or_default().trim().to_owned()
}

/// Render a value as block-style YAML.
pub fn to_string<T: Serialize>(value: &T) -> String {
    // Serialising plain data (maps, lists, scalars) to a String cannot fail.
    serde_saphyr::to_string(value).unwrap_or_default()
}

/// Where the fiaas.yml at `within` in `document` (read from `text` by [`parse`]) expects a
/// boolean at one of `positions` and holds a YAML 1.1 boolean word, reads it as PyYAML did: a
/// plain `no` is `false`, a quoted `"no"` stays the text `no` (which upstream then tests field
/// by field).
pub(crate) fn read_plain_booleans(
    text: &str,
    document: &mut Value,
    within: &[&str],
    positions: &[&[&str]],
) {
    let Some(config) = at(document, within) else {
        return;
    };
    let words: Vec<&[&str]> = positions
        .iter()
        .copied()
        .filter(|path| {
            at(config, path)
                .and_then(Value::as_str)
                .and_then(yaml11_bool)
                .is_some()
        })
        .collect();
    if words.is_empty() {
        return;
    }
    // Rare: read the text again with YAML 1.1 booleans, which turns only the plain words into
    // booleans. Same text, same limits, so it parses again.
    let Ok(yaml11) = serde_saphyr::from_str_with_options::<Value>(text, options_with(false)) else {
        return;
    };
    let (Some(yaml11), Some(config)) = (at(&yaml11, within), at_mut(document, within)) else {
        return;
    };
    for path in words {
        if let Some(Value::Bool(b)) = at(yaml11, path)
            && let Some(value) = at_mut(config, path)
        {
            *value = Value::Bool(*b);
        }
    }
}

/// Read a YAML 1.1 boolean (`yes`, `No`, `ON`, …) the way PyYAML does.
pub(crate) fn yaml11_bool(text: &str) -> Option<bool> {
    match text {
        "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => Some(true),
        "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Nested anchors, each layer ten aliases of the previous one, filling `size` bytes.
    pub(crate) fn alias_bomb(size: usize) -> String {
        let mut text = String::from("version: 3\na0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        let mut layer = 1;
        loop {
            let line = format!(
                "a{layer}: &a{layer} [{}]\n",
                vec![format!("*a{}", layer - 1); 10].join(", ")
            );
            if text.len() + line.len() > size {
                break;
            }
            text.push_str(&line);
            layer += 1;
        }
        text
    }

    #[test]
    fn a_one_mebibyte_alias_bomb_is_rejected_quickly() {
        let bomb = alias_bomb(MAX_DOCUMENT_BYTES);
        assert!(bomb.len() > MAX_DOCUMENT_BYTES - 200);
        let started = std::time::Instant::now();
        let error = parse(&bomb).expect_err("an alias bomb must be rejected");
        eprintln!("1 MiB alias bomb rejected in {:?}", started.elapsed());
        assert!(error.to_string().contains("alias"), "{error}");
    }

    #[test]
    fn oversized_input_is_rejected_before_parsing() {
        let text = "a: b\n".repeat(MAX_DOCUMENT_BYTES / 5 + 1);
        assert!(matches!(parse(&text), Err(SpecError::TooLarge { .. })));
    }

    #[test]
    fn deep_nesting_is_rejected() {
        let text = format!("a: {}{}", "[".repeat(200), "]".repeat(200));
        assert!(matches!(parse(&text), Err(SpecError::Yaml(_))));
    }

    #[test]
    fn yaml_1_1_numbers_and_duplicates_read_like_pyyaml() {
        assert_eq!(parse("a: 010").unwrap()["a"], 8);
        assert_eq!(parse("a: 1\na: 2").unwrap()["a"], 2);
        assert_eq!(parse("a: yes").unwrap()["a"], "yes");
        assert_eq!(yaml11_bool("Off"), Some(false));
        assert_eq!(yaml11_bool("y"), None);
    }
}
