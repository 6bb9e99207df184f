//! What a GEMM does with a finished tile: the output tile view ([`TileOut`]), the per-tile
//! fused epilogue a microkernel applies in registers ([`TileEpilogue`]) and the whole-GEMM
//! epilogue the driver accepts ([`GemmEpilogue`]).

use crate::KernelError;
use lithe_ir::op::Activation;
use std::marker::PhantomData;

const OP: &str = "sgemm";

/// Elements spanned by a `rows x cols` matrix with row stride `ld` (0 when empty), `None` on
/// overflow.
pub(crate) fn span(rows: usize, cols: usize, ld: usize) -> Option<usize> {
    if rows == 0 || cols == 0 {
        return Some(0);
    }
    (rows - 1).checked_mul(ld)?.checked_add(cols)
}

/// A `rows x cols` tile of `C` with row stride `ldc`, exclusively borrowed.
///
/// Invariant (relied on by SIMD microkernels): for every `i < rows` and `j < cols`,
/// `as_mut_ptr() + i * ldc + j` is valid for reads and writes and not accessed by anyone else
/// while the tile lives; `ldc >= cols` when `rows > 1`.
pub struct TileOut<'a> {
    ptr: *mut f32,
    ldc: usize,
    rows: usize,
    cols: usize,
    _borrow: PhantomData<&'a mut [f32]>,
}

impl<'a> TileOut<'a> {
    /// A tile over `c` (element `(i, j)` at `c[i * ldc + j]`). Fails when `c` is too short or
    /// rows would overlap (`ldc < cols` with more than one row).
    pub fn new(c: &'a mut [f32], ldc: usize, rows: usize, cols: usize) -> Result<Self, KernelError> {
        let need = span(rows, cols, ldc).ok_or_else(|| invalid(format!("tile {rows} x {cols} overflows")))?;
        if need > c.len() || (rows > 1 && ldc < cols) {
            return Err(invalid(format!(
                "tile {rows} x {cols} with ldc {ldc} needs {need} elements, the slice has {}",
                c.len()
            )));
        }
        // SAFETY: `c` is exclusively borrowed for 'a and covers the tile (checked above).
        Ok(unsafe { Self::from_raw(c.as_mut_ptr(), ldc, rows, cols) })
    }

    /// # Safety
    /// `ptr` must satisfy the type invariant for `rows`, `cols` and `ldc` during `'a`.
    pub(crate) unsafe fn from_raw(ptr: *mut f32, ldc: usize, rows: usize, cols: usize) -> Self {
        TileOut { ptr, ldc, rows, cols, _borrow: PhantomData }
    }

    /// Rows in the tile (at most the kernel's `MR`).
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Columns in the tile (at most the kernel's `NR`).
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Row stride in elements.
    pub fn ldc(&self) -> usize {
        self.ldc
    }

    /// Pointer to element `(0, 0)`; see the type invariant for what may be accessed.
    pub fn as_mut_ptr(&mut self) -> *mut f32 {
        self.ptr
    }

    /// Element `(i, j)`. Panics when out of the tile.
    pub fn get(&self, i: usize, j: usize) -> f32 {
        assert!(i < self.rows && j < self.cols, "tile index ({i}, {j}) out of {} x {}", self.rows, self.cols);
        // SAFETY: in the tile (checked), so valid for reads by the type invariant.
        unsafe { *self.ptr.add(i * self.ldc + j) }
    }

    /// Set element `(i, j)`. Panics when out of the tile.
    pub fn set(&mut self, i: usize, j: usize, v: f32) {
        assert!(i < self.rows && j < self.cols, "tile index ({i}, {j}) out of {} x {}", self.rows, self.cols);
        // SAFETY: in the tile (checked), so valid for writes by the type invariant.
        unsafe { *self.ptr.add(i * self.ldc + j) = v }
    }
}

/// The bias of one tile.
#[derive(Clone, Copy, Debug, Default)]
pub enum TileBias<'a> {
    /// No bias.
    #[default]
    None,
    /// `bias[i]` added to every element of tile row `i` (conv: one bias per output channel).
    Row(&'a [f32]),
    /// `bias[j]` added to every element of tile column `j` (FullyConnected).
    Col(&'a [f32]),
}

/// The activations a microkernel applies in registers.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum FusedActivation {
    /// Identity.
    #[default]
    None,
    /// `min(max(x, min), max)` (Relu is `Clamp { min: 0, max: inf }`).
    Clamp {
        /// Lower bound.
        min: f32,
        /// Upper bound.
        max: f32,
    },
    /// `x` if `x >= 0` else `alpha * x`.
    LeakyRelu {
        /// Slope for negative inputs.
        alpha: f32,
    },
    /// `x * min(max(x / 6 + 1/2, 0), 1)`.
    HardSwish,
}

impl FusedActivation {
    /// Apply to one value (the scalar definition SIMD kernels must match).
    #[inline(always)]
    pub fn apply(self, x: f32) -> f32 {
        match self {
            FusedActivation::None => x,
            FusedActivation::Clamp { min, max } => x.max(min).min(max),
            FusedActivation::LeakyRelu { alpha } => {
                if x < 0.0 {
                    x * alpha
                } else {
                    x
                }
            }
            FusedActivation::HardSwish => x * (x * (1.0 / 6.0) + 0.5).clamp(0.0, 1.0),
        }
    }
}

/// What a microkernel does with its accumulator `acc` for element `(i, j)`:
/// `c = act(acc + [c] + bias + residual)`, where `c` is read only when `accumulate`.
///
/// Invariant: a `Row` bias has at least `rows` elements, a `Col` bias at least `cols`, and the
/// residual holds element `(i, j)` at `i * ldc + j` for the `rows x cols` tile with row stride
/// `ldc` it was built for; [`fits`](Self::fits) tells whether it may finish a given tile.
#[derive(Clone, Copy, Debug, Default)]
pub struct TileEpilogue<'a> {
    /// `(rows, cols, ldc)` of the tile the bias and residual were validated for; `None` when
    /// there is neither.
    shape: Option<(usize, usize, usize)>,
    accumulate: bool,
    bias: TileBias<'a>,
    residual: Option<&'a [f32]>,
    activation: FusedActivation,
}

