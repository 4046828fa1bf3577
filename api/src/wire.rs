//! Status model ↔ D-Bus values.
//!
//! The daemon serves each deployment as an `a{sv}` dictionary (the `Deployments` property and
//! the `OS` deployment properties); clients turn the dictionaries back into JSON the way
//! rpm-ostree's client does (json-glib's GVariant serialisation): variants unwrapped, tuples and
//! arrays as JSON arrays, `a{s*}` as objects.

use std::collections::HashMap;

use serde_json::{Map, Number, Value as Json};
use zbus::zvariant::{OwnedValue, StructureBuilder, Value};

use crate::status::DeploymentStatus;

/// A deployment dictionary as it goes over the bus.
pub type DeploymentDict = HashMap<String, OwnedValue>;

/// Keys whose D-Bus type is not what the generic JSON mapping would pick.
fn typed(key: &str, v: &Json) -> Option<Value<'static>> {
    match (key, v) {
        ("serial", Json::Number(n)) => n.as_i64().map(|i| Value::I32(i as i32)),
        ("custom-origin", Json::Array(a)) if a.len() == 2 => {
            let s = |i: usize| a[i].as_str().unwrap_or_default().to_string();
            StructureBuilder::new()
                .add_field(s(0))
                .add_field(s(1))
                .build()
                .ok()
                .map(Value::Structure)
        }
        _ => None,
    }
}

/// JSON → D-Bus value: strings `s`, booleans `b`, non-negative integers `t`, negative `x`,
/// other numbers `d`, arrays of strings `as`, other arrays `av`, objects `a{sv}`. `null` has
/// no D-Bus form and yields `None` (the key is left out).
pub fn json_to_value(v: &Json) -> Option<Value<'static>> {
    Some(match v {
        Json::Null => return None,
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => {
            if let Some(u) = n.as_u64() {
                Value::U64(u)
            } else if let Some(i) = n.as_i64() {
                Value::I64(i)
            } else {
                Value::F64(n.as_f64().unwrap_or_default())
            }
        }
        Json::String(s) => Value::Str(s.clone().into()),
        Json::Array(a) if a.iter().all(Json::is_string) => Value::from(
            a.iter()
                .map(|s| s.as_str().unwrap_or_default().to_string())
                .collect::<Vec<String>>(),
        ),
        Json::Array(a) => Value::from(
            a.iter()
                .filter_map(json_to_value)
                .map(|v| Value::Value(Box::new(v)))
                .collect::<Vec<Value<'static>>>(),
        ),
        Json::Object(o) => Value::from(object_to_dict(o)),
    })
}

fn object_to_dict(o: &Map<String, Json>) -> HashMap<String, Value<'static>> {
    o.iter()
        .filter_map(|(k, v)| {
            typed(k, v)
                .or_else(|| json_to_value(v))
                .map(|v| (k.clone(), v))
        })
        .collect()
}

/// A deployment as an `a{sv}` dictionary.
pub fn deployment_to_dict(d: &DeploymentStatus) -> DeploymentDict {
    let json = serde_json::to_value(d).unwrap_or_default();
    let Json::Object(o) = json else {
        return DeploymentDict::new();
    };
    object_to_dict(&o)
        .into_iter()
        .filter_map(|(k, v)| OwnedValue::try_from(v).ok().map(|v| (k, v)))
        .collect()
}

/// D-Bus value → JSON, as rpm-ostree's client serialises properties.
pub fn value_to_json(v: &Value<'_>) -> Json {
    match v {
        Value::U8(x) => Json::from(*x),
        Value::Bool(x) => Json::Bool(*x),
        Value::I16(x) => Json::from(*x),
        Value::U16(x) => Json::from(*x),
        Value::I32(x) => Json::from(*x),
        Value::U32(x) => Json::from(*x),
        Value::I64(x) => Json::from(*x),
        Value::U64(x) => Json::from(*x),
        Value::F64(x) => Number::from_f64(*x).map(Json::Number).unwrap_or(Json::Null),
        Value::Str(s) => Json::String(s.to_string()),
        Value::Signature(s) => Json::String(s.to_string()),
        Value::ObjectPath(p) => Json::String(p.to_string()),
        Value::Value(inner) => value_to_json(inner),
        Value::Array(a) => Json::Array(a.iter().map(value_to_json).collect()),
        Value::Dict(d) => {
            let mut m = Map::new();
            for (k, v) in d.iter() {
                let key = match k {
                    Value::Str(s) => s.to_string(),
                    other => value_to_json(other).to_string(),
                };
                m.insert(key, value_to_json(v));
            }
            Json::Object(m)
        }
        Value::Structure(s) => Json::Array(s.fields().iter().map(value_to_json).collect()),
        #[allow(unreachable_patterns)]
        _ => Json::Null,
    }
}

/// A deployment dictionary → JSON object, keys sorted like rpm-ostree's output.
pub fn dict_to_json(d: &DeploymentDict) -> Json {
    let mut keys: Vec<&String> = d.keys().collect();
    keys.sort();
    let mut m = Map::new();
    for k in keys {
        m.insert(k.clone(), value_to_json(&d[k]));
    }
    Json::Object(m)
}

/// A deployment dictionary → the typed model.
pub fn dict_to_deployment(d: &DeploymentDict) -> Result<DeploymentStatus, serde_json::Error> {
    serde_json::from_value(dict_to_json(d))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample() -> DeploymentStatus {
        let mut meta = Map::new();
        meta.insert("version".into(), json!("41.1"));
        meta.insert("n".into(), json!(3));
        meta.insert("neg".into(), json!(-3));
        meta.insert("list".into(), json!(["a", "b"]));
        meta.insert("nested".into(), json!({"x": true}));
        DeploymentStatus {
            id: "fedora-abc.0".into(),
            osname: "fedora".into(),
            serial: 2,
            checksum: "abc".into(),
            booted: true,
            unlocked: "none".into(),
            version: Some("41.1".into()),
            timestamp: 1_700_000_000,
            origin: Some("fedora:fedora/x86_64/coreos/stable".into()),
            custom_origin: Some(("https://x".into(), "desc".into())),
            signatures: Some(vec![json!([true, false, "FPR", 7])]),
            base_commit_meta: meta,
            ..Default::default()
        }
    }

    #[test]
    fn types_on_the_wire() {
        let d = deployment_to_dict(&sample());
        assert_eq!(d["serial"].value_signature().to_string(), "i");
        assert_eq!(d["timestamp"].value_signature().to_string(), "t");
        assert_eq!(d["booted"].value_signature().to_string(), "b");
        assert_eq!(d["packages"].value_signature().to_string(), "as");
        assert_eq!(d["base-commit-meta"].value_signature().to_string(), "a{sv}");
        assert_eq!(d["custom-origin"].value_signature().to_string(), "(ss)");
        assert_eq!(d["signatures"].value_signature().to_string(), "av");
        assert!(
            !d.contains_key("pending-base-checksum"),
            "None fields are left out"
        );
    }

    #[test]
    fn round_trip_through_dbus_values() {
        let orig = sample();
        let d = deployment_to_dict(&orig);
        let back = dict_to_deployment(&d).unwrap();
        assert_eq!(back, orig);
        let j = dict_to_json(&d);
        assert_eq!(j["base-commit-meta"]["nested"], json!({"x": true}));
        assert_eq!(j["base-commit-meta"]["neg"], json!(-3));
        assert_eq!(j["packages"], json!([]));
    }
}
