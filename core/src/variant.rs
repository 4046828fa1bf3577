//! GVariant → JSON, the way rpm-ostree's `status --json` serialises D-Bus values
//! (json-glib's `json_gvariant_serialize`): strings, object paths and signatures become strings,
//! booleans booleans, all integer types numbers, arrays and tuples arrays, `a{s*}` dictionaries
//! objects, variants and maybes are unwrapped (`nothing` → null).

use ostree::glib;
use ostree::glib::VariantClass;
use serde_json::{Map, Value};

/// Convert any GVariant to JSON.
pub fn to_json(v: &glib::Variant) -> Value {
    match v.classify() {
        VariantClass::Boolean => Value::Bool(v.get::<bool>().unwrap_or_default()),
        VariantClass::Byte => Value::from(v.get::<u8>().unwrap_or_default()),
        VariantClass::Int16 => Value::from(v.get::<i16>().unwrap_or_default()),
        VariantClass::Uint16 => Value::from(v.get::<u16>().unwrap_or_default()),
        VariantClass::Int32 => Value::from(v.get::<i32>().unwrap_or_default()),
        VariantClass::Uint32 => Value::from(v.get::<u32>().unwrap_or_default()),
        VariantClass::Int64 => Value::from(v.get::<i64>().unwrap_or_default()),
        VariantClass::Uint64 => Value::from(v.get::<u64>().unwrap_or_default()),
        VariantClass::Handle => Value::from(
            v.get::<glib::variant::Handle>()
                .map(|h| h.0)
                .unwrap_or_default(),
        ),
        VariantClass::Double => serde_json::Number::from_f64(v.get::<f64>().unwrap_or_default())
            .map(Value::Number)
            .unwrap_or(Value::Null),
        VariantClass::String | VariantClass::ObjectPath | VariantClass::Signature => {
            Value::String(v.str().unwrap_or_default().to_string())
        }
        VariantClass::Variant => v
            .as_variant()
            .map(|inner| to_json(&inner))
            .unwrap_or(Value::Null),
        VariantClass::Maybe => {
            if v.n_children() == 0 {
                Value::Null
            } else {
                to_json(&v.child_value(0))
            }
        }
        VariantClass::Array => {
            let elem = v.type_().element();
            if elem.is_dict_entry() {
                Value::Object(dict_to_map(v))
            } else {
                Value::Array(v.iter().map(|c| to_json(&c)).collect())
            }
        }
        VariantClass::Tuple | VariantClass::DictEntry => {
            Value::Array(v.iter().map(|c| to_json(&c)).collect())
        }
        _ => Value::Null,
    }
}

/// Convert an `a{?*}` dictionary to a JSON object; keys that are not strings are rendered with
/// their JSON text.
pub fn dict_to_map(v: &glib::Variant) -> Map<String, Value> {
    let mut map = Map::new();
    for entry in v.iter() {
        if entry.n_children() != 2 {
            continue;
        }
        let key = entry.child_value(0);
        let key = match key.str() {
            Some(s) => s.to_string(),
            None => to_json(&key).to_string(),
        };
        map.insert(key, to_json(&entry.child_value(1)));
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;
    use glib::prelude::*;
    use serde_json::json;

    #[test]
    fn scalars() {
        assert_eq!(to_json(&true.to_variant()), json!(true));
        assert_eq!(to_json(&42u32.to_variant()), json!(42));
        assert_eq!(to_json(&(-7i64).to_variant()), json!(-7));
        assert_eq!(to_json(&"x".to_variant()), json!("x"));
        assert_eq!(to_json(&1.5f64.to_variant()), json!(1.5));
    }

    #[test]
    fn containers() {
        let dict = glib::VariantDict::new(None);
        dict.insert("version", "2");
        dict.insert("n", 3u64);
        dict.insert("list", vec!["a", "b"]);
        dict.insert_value("nested", &("s", 1i32, true).to_variant().to_variant());
        let v = dict.end();
        assert_eq!(
            to_json(&v),
            json!({"version": "2", "n": 3, "list": ["a", "b"], "nested": ["s", 1, true]})
        );
        let bytes = vec![1u8, 2, 3].to_variant();
        assert_eq!(to_json(&bytes), json!([1, 2, 3]));
    }

    #[test]
    fn maybe() {
        let none = glib::Variant::from_none(glib::VariantTy::STRING);
        assert_eq!(to_json(&none), Value::Null);
        let some = glib::Variant::from_some(&"v".to_variant());
        assert_eq!(to_json(&some), json!("v"));
    }
}