impl<'a> TileEpilogue<'a> {
    /// Only store (`accumulate == false`, beta = 0) or accumulate into `C` (beta = 1): what
    /// the driver uses for every K block but the last.
    pub fn plain(accumulate: bool) -> Self {
        TileEpilogue { accumulate, ..Default::default() }
    }

    /// A full epilogue for `tile`, validating the bias and residual lengths against it.
    pub fn new(
        tile: &TileOut<'_>,
        accumulate: bool,
        bias: TileBias<'a>,
        residual: Option<&'a [f32]>,
        activation: FusedActivation,
    ) -> Result<Self, KernelError> {
        let ok = match bias {
            TileBias::None => true,
            TileBias::Row(b) => b.len() >= tile.rows,
            TileBias::Col(b) => b.len() >= tile.cols,
        };
        if !ok {
            return Err(invalid(format!("bias too short for a {} x {} tile", tile.rows, tile.cols)));
        }
        if let Some(r) = residual {
            let need = span(tile.rows, tile.cols, tile.ldc).unwrap_or(usize::MAX);
            if r.len() < need {
                return Err(invalid(format!("residual has {} elements, the tile needs {need}", r.len())));
            }
        }
        let shape = (residual.is_some() || !matches!(bias, TileBias::None)).then_some((tile.rows, tile.cols, tile.ldc));
        Ok(TileEpilogue { shape, accumulate, bias, residual, activation })
    }

    /// Whether this epilogue may finish `tile`: its bias and residual were validated for a
    /// tile at least as large with the same `ldc` (always true without them).
    pub fn fits(&self, tile: &TileOut<'_>) -> bool {
        match self.shape {
            None => true,
            Some((rows, cols, ldc)) => {
                tile.rows <= rows && tile.cols <= cols && (self.residual.is_none() || tile.ldc == ldc)
            }
        }
    }

    /// Whether `C` is read and added (beta = 1) instead of overwritten.
    pub fn accumulate(&self) -> bool {
        self.accumulate
    }

    /// The bias.
    pub fn bias(&self) -> TileBias<'a> {
        self.bias
    }

    /// The residual tile (element `(i, j)` at `i * ldc + j`), if any.
    pub fn residual(&self) -> Option<&'a [f32]> {
        self.residual
    }

    /// The fused activation.
    pub fn activation(&self) -> FusedActivation {
        self.activation
    }

    /// True when nothing but the store (or accumulate) is needed.
    pub fn is_plain(&self) -> bool {
        matches!(self.bias, TileBias::None) && self.residual.is_none() && self.activation == FusedActivation::None
    }

    /// Finish element `(i, j)` of `c` from accumulator `acc` (the scalar path; SIMD kernels use
    /// it for edge tiles and must match it elsewhere). Panics when out of the tile.
    #[inline]
    pub fn store(&self, c: &mut TileOut<'_>, i: usize, j: usize, acc: f32) {
        let mut x = acc;
        if self.accumulate {
            x += c.get(i, j);
        }
        match self.bias {
            TileBias::None => {}
            TileBias::Row(b) => x += b[i],
            TileBias::Col(b) => x += b[j],
        }
        if let Some(r) = self.residual {
            x += r[i * c.ldc + j];
        }
        c.set(i, j, self.activation.apply(x));
    }
}

