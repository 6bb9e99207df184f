//! Shapes with fixed, symbolic and unknown dimensions.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fmt;

/// One dimension of a shape.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Dim {
    /// A fixed size.
    Known(usize),
    /// A named size bound at run time (`batch`, `height`, ...). Equal names are equal sizes.
    Sym(String),
    /// A size that is not known before run time and has no name.
    Unknown,
}

impl Dim {
    /// The fixed size, if known.
    pub fn known(&self) -> Option<usize> {
        match self {
            Dim::Known(n) => Some(*n),
            _ => None,
        }
    }

    /// Replace a symbol by its bound value, if any.
    pub fn bind(&self, bindings: &HashMap<String, usize>) -> Dim {
        match self {
            Dim::Sym(s) => bindings.get(s).map_or_else(|| self.clone(), |&n| Dim::Known(n)),
            d => d.clone(),
        }
    }
}

impl From<usize> for Dim {
    fn from(n: usize) -> Self {
        Dim::Known(n)
    }
}

impl fmt::Display for Dim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Dim::Known(n) => write!(f, "{n}"),
            Dim::Sym(s) => f.write_str(s),
            Dim::Unknown => f.write_str("?"),
        }
    }
}

/// A shape of known rank.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct Shape(pub Vec<Dim>);

impl Shape {
    /// A shape whose every dimension is fixed.
    pub fn known(dims: &[usize]) -> Self {
        Shape(dims.iter().map(|&d| Dim::Known(d)).collect())
    }

    /// The rank (number of dimensions).
    pub fn rank(&self) -> usize {
        self.0.len()
    }

    /// The dimensions as sizes when all are fixed.
    pub fn as_known(&self) -> Option<Vec<usize>> {
        self.0.iter().map(Dim::known).collect()
    }

    /// Number of elements when all dimensions are fixed (`None` also on overflow).
    pub fn num_elements(&self) -> Option<usize> {
        self.as_known()?.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d))
    }

    /// Replace symbols by their bound values.
    pub fn bind(&self, bindings: &HashMap<String, usize>) -> Shape {
        Shape(self.0.iter().map(|d| d.bind(bindings)).collect())
    }

    /// The dimensions.
    pub fn dims(&self) -> &[Dim] {
        &self.0
    }

    /// True when both shapes are sure to be equal at run time: same rank and, dim by dim,
    /// equal known sizes or the same symbol (an unknown dim proves nothing).
    pub fn provably_equal(&self, other: &Shape) -> bool {
        self.rank() == other.rank()
            && self.0.iter().zip(&other.0).all(|(x, y)| match (x, y) {
                (Dim::Known(p), Dim::Known(q)) => p == q,
                (Dim::Sym(p), Dim::Sym(q)) => p == q,
                _ => false,
            })
    }
}

impl From<&[usize]> for Shape {
    fn from(d: &[usize]) -> Self {
        Shape::known(d)
    }
}

impl<const N: usize> From<[usize; N]> for Shape {
    fn from(d: [usize; N]) -> Self {
        Shape::known(&d)
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{d}")?;
        }
        f.write_str("]")
    }
}

/// What is known about a value before running: dtype and, when the rank is known, its shape.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TypeInfo {
    /// Element type.
    pub dtype: DType,
    /// Shape, `None` when even the rank is unknown.
    pub shape: Option<Shape>,
}

use crate::DType;

impl TypeInfo {
    /// A type with a fully or partially known shape.
    pub fn new(dtype: DType, shape: impl Into<Shape>) -> Self {
        TypeInfo { dtype, shape: Some(shape.into()) }
    }

    /// A type whose rank is unknown.
    pub fn unranked(dtype: DType) -> Self {
        TypeInfo { dtype, shape: None }
    }
}

impl fmt::Display for TypeInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.shape {
            Some(s) => write!(f, "{}{}", self.dtype, s),
            None => write!(f, "{}[*]", self.dtype),
        }
    }
}
