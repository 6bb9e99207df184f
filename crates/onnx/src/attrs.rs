//! Typed access to a node's attributes, with errors that name the attribute.

use crate::proto::attribute_proto::AttributeType;
use crate::proto::{AttributeProto, TensorProto};

/// The attributes of one node.
#[derive(Clone, Copy)]
pub(crate) struct Attrs<'a> {
    list: &'a [AttributeProto],
}

/// The kind of an attribute: its declared type, or (for IR version 1 files, which have no type
/// field) the kind of the field that is set.
fn attr_kind(a: &AttributeProto) -> AttributeType {
    match AttributeType::try_from(a.r#type) {
        Ok(AttributeType::Undefined) | Err(_) => {}
        Ok(t) => return t,
    }
    if a.f.is_some() {
        AttributeType::Float
    } else if a.i.is_some() {
        AttributeType::Int
    } else if a.s.is_some() {
        AttributeType::String
    } else if a.t.is_some() {
        AttributeType::Tensor
    } else if a.g.is_some() {
        AttributeType::Graph
    } else if a.sparse_tensor.is_some() {
        AttributeType::SparseTensor
    } else if !a.floats.is_empty() {
        AttributeType::Floats
    } else if !a.ints.is_empty() {
        AttributeType::Ints
    } else if !a.strings.is_empty() {
        AttributeType::Strings
    } else if !a.tensors.is_empty() {
        AttributeType::Tensors
    } else if !a.graphs.is_empty() {
        AttributeType::Graphs
    } else if !a.sparse_tensors.is_empty() {
        AttributeType::SparseTensors
    } else {
        AttributeType::Undefined
    }
}

impl<'a> Attrs<'a> {
    /// Wrap a node's attribute list; fails on duplicate names.
    pub(crate) fn new(list: &'a [AttributeProto]) -> Result<Self, String> {
        for (i, a) in list.iter().enumerate() {
            if list.iter().take(i).any(|b| b.name == a.name) {
                return Err(format!("attribute '{}' is given twice", a.name));
            }
        }
        Ok(Attrs { list })
    }

    /// The raw attribute, if present.
    pub(crate) fn get(&self, name: &str) -> Option<&'a AttributeProto> {
        self.list.iter().find(|a| a.name == name)
    }

    fn typed(&self, name: &str, want: AttributeType) -> Result<Option<&'a AttributeProto>, String> {
        match self.get(name) {
            None => Ok(None),
            Some(a) => {
                let kind = attr_kind(a);
                if kind == want {
                    Ok(Some(a))
                } else {
                    Err(format!(
                        "attribute '{name}' must be of type {}, found {}",
                        want.as_str_name(),
                        kind.as_str_name()
                    ))
                }
            }
        }
    }

    /// An INT attribute.
    pub(crate) fn int(&self, name: &str) -> Result<Option<i64>, String> {
        Ok(self.typed(name, AttributeType::Int)?.map(|a| a.i.unwrap_or(0)))
    }

    /// A FLOAT attribute.
    pub(crate) fn float(&self, name: &str) -> Result<Option<f32>, String> {
        Ok(self.typed(name, AttributeType::Float)?.map(|a| a.f.unwrap_or(0.0)))
    }

    /// A STRING attribute (UTF-8).
    pub(crate) fn string(&self, name: &str) -> Result<Option<String>, String> {
        match self.typed(name, AttributeType::String)? {
            None => Ok(None),
            Some(a) => {
                let bytes = a.s.as_deref().unwrap_or_default();
                String::from_utf8(bytes.to_vec())
                    .map(Some)
                    .map_err(|_| format!("attribute '{name}' is not valid UTF-8"))
            }
        }
    }

    /// An INTS attribute.
    pub(crate) fn ints(&self, name: &str) -> Result<Option<&'a [i64]>, String> {
        Ok(self.typed(name, AttributeType::Ints)?.map(|a| a.ints.as_slice()))
    }

    /// A FLOATS attribute.
    pub(crate) fn floats(&self, name: &str) -> Result<Option<&'a [f32]>, String> {
        Ok(self.typed(name, AttributeType::Floats)?.map(|a| a.floats.as_slice()))
    }

    /// A TENSOR attribute.
    pub(crate) fn tensor(&self, name: &str) -> Result<Option<&'a TensorProto>, String> {
        match self.typed(name, AttributeType::Tensor)? {
            None => Ok(None),
            Some(a) => a.t.as_ref().map(Some).ok_or_else(|| format!("attribute '{name}' has no tensor")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn int_attr(name: &str, v: i64) -> AttributeProto {
        AttributeProto { name: name.into(), r#type: AttributeType::Int as i32, i: Some(v), ..Default::default() }
    }

    #[test]
    fn typed_access() {
        let list = vec![
            int_attr("axis", 2),
            AttributeProto { name: "f".into(), f: Some(0.5), ..Default::default() },
            AttributeProto {
                name: "ints".into(),
                r#type: AttributeType::Ints as i32,
                ints: vec![1, 2],
                ..Default::default()
            },
        ];
        let a = Attrs::new(&list).unwrap();
        assert_eq!(a.int("axis"), Ok(Some(2)));
        assert_eq!(a.int("missing"), Ok(None));
        assert_eq!(a.float("f"), Ok(Some(0.5)));
        assert_eq!(a.ints("ints"), Ok(Some(&[1i64, 2][..])));
        let e = a.float("axis").unwrap_err();
        assert!(e.contains("must be of type FLOAT, found INT"), "{e}");
    }

    #[test]
    fn duplicates_rejected() {
        let list = vec![int_attr("a", 1), int_attr("a", 2)];
        assert!(Attrs::new(&list).is_err());
    }
}