/// A vector broadcast along one axis of `C`.
#[derive(Clone, Copy, Debug)]
pub enum PerAxis<'a> {
    /// One value per row (`m` values; conv output channels when `C` is `[C_out, H*W]`).
    Row(&'a [f32]),
    /// One value per column (`n` values; FullyConnected output features).
    Col(&'a [f32]),
}

/// Where the residual added before the activation comes from.
#[derive(Clone, Copy, Debug, Default)]
pub enum Residual<'a> {
    /// No residual.
    #[default]
    None,
    /// A separate matrix laid out like `C` (same `ldc`).
    Separate(&'a [f32]),
    /// `C` already holds the residual on entry (`C = act(A·B + bias + C)`).
    InOutput,
}

/// The epilogue of a whole GEMM: `C = act(A·B + bias + residual)`.
///
/// Bias, residual, and the Relu / Clip / LeakyRelu / HardSwish activations are applied by the
/// microkernel in registers; PRelu, HardSigmoid, Sigmoid and Tanh in a second pass over each
/// tile while it is still in cache.
#[derive(Clone, Copy, Debug, Default)]
pub struct GemmEpilogue<'a> {
    /// Bias per row or per column.
    pub bias: Option<PerAxis<'a>>,
    /// The residual.
    pub residual: Residual<'a>,
    /// The activation applied last.
    pub activation: Activation,
    /// The PRelu slope (required exactly when `activation` is PRelu).
    pub prelu_slope: Option<PerAxis<'a>>,
}

/// Activations applied by the driver after the microkernel.
#[derive(Clone, Copy, Debug)]
pub(crate) enum PostActivation<'a> {
    PRelu(PerAxis<'a>),
    HardSigmoid { alpha: f32, beta: f32 },
    Sigmoid,
    Tanh,
}

impl PostActivation<'_> {
    #[inline]
    pub(crate) fn apply(&self, x: f32, i: usize, j: usize) -> f32 {
        match *self {
            PostActivation::PRelu(s) => {
                let slope = match s {
                    PerAxis::Row(v) => v[i],
                    PerAxis::Col(v) => v[j],
                };
                if x < 0.0 { x * slope } else { x }
            }
            PostActivation::HardSigmoid { alpha, beta } => (alpha * x + beta).clamp(0.0, 1.0),
            PostActivation::Sigmoid => {
                if x >= 0.0 {
                    1.0 / (1.0 + (-x).exp())
                } else {
                    let e = x.exp();
                    e / (1.0 + e)
                }
            }
            PostActivation::Tanh => x.tanh(),
        }
    }
}

/// Split `act` into the part the microkernel fuses and the part the driver applies after.
pub(crate) fn split_activation<'a>(
    act: &Activation,
    slope: Option<PerAxis<'a>>,
) -> Result<(FusedActivation, Option<PostActivation<'a>>), KernelError> {
    Ok(match *act {
        Activation::None => (FusedActivation::None, None),
        Activation::Relu => (FusedActivation::Clamp { min: 0.0, max: f32::INFINITY }, None),
        Activation::Clip { min, max } => (FusedActivation::Clamp { min, max }, None),
        Activation::LeakyRelu { alpha } => (FusedActivation::LeakyRelu { alpha }, None),
        Activation::HardSwish => (FusedActivation::HardSwish, None),
        Activation::PRelu => {
            let s = slope.ok_or_else(|| invalid("a PRelu epilogue needs its slope".to_string()))?;
            (FusedActivation::None, Some(PostActivation::PRelu(s)))
        }
        Activation::HardSigmoid { alpha, beta } => {
            (FusedActivation::None, Some(PostActivation::HardSigmoid { alpha, beta }))
        }
        Activation::Sigmoid => (FusedActivation::None, Some(PostActivation::Sigmoid)),
        Activation::Tanh => (FusedActivation::None, Some(PostActivation::Tanh)),
    })
}

pub(crate) fn invalid(detail: String) -> KernelError {
    KernelError::Invalid { op: OP, detail }
}
