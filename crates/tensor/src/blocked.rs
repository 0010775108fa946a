//! [`BlockedTensor`]: the channel-blocked NCHWc layout.

use crate::tensor::checked_numel;
use crate::{AlignedVec, Shape, Tensor, TensorError};

/// Channel block sizes the kernels use: one SSE/NEON (4), AVX2 (8) or AVX-512 (16) register of f32.
pub const BLOCK_SIZES: [usize; 3] = [4, 8, 16];

/// A tensor in NCHWc layout: channels are split into `⌈C / c⌉` blocks of `c` lanes, and the element
/// `(n, ch, h, w)` lives at `(((n·B + ch / c)·H + h)·W + w)·c + ch % c` with `B = ⌈C / c⌉`.
///
/// The lanes of the last block beyond `C` are padding and are always zero, so SIMD kernels can
/// load full blocks and reductions over channels stay exact. The data starts on a cache line
/// ([`AlignedVec`]), so every channel block of every pixel is one aligned vector.
#[derive(Debug, Clone, PartialEq)]
pub struct BlockedTensor {
    shape: Shape,
    block: usize,
    data: AlignedVec,
}

impl BlockedTensor {
    /// A zero tensor with logical shape `shape` blocked by `block` lanes.
    pub fn zeros(shape: Shape, block: usize) -> Result<Self, TensorError> {
        check_block(block)?;
        let [n, c, h, w] = shape;
        let len = checked_numel(&[n, c.div_ceil(block), h, w, block])?;
        Ok(Self {
            shape,
            block,
            data: AlignedVec::zeros(len),
        })
    }

    /// Converts an NCHW tensor to NCHWc with `block` lanes, zero-padding the last block.
    pub fn from_nchw(t: &Tensor, block: usize) -> Result<Self, TensorError> {
        let mut out = Self::zeros(t.shape(), block)?;
        let [n, c, h, w] = t.shape();
        let plane = h * w;
        for ni in 0..n {
            for ci in 0..c {
                let src = &t.data()[(ni * c + ci) * plane..][..plane];
                let base = out.block_base(ni, ci / block);
                for (p, &v) in src.iter().enumerate() {
                    out.data[base + p * block + ci % block] = v;
                }
            }
        }
        Ok(out)
    }

    /// Converts back to NCHW, dropping the padding lanes.
    pub fn to_nchw(&self) -> Tensor {
        let [n, c, h, w] = self.shape;
        let plane = h * w;
        let mut data = vec![0.0; n * c * plane];
        for ni in 0..n {
            for ci in 0..c {
                let base = self.block_base(ni, ci / self.block);
                let dst = &mut data[(ni * c + ci) * plane..][..plane];
                for (p, d) in dst.iter_mut().enumerate() {
                    *d = self.data[base + p * self.block + ci % self.block];
                }
            }
        }
        Tensor::new(self.shape, data).expect("length computed from the same shape")
    }

    /// Offset of the first element of channel block `b` of batch item `n`.
    fn block_base(&self, n: usize, b: usize) -> usize {
        let [_, c, h, w] = self.shape;
        (n * c.div_ceil(self.block) + b) * h * w * self.block
    }

    /// The logical shape `[N, C, H, W]` (without padding).
    pub fn shape(&self) -> Shape {
        self.shape
    }

    /// Lanes per channel block.
    pub fn block(&self) -> usize {
        self.block
    }

    /// Number of channel blocks, `⌈C / c⌉`.
    pub fn channel_blocks(&self) -> usize {
        self.shape[1].div_ceil(self.block)
    }

    /// The raw NCHWc data, padding lanes included.
    pub fn data(&self) -> &[f32] {
        &self.data
    }

    /// The raw NCHWc data, mutable. Kernels must keep the padding lanes zero.
    pub fn data_mut(&mut self) -> &mut [f32] {
        &mut self.data
    }
}

/// A borrowed NCHWc tensor: the layout of [`BlockedTensor`] over a slice someone else owns (an
/// engine's activation arena, say). The padding lanes of the last channel block must be zero.
#[derive(Debug, Clone, Copy)]
pub struct BlockedView<'a> {
    shape: Shape,
    block: usize,
    data: &'a [f32],
}

/// A mutable borrowed NCHWc tensor (see [`BlockedView`]).
#[derive(Debug)]
pub struct BlockedViewMut<'a> {
    shape: Shape,
    block: usize,
    data: &'a mut [f32],
}

/// Floats an NCHWc tensor of logical shape `shape` blocked by `block` lanes holds.
pub fn blocked_len(shape: Shape, block: usize) -> Result<usize, TensorError> {
    check_block(block)?;
    let [n, c, h, w] = shape;
    checked_numel(&[n, c.div_ceil(block), h, w, block])
}

