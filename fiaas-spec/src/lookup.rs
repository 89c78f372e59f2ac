//! Upstream's way of reading a fiaas.yml through its defaults document ("lookup").
//!
//! Scalars fall back to the default when absent or null; maps resolve key by key; every element
//! of a user list is read through the *first* element of the default list. The v2 migration
//! uses the full, iteration-aware form ([`MapLookup`]); the v3 reader only needs the merged
//! document ([`Merged`]).

use serde::Deserializer;
use serde::de::value::BorrowedStrDeserializer;
use serde::de::{DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use crate::python::{repr, truthy, type_name, type_repr};

/// The value at `path`, a key per level (what `Value::pointer` finds, without unescaping and
/// allocating each segment).
pub(crate) fn at<'a>(value: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(value, |v, key| v.get(key))
}

/// [`at`], mutable.
pub(crate) fn at_mut<'a>(value: &'a mut Value, path: &[&str]) -> Option<&'a mut Value> {
    path.iter().try_fold(value, |v, key| v.get_mut(key))
}

/// A failure upstream raised while reading through its defaults.
#[derive(Debug)]
pub(crate) struct LookupError(pub String);

/// One resolved node.
pub(crate) enum Node<'a> {
    Map(MapLookup<'a>),
    List(ListLookup<'a>),
    Scalar(Value),
}

impl Node<'_> {
    /// The node as a plain value, expanding nested lookups like upstream's `_flatten`/`dict()`.
    pub(crate) fn materialise(&self) -> Result<Value, LookupError> {
        match self {
            Node::Map(m) => m.materialise(),
            Node::List(l) => l.materialise(),
            Node::Scalar(v) => Ok(v.clone()),
        }
    }
}

fn same_kind(a: &Value, b: &Value) -> bool {
    matches!(
        (a, b),
        (Value::Object(_), Value::Object(_))
            | (Value::Array(_), Value::Array(_))
            | (Value::String(_), Value::String(_))
            | (Value::Bool(_), Value::Bool(_))
            | (Value::Null, Value::Null)
    ) || (a.is_number() && b.is_number() && a.is_f64() == b.is_f64())
}

fn type_check(config: Option<&Value>, defaults: &Value) -> Result<(), LookupError> {
    if let Some(c) = config
        && truthy(c)
        && truthy(defaults)
        && !same_kind(c, defaults)
    {
        return Err(LookupError(format!(
            "{} is not of the expected type {}",
            repr(c),
            type_repr(defaults)
        )));
    }
    Ok(())
}

fn node<'a>(
    config: Option<&'a Value>,
    default: Option<&'a Value>,
) -> Result<Node<'a>, LookupError> {
    match default {
        Some(d @ Value::Array(_)) => Ok(Node::List(ListLookup::new(config, d)?)),
        Some(d @ Value::Object(_)) => Ok(Node::Map(MapLookup::new(config, d)?)),
        _ => Ok(Node::Scalar(
            config
                .filter(|c| !c.is_null())
                .or(default)
                .cloned()
                .unwrap_or(Value::Null),
        )),
    }
}

/// A mapping read through its defaults.
pub(crate) struct MapLookup<'a> {
    config: Option<&'a Value>,
    defaults: &'a Value,
}

impl<'a> MapLookup<'a> {
    pub(crate) fn new(config: Option<&'a Value>, defaults: &'a Value) -> Result<Self, LookupError> {
        type_check(config, defaults)?;
        Ok(MapLookup { config, defaults })
    }

    /// The user's own value for `key`, if the user's map is non-empty and has it.
    pub(crate) fn config_value(&self, key: &str) -> Option<&'a Value> {
        self.config.filter(|c| truthy(c)).and_then(|c| c.get(key))
    }

    pub(crate) fn get(&self, key: &str) -> Result<Node<'a>, LookupError> {
        node(self.config_value(key), self.defaults.get(key))
    }

    fn len_of(value: Option<&Value>) -> i64 {
        match value {
            None | Some(Value::Null) => -1,
            Some(Value::Object(o)) => o.len() as i64,
            Some(Value::Array(a)) => a.len() as i64,
            Some(Value::String(s)) => s.chars().count() as i64,
            Some(_) => 0,
        }
    }

    /// Keys in upstream's iteration order: the defaults' keys when they outnumber the user's,
    /// else the user's (so a big user map hides the defaults) [match].
    pub(crate) fn keys(&self) -> Result<Vec<String>, LookupError> {
        let source = if Self::len_of(Some(self.defaults)) > Self::len_of(self.config) {
            Some(self.defaults)
        } else {
            self.config
        };
        match source {
            Some(Value::Object(o)) => Ok(o.keys().cloned().collect()),
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(other) => Err(LookupError(format!(
                "{} object is not iterable as a mapping",
                type_repr(other)
            ))),
        }
    }

    pub(crate) fn materialise(&self) -> Result<Value, LookupError> {
        let mut out = Map::new();
        for key in self.keys()? {
            let value = self.get(&key)?.materialise()?;
            out.insert(key, value);
        }
        Ok(Value::Object(out))
    }
}

