//! [`Tensor`]: owned `f32` data in NCHW order.

use crate::TensorError;

/// A 4-D shape `[N, C, H, W]` (batch, channels, height, width).
pub type Shape = [usize; 4];

/// Product of `dims`, or [`TensorError::ShapeOverflow`] if it does not fit in `usize`.
pub(crate) fn checked_numel(dims: &[usize]) -> Result<usize, TensorError> {
    dims.iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| TensorError::ShapeOverflow {
            shape: dims.to_vec(),
        })
}

/// Owned `f32` tensor of shape `[N, C, H, W]`, stored contiguously in NCHW order: the element
/// `(n, c, h, w)` lives at `((n·C + c)·H + h)·W + w`.
///
/// Weights use the same type with the PyTorch meaning of the axes: `[C_out, C_in/groups, kH, kW]`.
/// Vectors and matrices are expressed with trailing unit axes (`[N, F, 1, 1]`).
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    shape: Shape,
    data: Vec<f32>,
}

impl Tensor {
    /// Wraps `data` with `shape`; fails if the element count overflows or differs from `data.len()`.
    pub fn new(shape: Shape, data: Vec<f32>) -> Result<Self, TensorError> {
        let expected = checked_numel(&shape)?;
        if expected != data.len() {
            return Err(TensorError::DataLength {
                shape: shape.to_vec(),
                expected,
                actual: data.len(),
            });
        }
        Ok(Self { shape, data })
    }

    /// A tensor of zeros; fails only if the element count overflows.
    pub fn zeros(shape: Shape) -> Result<Self, TensorError> {
        Self::filled(shape, 0.0)
    }

    /// A tensor with every element equal to `value`; fails only if the element count overflows.
    pub fn filled(shape: Shape, value: f32) -> Result<Self, TensorError> {
        let n = checked_numel(&shape)?;
        Ok(Self {
            shape,
            data: vec![value; n],
        })
    }

    /// Builds a tensor by evaluating `f(n, c, h, w)` at every index.
    pub fn from_fn(
        shape: Shape,
        mut f: impl FnMut(usize, usize, usize, usize) -> f32,
    ) -> Result<Self, TensorError> {
        let n_el = checked_numel(&shape)?;
        let [n, c, h, w] = shape;
        let mut data = Vec::with_capacity(n_el);
        for ni in 0..n {
            for ci in 0..c {
                for hi in 0..h {
                    for wi in 0..w {
                        data.push(f(ni, ci, hi, wi));
                    }
                }
            }
        }
        Ok(Self { shape, data })
    }

    /// The shape `[N, C, H, W]`.
    pub fn shape(&self) -> Shape {
        self.shape
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// True when some axis is zero.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The elements in NCHW order.
    pub fn data(&self) -> &[f32] {
        &self.data
    }

    /// The elements in NCHW order, mutable.
    pub fn data_mut(&mut self) -> &mut [f32] {
        &mut self.data
    }

    /// Consumes the tensor and returns its elements.
    pub fn into_data(self) -> Vec<f32> {
        self.data
    }

    /// Linear offset of `(n, c, h, w)`. Panics (in all builds) on an out-of-range index, like slice
    /// indexing; callers iterate within [`Tensor::shape`].
    pub fn offset(&self, n: usize, c: usize, h: usize, w: usize) -> usize {
        let [sn, sc, sh, sw] = self.shape;
        assert!(
            n < sn && c < sc && h < sh && w < sw,
            "index ({n}, {c}, {h}, {w}) out of range for shape {:?}",
            self.shape
        );
        ((n * sc + c) * sh + h) * sw + w
    }

    /// The element at `(n, c, h, w)`.
    pub fn at(&self, n: usize, c: usize, h: usize, w: usize) -> f32 {
        self.data[self.offset(n, c, h, w)]
    }

    /// Same data, new shape with the same element count.
    pub fn reshape(self, shape: Shape) -> Result<Self, TensorError> {
        Self::new(shape, self.data)
    }

    /// Index of the first non-finite element, if any.
    pub fn first_non_finite(&self) -> Option<usize> {
        self.data.iter().position(|v| !v.is_finite())
    }

    /// Fails with [`TensorError::ShapeMismatch`] naming `operand` unless the shape is `expected`.
    pub fn expect_shape(&self, operand: &'static str, expected: Shape) -> Result<(), TensorError> {
        if self.shape == expected {
            Ok(())
        } else {
            Err(TensorError::ShapeMismatch {
                operand,
                expected: expected.to_vec(),
                actual: self.shape.to_vec(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_rejects_wrong_length_and_overflow() {
        assert!(matches!(
            Tensor::new([1, 2, 3, 4], vec![0.0; 23]),
            Err(TensorError::DataLength {
                expected: 24,
                actual: 23,
                ..
            })
        ));
        assert!(matches!(
            Tensor::zeros([usize::MAX, 2, 1, 1]),
            Err(TensorError::ShapeOverflow { .. })
        ));
    }

    #[test]
    fn offsets_are_nchw() {
        let t = Tensor::from_fn([2, 3, 4, 5], |n, c, h, w| {
            (n * 1000 + c * 100 + h * 10 + w) as f32
        })
        .unwrap();
        assert_eq!(t.at(1, 2, 3, 4), 1234.0);
        assert_eq!(t.data()[t.offset(1, 2, 3, 4)], 1234.0);
        assert_eq!(t.offset(1, 0, 0, 0), 60);
    }
}
