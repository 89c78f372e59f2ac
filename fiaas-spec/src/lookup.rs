//! Upstream's way of reading a fiaas.yml through its defaults document ("lookup").
//!
//! Scalars fall back to the default when absent or null; maps resolve key by key; every element
//! of a user list is read through the *first* element of the default list. The v2 migration
//! uses the full, iteration-aware form ([`MapLookup`]); the v3 reader only needs the merged
//! document ([`overlay`]).

use serde_json::{Map, Value};

use crate::python::{repr, truthy, type_name};

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
            type_name(defaults)
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
                type_name(other)
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
                python_type_word(other)
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

fn python_type_word(value: &Value) -> &'static str {
    match value {
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float",
        Value::Number(_) => "int",
        _ => "object",
    }
}

/// The user's document laid over the defaults: every key the defaults know, user values where
/// given (null = default), user list elements completed from the first default element.
///
/// Unknown keys are dropped, as upstream ignores them. A user value of the wrong kind is kept
/// as it is, so that schema validation reports it at its path.
pub(crate) fn overlay(config: Option<&Value>, default: &Value) -> Value {
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
                // Upstream takes the length of an empty string or map: no elements.
                Some(Value::String(s)) if s.is_empty() => Value::Array(Vec::new()),
                Some(Value::Object(o)) if o.is_empty() => Value::Array(Vec::new()),
                Some(user) => user.clone(),
            }
        }
        scalar => config.cloned().unwrap_or_else(|| scalar.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn list_elements_inherit_from_the_first_default_element() {
        let defaults = json!({"ports": [{"protocol": "http", "name": "http", "port": 80, "target_port": 8080}]});
        let merged = overlay(
            Some(&json!({"ports": [{"target_port": 5000}, null]})),
            &defaults,
        );
        assert_eq!(
            merged,
            json!({"ports": [
                {"protocol": "http", "name": "http", "port": 80, "target_port": 5000},
                {"protocol": "http", "name": "http", "port": 80, "target_port": 8080}
            ]})
        );
    }

    #[test]
    fn falsy_maps_mean_defaults_and_empty_lists_mean_none() {
        let defaults = json!({"metrics": {"prometheus": {"enabled": true}}, "ports": [{"a": 1}]});
        let merged = overlay(
            Some(&json!({"metrics": {"prometheus": false}, "ports": {}})),
            &defaults,
        );
        assert_eq!(
            merged,
            json!({"metrics": {"prometheus": {"enabled": true}}, "ports": []})
        );
    }

    #[test]
    fn wrong_kinds_are_kept_for_the_schema_to_report() {
        let defaults = json!({"replicas": {"minimum": 2}});
        assert_eq!(
            overlay(Some(&json!({"replicas": 5})), &defaults),
            json!({"replicas": 5})
        );
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
