//! The one place YAML is read and written, so the YAML crate can be swapped here alone.

use serde::Serialize;
use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use serde_saphyr::Spanned;

use crate::SpecError;
use crate::lookup::{at, at_mut};

/// Largest fiaas.yml accepted; Kubernetes itself refuses objects much above this.
pub const MAX_DOCUMENT_BYTES: usize = 1024 * 1024;

/// Deepest nesting accepted; a real fiaas.yml is under ten levels deep.
const MAX_DEPTH: usize = 64;

fn options() -> serde_saphyr::Options {
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
        // `.inf` and `.nan` are floats to PyYAML; `Tree` reads them as Python prints them.
        non_finite_float_policy: serde_saphyr::NonFiniteFloatPolicy::PassThrough,
        // `Tree` merges as PyYAML does: of two `<<` keys, the later wins.
        merge_keys: serde_saphyr::MergeKeyPolicy::AsOrdinary,
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
    parse_full(text)
}

/// [`parse`] without the fast path for plain block documents.
pub(crate) fn parse_full(text: &str) -> Result<Value, SpecError> {
    read(text, options(), false)
}

/// Parse one YAML document as PyYAML's `safe_load` reads it, YAML 1.1 booleans included
/// wherever they are, within the same limits as [`parse_document`](crate::parse_document): for
/// the files other than fiaas.yml that upstream read with PyYAML, such as the cluster
/// configuration file.
pub fn parse_pyyaml(text: &str) -> Result<Value, SpecError> {
    if text.len() > MAX_DOCUMENT_BYTES {
        return Err(SpecError::TooLarge {
            size: text.len(),
            limit: MAX_DOCUMENT_BYTES,
        });
    }
    read(text, options(), true)
}

/// `text` read with `options` as PyYAML reads it; with `booleans`, a plain YAML 1.1 boolean
/// word is a boolean anywhere.
fn read(text: &str, options: serde_saphyr::Options, booleans: bool) -> Result<Value, SpecError> {
    serde_saphyr::from_str_with_options::<Tree>(text, options)
        .map_err(|e| SpecError::Yaml(first_line(&e.to_string())))?
        .into_value(text, booleans)
}

/// A document as the YAML parser reads it, each scalar with the byte offset where it is defined,
/// so that its text can be read again as PyYAML's YAML 1.1 resolver reads it (`1:30` is 90,
/// `0o10` and `1e3` are text): the parser resolves plain scalars the YAML 1.2 way.
enum Tree {
    Scalar(Value, Option<usize>),
    Seq(Vec<Tree>),
    Map(Vec<(String, Tree)>),
}

impl Tree {
    fn at(self, spanned: serde_saphyr::Location) -> Tree {
        match self {
            Tree::Scalar(value, _) => Tree::Scalar(
                value,
                spanned
                    .span()
                    .byte_offset()
                    .and_then(|o| usize::try_from(o).ok()),
            ),
            other => other,
        }
    }

    fn into_value(self, text: &str, booleans: bool) -> Result<Value, SpecError> {
        Ok(match self {
            Tree::Scalar(value, offset) => offset
                .and_then(|offset| text.get(offset..))
                .and_then(|source| yaml11_reading(&value, source, booleans))
                .unwrap_or(value),
            Tree::Seq(items) => Value::Array(
                items
                    .into_iter()
                    .map(|t| t.into_value(text, booleans))
                    .collect::<Result<_, _>>()?,
            ),
            Tree::Map(entries) => {
                // As yaml/constructor.py's flatten_mapping: the merged entries come first, those
                // of a later `<<` after those of an earlier one, and of a list of mappings the
                // first last; then the mapping's own. A later entry overwrites an earlier one.
                let mut merged = Vec::new();
                let mut own = Map::with_capacity(entries.len());
                for (key, tree) in entries {
                    let value = tree.into_value(text, booleans)?;
                    if key != "<<" {
                        own.insert(key, value);
                        continue;
                    }
                    match value {
                        Value::Object(map) => merged.push(map),
                        Value::Array(maps) => {
                            let mut maps = maps
                                .into_iter()
                                .map(|m| match m {
                                    Value::Object(map) => Ok(map),
                                    _ => Err(merge_error()),
                                })
                                .collect::<Result<Vec<_>, _>>()?;
                            maps.reverse();
                            merged.extend(maps);
                        }
                        _ => return Err(merge_error()),
                    }
                }
                if merged.is_empty() {
                    return Ok(Value::Object(own));
                }
                let mut map = Map::new();
                for (key, value) in merged.into_iter().flatten().chain(own) {
                    map.insert(key, value);
                }
                Value::Object(map)
            }
        })
    }
}

/// What PyYAML reads from the scalar `value` was parsed from, when it differs: `source` is the
/// document from the scalar on. Only a plain scalar made of the characters of numbers can
/// differ, and, with `booleans`, a YAML 1.1 boolean word; nulls are read alike. (In a
/// fiaas.yml, YAML 1.1 booleans are booleans only where fiaas expects one, see
/// [`read_plain_booleans`].)
fn yaml11_reading(value: &Value, source: &str, booleans: bool) -> Option<Value> {
    if !matches!(value, Value::Number(_) | Value::String(_)) {
        return None;
    }
    let end = source
        .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '+' | '-')))
        .unwrap_or(source.len());
    let plain = &source[..end];
    let whole_scalar = match value {
        Value::String(s) => s == plain,
        // A number is all number characters; a non-finite one was read from a `.inf`.
        _ => !plain.is_empty(),
    };
    if !whole_scalar {
        return None;
    }
    if booleans && let Some(b) = yaml11_bool(plain) {
        return Some(Value::Bool(b));
    }
    Some(match crate::python::yaml11_number(plain) {
        None => Value::String(plain.to_owned()),
        Some(crate::python::Yaml11Number::Int(n)) => i64::try_from(n)
            .map(Value::from)
            .or_else(|_| u64::try_from(n).map(Value::from))
            .unwrap_or_else(|_| Value::String(n.to_string())),
        Some(crate::python::Yaml11Number::Float(f)) if f.is_finite() => Value::from(f),
        // JSON has no infinities: the text Python prints for them, where they become text.
        Some(crate::python::Yaml11Number::Float(f)) => Value::String(crate::python::float_repr(f)),
    })
}