/// A list read through the first element of its default list.
pub(crate) struct ListLookup<'a> {
    config: Option<&'a Value>,
    defaults: &'a Value,
}

impl<'a> ListLookup<'a> {
    fn new(config: Option<&'a Value>, defaults: &'a Value) -> Result<Self, LookupError> {
        type_check(config, defaults)?;
        Ok(ListLookup { config, defaults })
    }

    pub(crate) fn len(&self) -> Result<usize, LookupError> {
        match self.config.filter(|c| !c.is_null()) {
            None => Ok(self.defaults.as_array().map_or(0, Vec::len)),
            Some(Value::Array(a)) => Ok(a.len()),
            Some(Value::Object(o)) => Ok(o.len()),
            Some(Value::String(s)) => Ok(s.chars().count()),
            Some(other) => Err(LookupError(format!(
                "object of type '{}' has no len()",
                type_name(other)
            ))),
        }
    }

    pub(crate) fn get(&self, index: usize) -> Result<Node<'a>, LookupError> {
        let len = self.len()?;
        if index >= len {
            return Err(LookupError(format!(
                "Index {index} out of bounds for sequence of length {len}"
            )));
        }
        let config = self
            .config
            .filter(|c| truthy(c))
            .and_then(|c| c.as_array())
            .and_then(|a| a.get(index));
        let default = self.defaults.as_array().and_then(|a| a.first());
        node(config, default)
    }

    fn materialise(&self) -> Result<Value, LookupError> {
        let mut out = Vec::new();
        for i in 0..self.len()? {
            out.push(self.get(i)?.materialise()?);
        }
        Ok(Value::Array(out))
    }
}

/// The user's document laid over the defaults, read in place: every key the defaults know,
/// user values where given (null = default), user list elements completed from the first default
/// element.
///
/// Unknown keys are dropped, as upstream ignores them. A user value of the wrong kind is kept as
/// it is, so that schema validation reports it at its path. Deserialising from this view gives
/// what deserialising the merged document would, without building that document (a hundred keys
/// of defaults, copied for every deploy).
#[derive(Clone, Copy)]
pub(crate) enum Merged<'a> {
    /// A value taken whole.
    Raw(&'a Value),
    /// The user's value, if any, laid over its default.
    Over {
        config: Option<&'a Value>,
        default: &'a Value,
    },
}

/// What a [`Merged`] node turns out to be.
enum Shape<'a> {
    Value(&'a Value),
    Map {
        config: Option<&'a Map<String, Value>>,
        defaults: &'a Map<String, Value>,
    },
    List(Elements<'a>),
}

impl<'a> Merged<'a> {
    pub(crate) fn over(config: Option<&'a Value>, default: &'a Value) -> Self {
        Merged::Over {
            config: config.filter(|c| !c.is_null()),
            default,
        }
    }

    fn shape(self) -> Shape<'a> {
        let (config, default) = match self {
            Merged::Raw(value) => return Shape::Value(value),
            Merged::Over { config, default } => (config, default),
        };
        match default {
            Value::Object(defaults) if !defaults.is_empty() => match config {
                Some(Value::Object(user)) => Shape::Map {
                    config: Some(user),
                    defaults,
                },
                Some(user) if truthy(user) => Shape::Value(user),
                _ => Shape::Map {
                    config: None,
                    defaults,
                },
            },
            Value::Object(defaults) => match config {
                Some(user) if truthy(user) => Shape::Value(user),
                _ => Shape::Map {
                    config: None,
                    defaults,
                },
            },
            Value::Array(defaults) => match config {
                None => Shape::List(Elements {
                    items: defaults.iter(),
                    from_user: false,
                    first: defaults.first(),
                }),
                Some(Value::Array(user)) => Shape::List(Elements {
                    items: user.iter(),
                    from_user: true,
                    first: defaults.first(),
                }),
                // Upstream takes the length of an empty string or map: no elements.
                Some(Value::String(s)) if s.is_empty() => Shape::List(Elements::none()),
                Some(Value::Object(o)) if o.is_empty() => Shape::List(Elements::none()),
                Some(user) => Shape::Value(user),
            },
            scalar => Shape::Value(config.unwrap_or(scalar)),
        }
    }
}