/// The length check shared by both views.
fn check_view_len(shape: Shape, block: usize, len: usize) -> Result<(), TensorError> {
    let needed = blocked_len(shape, block)?;
    if len == needed {
        Ok(())
    } else {
        Err(TensorError::invalid(
            "data",
            format!(
                "an NCHWc {shape:?} tensor in blocks of {block} holds {needed} floats, got {len}"
            ),
        ))
    }
}

impl<'a> BlockedView<'a> {
    /// A view of `data` as an NCHWc tensor; `data.len()` must be [`blocked_len`]`(shape, block)`.
    pub fn new(shape: Shape, block: usize, data: &'a [f32]) -> Result<Self, TensorError> {
        check_view_len(shape, block, data.len())?;
        Ok(Self { shape, block, data })
    }

    /// The logical shape `[N, C, H, W]`.
    pub fn shape(&self) -> Shape {
        self.shape
    }

    /// Lanes per channel block.
    pub fn block(&self) -> usize {
        self.block
    }

    /// The raw NCHWc data, padding lanes included.
    pub fn data(&self) -> &'a [f32] {
        self.data
    }
}

impl<'a> BlockedViewMut<'a> {
    /// A mutable view of `data` as an NCHWc tensor (length as for [`BlockedView::new`]).
    pub fn new(shape: Shape, block: usize, data: &'a mut [f32]) -> Result<Self, TensorError> {
        check_view_len(shape, block, data.len())?;
        Ok(Self { shape, block, data })
    }

    /// The logical shape `[N, C, H, W]`.
    pub fn shape(&self) -> Shape {
        self.shape
    }

    /// Lanes per channel block.
    pub fn block(&self) -> usize {
        self.block
    }

    /// The raw NCHWc data, mutable. Writers must keep the padding lanes zero.
    pub fn data_mut(&mut self) -> &mut [f32] {
        self.data
    }
}

impl BlockedTensor {
    /// A borrowed view of the whole tensor.
    pub fn view(&self) -> BlockedView<'_> {
        BlockedView {
            shape: self.shape,
            block: self.block,
            data: &self.data,
        }
    }

    /// A mutable borrowed view of the whole tensor.
    pub fn view_mut(&mut self) -> BlockedViewMut<'_> {
        BlockedViewMut {
            shape: self.shape,
            block: self.block,
            data: &mut self.data,
        }
    }
}

fn check_block(block: usize) -> Result<(), TensorError> {
    if BLOCK_SIZES.contains(&block) {
        Ok(())
    } else {
        Err(TensorError::invalid(
            "block",
            format!("channel block must be one of {BLOCK_SIZES:?}, got {block}"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn layout_formula_and_zero_padding() {
        let t = Tensor::from_fn([2, 5, 2, 3], |n, c, h, w| {
            (1 + n * 1000 + c * 100 + h * 10 + w) as f32
        })
        .unwrap();
        let b = BlockedTensor::from_nchw(&t, 4).unwrap();
        assert_eq!(b.channel_blocks(), 2);
        assert_eq!(b.data().len(), 2 * 2 * 2 * 3 * 4);
        // (n=1, c=4, h=1, w=2): block 1, lane 0.
        let off = (((2 + 1) * 2 + 1) * 3 + 2) * 4;
        assert_eq!(b.data()[off], 1413.0);
        // Lanes 1..4 of block 1 are padding (C = 5).
        assert!(b.data()[off + 1..off + 4].iter().all(|&v| v == 0.0));
    }

    #[test]
    fn rejects_unsupported_block() {
        let t = Tensor::zeros([1, 1, 1, 1]).unwrap();
        assert!(matches!(
            BlockedTensor::from_nchw(&t, 3),
            Err(TensorError::Invalid { field: "block", .. })
        ));
    }

    #[test]
    fn views_check_their_length() {
        let mut t = BlockedTensor::zeros([1, 5, 2, 3], 4).unwrap();
        assert_eq!(blocked_len([1, 5, 2, 3], 4).unwrap(), t.data().len());
        assert_eq!(t.view().data().len(), 48);
        assert_eq!(t.view_mut().shape(), [1, 5, 2, 3]);
        let data = vec![0.0; 47];
        assert!(matches!(
            BlockedView::new([1, 5, 2, 3], 4, &data),
            Err(TensorError::Invalid { field: "data", .. })
        ));
        let mut data = vec![0.0; 48];
        assert_eq!(
            BlockedViewMut::new([1, 5, 2, 3], 4, &mut data)
                .unwrap()
                .block(),
            4
        );
    }

    proptest! {
        #[test]
        fn round_trip(n in 1usize..3, c in 1usize..20, h in 1usize..5, w in 1usize..5, bi in 0usize..3) {
            let t = Tensor::from_fn([n, c, h, w], |a, b, y, x| (a * 7 + b * 13 + y * 3 + x) as f32 - 20.0).unwrap();
            let blocked = BlockedTensor::from_nchw(&t, BLOCK_SIZES[bi]).unwrap();
            prop_assert_eq!(blocked.to_nchw(), t);
        }
    }
}
