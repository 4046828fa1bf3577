//! GLib variants (what libostree and the engine produce) as zbus values (what goes on the bus).
//!
//! Written here because neither library converts to the other: zvariant's own GVariant decoding
//! is deprecated (to leave for another crate), and glib only marshals whole D-Bus messages. The
//! conversion is by type, one level at a time, so any well-formed variant maps, including empty
//! arrays (their element type comes from the GLib type string).

use anyhow::{anyhow, Result};
use ostree::glib;
use ostree::glib::VariantClass;
use zbus::zvariant::{Array, Dict, ObjectPath, OwnedValue, Signature, StructureBuilder, Value};

/// A GLib `a{sv}` as a D-Bus dictionary.
pub(crate) fn to_dict(v: &glib::Variant) -> Result<std::collections::HashMap<String, OwnedValue>> {
    if v.type_() != glib::VariantTy::VARDICT {
        return Err(anyhow!("expected a{{sv}}, got {}", v.type_()));
    }
    let mut out = std::collections::HashMap::new();
    for entry in v.iter() {
        let key = entry.child_value(0);
        let key = key.str().unwrap_or_default().to_string();
        let value = entry
            .child_value(1)
            .as_variant()
            .ok_or_else(|| anyhow!("a{{sv}} entry {key:?} holds no variant"))?;
        let value = to_value(&value)?;
        out.insert(key, OwnedValue::try_from(value)?);
    }
    Ok(out)
}

fn signature(ty: &glib::VariantTy) -> Result<Signature> {
    Signature::try_from(ty.as_str()).map_err(|e| anyhow!("type {ty}: {e}"))
}

/// One GLib value as a zbus value of the same D-Bus type.
pub(crate) fn to_value(v: &glib::Variant) -> Result<Value<'static>> {
    let bad = || anyhow!("cannot read a {} value", v.type_());
    Ok(match v.classify() {
        VariantClass::Boolean => Value::Bool(v.get::<bool>().ok_or_else(bad)?),
        VariantClass::Byte => Value::U8(v.get::<u8>().ok_or_else(bad)?),
        VariantClass::Int16 => Value::I16(v.get::<i16>().ok_or_else(bad)?),
        VariantClass::Uint16 => Value::U16(v.get::<u16>().ok_or_else(bad)?),
        VariantClass::Int32 => Value::I32(v.get::<i32>().ok_or_else(bad)?),
        VariantClass::Uint32 => Value::U32(v.get::<u32>().ok_or_else(bad)?),
        VariantClass::Int64 => Value::I64(v.get::<i64>().ok_or_else(bad)?),
        VariantClass::Uint64 => Value::U64(v.get::<u64>().ok_or_else(bad)?),
        VariantClass::Double => Value::F64(v.get::<f64>().ok_or_else(bad)?),
        VariantClass::String => Value::from(v.str().ok_or_else(bad)?.to_string()),
        VariantClass::ObjectPath => {
            Value::ObjectPath(ObjectPath::try_from(v.str().ok_or_else(bad)?.to_string())?)
        }
        VariantClass::Signature => {
            Value::Signature(signature(glib::VariantTy::new(v.str().ok_or_else(bad)?)?)?)
        }
        VariantClass::Variant => {
            Value::Value(Box::new(to_value(&v.as_variant().ok_or_else(bad)?)?))
        }
        VariantClass::Array => {
            let elem = v.type_().element();
            if elem.is_dict_entry() {
                let mut d = Dict::new(&signature(elem.key())?, &signature(elem.value())?);
                for entry in v.iter() {
                    d.append(
                        to_value(&entry.child_value(0))?,
                        to_value(&entry.child_value(1))?,
                    )?;
                }
                Value::Dict(d)
            } else {
                let mut a = Array::new(&signature(elem)?);
                for item in v.iter() {
                    a.append(to_value(&item)?)?;
                }
                Value::Array(a)
            }
        }
        VariantClass::Tuple => {
            let mut s = StructureBuilder::new();
            for item in v.iter() {
                s = s.append_field(to_value(&item)?);
            }
            Value::Structure(s.build()?)
        }
        VariantClass::Maybe | VariantClass::Handle | VariantClass::DictEntry => {
            return Err(anyhow!("{} has no D-Bus form here", v.type_()))
        }
        _ => return Err(bad()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ostree::glib::prelude::*;

    #[test]
    fn types_survive() {
        let dict = glib::VariantDict::new(None);
        dict.insert("s", "text");
        dict.insert("t", 7u64);
        dict.insert("b", true);
        type Changed = (u32, String, (String, String), (String, String));
        let changed: Vec<Changed> = vec![(
            0,
            "a".to_string(),
            ("1-1".to_string(), "x86_64".to_string()),
            ("2-1".to_string(), "noarch".to_string()),
        )];
        dict.insert_value("changed", &changed.to_variant());
        dict.insert_value("empty", &Vec::<Changed>::new().to_variant());
        dict.insert_value(
            "sigs",
            &vec![glib::Variant::from(5i32).to_variant()].to_variant(),
        );
        let inner = glib::VariantDict::new(None);
        inner.insert("k", 1u32);
        dict.insert_value("nested", &inner.end());
        let out = to_dict(&dict.end()).unwrap();
        let sig = |k: &str| out[k].value_signature().to_string();
        assert_eq!(sig("s"), "s");
        assert_eq!(sig("t"), "t");
        assert_eq!(sig("b"), "b");
        assert_eq!(sig("changed"), "a(us(ss)(ss))");
        assert_eq!(sig("empty"), "a(us(ss)(ss))");
        assert_eq!(sig("sigs"), "av");
        assert_eq!(sig("nested"), "a{sv}");
        assert_eq!(u64::try_from(&*out["t"]).unwrap(), 7);
        let changed: Vec<Changed> = out["changed"].try_clone().unwrap().try_into().unwrap();
        assert_eq!(changed[0].3 .1, "noarch");
    }
}