impl<'de> Deserializer<'de> for Merged<'de> {
    type Error = serde_json::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.shape() {
            Shape::Value(value) => value.deserialize_any(visitor),
            Shape::Map { config, defaults } => visitor.visit_map(Fields {
                defaults: defaults.iter(),
                config,
                value: None,
            }),
            Shape::List(elements) => visitor.visit_seq(elements),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.shape() {
            Shape::Value(value) => value.deserialize_option(visitor),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        visitor.visit_unit()
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        unit unit_struct newtype_struct seq tuple tuple_struct map struct enum identifier
    }
}

/// The entries of a merged map, in the defaults' order.
struct Fields<'a> {
    defaults: serde_json::map::Iter<'a>,
    config: Option<&'a Map<String, Value>>,
    value: Option<Merged<'a>>,
}

impl<'de> MapAccess<'de> for Fields<'de> {
    type Error = serde_json::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Self::Error> {
        let Some((key, default)) = self.defaults.next() else {
            return Ok(None);
        };
        self.value = Some(Merged::over(self.config.and_then(|c| c.get(key)), default));
        seed.deserialize(BorrowedStrDeserializer::new(key))
            .map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, Self::Error> {
        let value = self
            .value
            .take()
            .expect("serde asks for a map value only after its key");
        seed.deserialize(value)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.defaults.len())
    }
}

/// The elements of a merged list: the user's, or the defaults', each read through the first
/// default element.
struct Elements<'a> {
    items: std::slice::Iter<'a, Value>,
    from_user: bool,
    first: Option<&'a Value>,
}

impl Elements<'_> {
    fn none() -> Self {
        Elements {
            items: [].iter(),
            from_user: true,
            first: None,
        }
    }
}