/// PyYAML's message for a `<<` that is not a mapping or a list of mappings.
fn merge_error() -> SpecError {
    SpecError::Yaml(
        "while constructing a mapping: expected a mapping or list of mappings for merging".into(),
    )
}

impl<'de> Deserialize<'de> for Tree {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(TreeVisitor)
    }
}

struct TreeVisitor;

/// Stack left below which reading a nested node gets a new stack segment, and its size.
const STACK_RED_ZONE: usize = 256 * 1024;
const STACK_GROWTH: usize = 4 * 1024 * 1024;

impl<'de> Visitor<'de> for TreeVisitor {
    type Value = Tree;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a YAML node")
    }

    fn visit_bool<E>(self, b: bool) -> Result<Tree, E> {
        Ok(Tree::Scalar(Value::Bool(b), None))
    }

    fn visit_i64<E>(self, n: i64) -> Result<Tree, E> {
        Ok(Tree::Scalar(Value::from(n), None))
    }

    fn visit_u64<E>(self, n: u64) -> Result<Tree, E> {
        Ok(Tree::Scalar(Value::from(n), None))
    }

    fn visit_f64<E>(self, f: f64) -> Result<Tree, E> {
        Ok(Tree::Scalar(
            if f.is_finite() {
                Value::from(f)
            } else {
                Value::String(crate::python::float_repr(f))
            },
            None,
        ))
    }

    fn visit_str<E>(self, s: &str) -> Result<Tree, E> {
        Ok(Tree::Scalar(Value::String(s.to_owned()), None))
    }

    fn visit_string<E>(self, s: String) -> Result<Tree, E> {
        Ok(Tree::Scalar(Value::String(s), None))
    }

    fn visit_unit<E>(self) -> Result<Tree, E> {
        Ok(Tree::Scalar(Value::Null, None))
    }

    fn visit_none<E>(self) -> Result<Tree, E> {
        Ok(Tree::Scalar(Value::Null, None))
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Tree, D::Error> {
        Tree::deserialize(deserializer)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Tree, A::Error> {
        // A level of nesting takes tens of kilobytes of stack in the parser; the depth limit
        // allows more levels than a 2 MiB thread stack holds.
        stacker::maybe_grow(STACK_RED_ZONE, STACK_GROWTH, || {
            let mut items = Vec::new();
            while let Some(item) = seq.next_element::<Spanned<Tree>>()? {
                items.push(item.value.at(item.defined));
            }
            Ok(Tree::Seq(items))
        })
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Tree, A::Error> {
        stacker::maybe_grow(STACK_RED_ZONE, STACK_GROWTH, || {
            let mut entries = Vec::new();
            while let Some(key) = map.next_key::<String>()? {
                let value = map.next_value::<Spanned<Tree>>()?;
                entries.push((key, value.value.at(value.defined)));
            }
            Ok(Tree::Map(entries))
        })
    }
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
    let Ok(yaml11) = read(text, options_with(false), false) else {
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
    fn plain_scalars_and_merge_keys_read_like_pyyaml() {
        // Expectations printed by PyYAML's safe_load.
        let document = parse(
            "a: 1:30\nb: 0o755\nc: 1e3\nd: .inf\ne: '1:30'\nf: [1_000, -.inf, .nan, 09]\n\
             g: &g 1:30\nh: *g\nx: &x {k: 1, m: 1}\ny: &y {k: 2, n: 2}\n\
             two: {<<: *x, <<: *y}\nlist: {<<: [*x, *y]}\nown: {<<: *x, k: 9}\n",
        )
        .unwrap();
        assert_eq!(document["a"], 90);
        assert_eq!(document["b"], "0o755");
        assert_eq!(document["c"], "1e3");
        assert_eq!(document["d"], "inf");
        assert_eq!(document["e"], "1:30");
        assert_eq!(
            document["f"],
            serde_json::json!([1000, "-inf", "nan", "09"])
        );
        assert_eq!(document["h"], 90);
        assert_eq!(document["two"], serde_json::json!({"k": 2, "m": 1, "n": 2}));
        assert_eq!(
            document["list"],
            serde_json::json!({"k": 1, "n": 2, "m": 1})
        );
        let keys: Vec<&String> = document["list"].as_object().unwrap().keys().collect();
        assert_eq!(keys, ["k", "n", "m"]);
        assert_eq!(document["own"], serde_json::json!({"k": 9, "m": 1}));
        assert!(parse("a: {<<: 5}").is_err());
    }

    #[test]
    fn parse_pyyaml_reads_yaml_1_1_booleans_everywhere() {
        // Expectations printed by PyYAML's safe_load.
        let document = parse_pyyaml("a: [yes, Off, y, n, 'yes', TRUE, tRue, 1:30]\n").unwrap();
        assert_eq!(
            document["a"],
            serde_json::json!([true, false, "y", "n", "yes", true, "tRue", 90])
        );
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