impl<'de> SeqAccess<'de> for Elements<'de> {
    type Error = serde_json::Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Self::Error> {
        let Some(item) = self.items.next() else {
            return Ok(None);
        };
        let element = match (self.from_user, self.first) {
            (true, Some(first)) => Merged::over(Some(item), first),
            (true, None) => Merged::Raw(item),
            (false, first) => Merged::over(None, first.unwrap_or(item)),
        };
        seed.deserialize(element).map(Some)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

/// What the user gave of the merged document ([`Merged`]): the merged document without the
/// values it takes whole from the defaults. Those keys are left out; a list element taken whole
/// from the default element is null, which reads back as that default.
///
/// `None` when the whole node comes from the defaults. Reading `given` through [`Merged`] gives
/// the same document as reading `config` through it.
pub(crate) fn given(config: Option<&Value>, default: &Value) -> Option<Value> {
    let config = config.filter(|c| !c.is_null())?;
    match default {
        Value::Object(defaults) if !defaults.is_empty() => match config {
            Value::Object(user) => Some(Value::Object(
                defaults
                    .iter()
                    .filter_map(|(k, d)| Some((k.clone(), given(user.get(k), d)?)))
                    .collect(),
            )),
            user => truthy(user).then(|| user.clone()),
        },
        Value::Object(_) => truthy(config).then(|| config.clone()),
        Value::Array(defaults) => Some(match (config, defaults.first()) {
            (Value::Array(user), Some(first)) => Value::Array(
                user.iter()
                    .map(|e| given(Some(e), first).unwrap_or(Value::Null))
                    .collect(),
            ),
            (Value::String(s), _) if s.is_empty() => Value::Array(Vec::new()),
            (Value::Object(o), _) if o.is_empty() => Value::Array(Vec::new()),
            (user, _) => user.clone(),
        }),
        _ => Some(config.clone()),
    }
}

/// Whether `config` (not null) is already what [`given`] keeps of it, but for the order of
/// keys, so that it can be validated and read through [`Merged`] as it is. Floats are left to
/// [`given`]'s caller, which turns integral ones into integers.
pub(crate) fn is_given(config: &Value, default: &Value) -> bool {
    match (config, default) {
        (Value::Object(user), Value::Object(defaults)) if !defaults.is_empty() => user
            .iter()
            .all(|(k, v)| !v.is_null() && defaults.get(k).is_some_and(|d| is_given(v, d))),
        (_, Value::Object(_)) => truthy(config) && !has_float(config),
        (Value::Array(user), Value::Array(defaults)) if !defaults.is_empty() => user
            .iter()
            .all(|e| e.is_null() || is_given(e, &defaults[0])),
        (Value::String(s), Value::Array(_)) if s.is_empty() => false,
        (Value::Object(o), Value::Array(_)) if o.is_empty() => false,
        _ => !has_float(config),
    }
}

fn has_float(value: &Value) -> bool {
    match value {
        Value::Number(n) => n.is_f64(),
        Value::Array(items) => items.iter().any(has_float),
        Value::Object(map) => map.values().any(has_float),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The merged document built outright, as the v3 reader once did: the reference [`Merged`]
    /// and [`given`] are checked against.
    fn overlay(config: Option<&Value>, default: &Value) -> Value {
        let config = config.filter(|c| !c.is_null());
        match default {
            Value::Object(defaults) if !defaults.is_empty() => match config {
                Some(Value::Object(user)) => Value::Object(
                    defaults
                        .iter()
                        .map(|(k, d)| (k.clone(), overlay(user.get(k), d)))
                        .collect(),
                ),
                Some(user) if truthy(user) => user.clone(),
                _ => Value::Object(
                    defaults
                        .iter()
                        .map(|(k, d)| (k.clone(), overlay(None, d)))
                        .collect(),
                ),
            },
            Value::Object(_) => match config {
                Some(user) if truthy(user) => user.clone(),
                _ => Value::Object(Map::new()),
            },
            Value::Array(defaults) => {
                let first = defaults.first();
                match config {
                    None => Value::Array(
                        defaults
                            .iter()
                            .map(|d| overlay(None, first.unwrap_or(d)))
                            .collect(),
                    ),
                    Some(Value::Array(user)) => Value::Array(
                        user.iter()
                            .map(|e| match first {
                                Some(d) => overlay(Some(e), d),
                                None => e.clone(),
                            })
                            .collect(),
                    ),
                    Some(Value::String(s)) if s.is_empty() => Value::Array(Vec::new()),
                    Some(Value::Object(o)) if o.is_empty() => Value::Array(Vec::new()),
                    Some(user) => user.clone(),
                }
            }
            scalar => config.cloned().unwrap_or_else(|| scalar.clone()),
        }
    }

    /// The merged document read through [`Merged`], checked against [`overlay`] (in order too),
    /// and read again from what [`given`] keeps of it.
    fn merged(config: &Value, defaults: &Value) -> Value {
        use serde::Deserialize;
        let read = |config: Option<&Value>| {
            Value::deserialize(Merged::over(config, defaults)).expect("a merged document reads")
        };
        let merged = read(Some(config));
        let reference = overlay(Some(config), defaults);
        assert_eq!(merged.to_string(), reference.to_string());
        let kept = given(Some(config), defaults);
        assert_eq!(read(kept.as_ref()).to_string(), reference.to_string());
        if is_given(config, defaults) {
            assert_eq!(kept.as_ref(), Some(config), "{config} is not all given");
        }
        merged
    }

    #[test]
    fn list_elements_inherit_from_the_first_default_element() {
        let defaults = json!({"ports": [{"protocol": "http", "name": "http", "port": 80, "target_port": 8080}]});
        let config = json!({"ports": [{"target_port": 5000}, null]});
        assert_eq!(
            merged(&config, &defaults),
            json!({"ports": [
                {"protocol": "http", "name": "http", "port": 80, "target_port": 5000},
                {"protocol": "http", "name": "http", "port": 80, "target_port": 8080}
            ]})
        );
        assert_eq!(
            given(Some(&config), &defaults),
            Some(json!({"ports": [{"target_port": 5000}, null]}))
        );
    }

    #[test]
    fn falsy_maps_mean_defaults_and_empty_lists_mean_none() {
        let defaults = json!({"metrics": {"prometheus": {"enabled": true}}, "ports": [{"a": 1}]});
        let config = json!({"metrics": {"prometheus": false}, "ports": {}});
        assert_eq!(
            merged(&config, &defaults),
            json!({"metrics": {"prometheus": {"enabled": true}}, "ports": []})
        );
        assert_eq!(
            given(Some(&config), &defaults),
            Some(json!({"metrics": {}, "ports": []}))
        );
    }

    #[test]
    fn wrong_kinds_are_kept_for_the_schema_to_report() {
        let defaults = json!({"replicas": {"minimum": 2}, "ports": [{"a": 1}], "x": {}});
        let config = json!({"replicas": 5, "ports": false, "x": [1]});
        assert_eq!(merged(&config, &defaults), config);
        assert_eq!(given(Some(&config), &defaults), Some(config));
    }

    /// [`merged`] with the v3 defaults, and validation of what the user gave finding what it
    /// would in the whole merged document.
    fn check_v3(document: &Value) {
        let defaults = crate::defaults::v3_effective();
        merged(document, defaults);
        let mut whole = overlay(Some(document), defaults);
        crate::schema::integral_floats_to_ints(&mut whole, false);
        let mut kept = given(Some(document), defaults).expect("a v3 document gives a version");
        crate::schema::integral_floats_to_ints(&mut kept, false);
        assert_eq!(
            crate::schema::violations(&kept),
            crate::schema::violations(&whole),
            "{document}"
        );
    }

    #[test]
    fn invalid_documents_are_found_so_merged_or_not() {
        for text in [
            "version: 3\nreplicas: {minimum: two, maximum: 2.0}\nports: [{port: 99999}]\nlabels: {pod: {a: [1]}}",
            "version: 3\nreplicas: 5\ningress: [{paths: [{port: 1.5}, null, 7]}, null, 3]",
            "version: 3\nports: [null, {protocol: udp}, {port: -1}, []]\nextensions: {secrets: {vault: {parameters: {a: 1}}}}",
            "version: 3\nmetrics: {prometheus: {enabled: 3}, datadog: {tags: {a: [1]}}}\nhealthchecks: {liveness: {http: {port: [1]}}}\nresources: {limits: {cpu: []}}",
            "version: 3\nannotations: {pod: {a: {b: c}}}\nextensions: {tls: {enabled: 1}, strongbox: {groups: [1, 2]}}",
            "version: 3\nsecrets_in_environment: 1\nadmin_access: x\ningress: {a: 1}\nhealthchecks: [1]",
            "version: 3.0\nreplicas: {minimum: -1.0}\ningress: [{host: 1, paths: {a: b}, annotations: []}]",
        ] {
            let document = crate::parse_document(text).expect("the test documents are YAML");
            assert!(
                !crate::schema::violations(&document).is_empty(),
                "{text} should be invalid"
            );
            check_v3(&document);
        }
    }

    #[test]
    fn every_fixture_reads_as_its_merged_document() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures");
        let mut dirs = vec![root];
        let mut read = 0;
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).expect("the fixtures are readable") {
                let path = entry.expect("a directory entry").path();
                if path.is_dir() {
                    dirs.push(path);
                } else if path.extension().is_some_and(|e| e == "yml" || e == "yaml")
                    && let Ok(text) = std::fs::read_to_string(&path)
                    && let Ok(document) = crate::parse_document(&text)
                    && let Ok(v3) = crate::to_v3(&document, false)
                {
                    check_v3(&v3);
                    read += 1;
                }
            }
        }
        assert!(read > 100, "only {read} fixtures read");
    }

    #[test]
    fn lookup_type_check_quotes_python() {
        let defaults = json!({"replicas": {"minimum": 2}});
        let config = json!({"replicas": 5});
        let top = MapLookup::new(Some(&config), &defaults).unwrap();
        let Err(LookupError(message)) = top.get("replicas") else {
            panic!("expected an error")
        };
        assert_eq!(message, "5 is not of the expected type <class 'dict'>");
    }

    #[test]
    fn big_user_maps_hide_the_defaults_when_iterated() {
        let defaults = json!({"enabled": true, "port": "http", "path": "/x"});
        let config = json!({"enabled": false, "a": 1, "b": 2});
        let lookup = MapLookup::new(Some(&config), &defaults).unwrap();
        assert_eq!(
            lookup.materialise().unwrap(),
            json!({"enabled": false, "a": 1, "b": 2})
        );
    }
}
