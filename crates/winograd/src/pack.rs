//! Weight packing, done once per plan.
//!
//! Output channels are cut into groups of `R·L` (`R` vectors of `L` lanes, the micro-kernel's
//! register block). Group `j` covers output channels `[j·R·L, (j+1)·R·L)` and reads the input
//! channels `[k_start, k_start + k_len)`: the union of the convolution groups its channels belong
//! to. Entries for an (output, input) pair in different convolution groups, and lanes past
//! `C_out`, are zero, so grouped convolutions of any divisor run on the same dense micro-kernel;
//! when `C_out/g` is a multiple of `R·L` (every grouped RepVGG layer) no zero is multiplied.

use crate::transforms::Variant;
use crate::{ConvError, Precision};
use half::f16;
use reparam_tensor::{ALIGN_BYTES, AlignedVec, ConvSpec, Tensor};

/// One output-channel group of a packed layer.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct OcGroup {
    /// First input channel read.
    pub k_start: usize,
    /// Input channels read.
    pub k_len: usize,
    /// Offset of the group's weights in [`Packed::weights`].
    pub offset: usize,
    /// Length of the group's weights.
    pub len: usize,
}

/// Packed weights and biases of a layer.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Packed {
    /// Channels per group, `R·L`.
    pub group_width: usize,
    /// The groups, in output-channel order.
    pub groups: Vec<OcGroup>,
    /// All groups' weights, concatenated; the buffer starts on a cache line and every group's
    /// offset is a multiple of its `R·L` width, so every weight vector is vector-aligned. Empty
    /// once converted to [`Packed::half`] or [`Packed::pairs`].
    pub weights: AlignedVec,
    /// The weights as f16 ([`Precision::F16Weights`]), in place of `weights`.
    pub half: Option<NarrowWeights<f16>>,
    /// The Winograd weights as bf16 pairs ([`Precision::Bf16`]), in place of `weights`.
    pub pairs: Option<NarrowWeights<u32>>,
    /// Bias per group, `R·L` each (zero padded).
    pub bias: Vec<f32>,
}

/// Packed weights in a narrower element than f32, starting on a cache line of `data`: f16 in
/// the f32 layout, or bf16 pairs (`u32`) in the f32 layout with the reduction axis halved.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct NarrowWeights<T> {
    data: Vec<T>,
    /// Index of the first weight in `data` (its first cache-line boundary).
    base: usize,
}

impl<T: Copy + Default> NarrowWeights<T> {
    /// `len` zeros, starting on a cache line.
    fn zeros(len: usize) -> Self {
        let slack = ALIGN_BYTES / size_of::<T>();
        let data = vec![T::default(); len + slack];
        let base = data.as_ptr().align_offset(ALIGN_BYTES).min(slack);
        Self { data, base }
    }

    /// The `len` elements from `offset` on.
    fn slice(&self, offset: usize, len: usize) -> &[T] {
        &self.data[self.base + offset..][..len]
    }

    /// The `len` elements from `offset` on, writable.
    fn slice_mut(&mut self, offset: usize, len: usize) -> &mut [T] {
        &mut self.data[self.base + offset..][..len]
    }
}

impl Packed {
    /// The same weights stored as f16 (round to nearest even), the f32 copy dropped; a weight
    /// that rounds to infinity is a [`ConvError::WeightOutOfRange`].
    pub fn into_f16(mut self) -> Result<Self, ConvError> {
        let len: usize = self.groups.iter().map(|g| g.len).sum();
        let mut half = NarrowWeights::<f16>::zeros(len);
        for (j, g) in self.groups.iter().enumerate() {
            let src = &self.weights[g.offset..][..g.len];
            let dst = half.slice_mut(g.offset, g.len);
            for (i, (d, &w)) in dst.iter_mut().zip(src).enumerate() {
                *d = f16::from_f32(w);
                if d.is_infinite() {
                    return Err(ConvError::WeightOutOfRange {
                        precision: Precision::F16Weights.name(),
                        out_channel: j * self.group_width + i % self.group_width,
                        value: w,
                        max: f16::MAX.to_f32(),
                    });
                }
            }
        }
        self.weights = AlignedVec::default();
        self.half = Some(half);
        Ok(self)
    }

    /// The Winograd weights `[α²][k_len][R·L]` of every group as bf16 pairs
    /// `[α²][k_len / 2][R·L]` (round to nearest even): the `u32` of step `p` and output channel
    /// `o` holds channel `2p`'s weight in its low half and `2p + 1`'s in its high half. Every
    /// group must read an even number of input channels from an even first one; the f32 copy
    /// is dropped.
    pub fn into_bf16_pairs(mut self, alpha2: usize) -> Result<Self, ConvError> {
        let width = self.group_width;
        if let Some(g) = self
            .groups
            .iter()
            .find(|g| g.k_start % 2 + g.k_len % 2 != 0)
        {
            return Err(ConvError::PrecisionUnavailable {
                precision: Precision::Bf16.name(),
                reason: format!(
                    "bf16 pairs need an even number of input channels per group (a group reads {} from channel {})",
                    g.k_len, g.k_start
                ),
            });
        }
        let len: usize = self.groups.iter().map(|g| g.len / 2).sum();
        let mut pairs = NarrowWeights::<u32>::zeros(len);
        let bits = |w: f32| u32::from(half::bf16::from_f32(w).to_bits());
        for g in &self.groups {
            let src = &self.weights[g.offset..][..g.len];
            let dst = pairs.slice_mut(g.offset / 2, g.len / 2);
            let steps = g.k_len / 2;
            for b in 0..alpha2 {
                for p in 0..steps {
                    let (even, odd) =
                        src[(b * g.k_len + 2 * p) * width..][..2 * width].split_at(width);
                    let row = &mut dst[(b * steps + p) * width..][..width];
                    for ((d, &lo), &hi) in row.iter_mut().zip(even).zip(odd) {
                        *d = bits(lo) | (bits(hi) << 16);
                    }
                }
            }
        }
        self.weights = AlignedVec::default();
        self.pairs = Some(pairs);
        Ok(self)
    }

    /// Bytes of stored weights.
    pub fn weight_bytes(&self) -> usize {
        let len = || self.groups.iter().map(|g| g.len).sum::<usize>();
        match (&self.half, &self.pairs) {
            (Some(_), _) => len() * size_of::<f16>(),
            (_, Some(_)) => len() / 2 * size_of::<u32>(),
            (None, None) => self.weights.len() * size_of::<f32>(),
        }
    }

    /// Group `j`'s f16 weights (empty unless converted by [`Packed::into_f16`]).
    pub fn group_weights_f16(&self, j: usize) -> &[f16] {
        let g = &self.groups[j];
        match &self.half {
            Some(h) => h.slice(g.offset, g.len),
            None => &[],
        }
    }

    /// Group `j`'s bf16-pair weights (empty unless converted by [`Packed::into_bf16_pairs`]).
    pub fn group_weights_bf16(&self, j: usize) -> &[u32] {
        let g = &self.groups[j];
        match &self.pairs {
            Some(p) => p.slice(g.offset / 2, g.len / 2),
            None => &[],
        }
    }

    /// Group `j + 1`'s bf16-pair weights, or nothing after the last group.
    pub fn next_group_weights_bf16(&self, j: usize) -> &[u32] {
        if j + 1 < self.groups.len() {
            self.group_weights_bf16(j + 1)
        } else {
            &[]
        }
    }

    /// Group `j + 1`'s f16 weights, or nothing after the last group.
    pub fn next_group_weights_f16(&self, j: usize) -> &[f16] {
        if j + 1 < self.groups.len() {
            self.group_weights_f16(j + 1)
        } else {
            &[]
        }
    }

    /// Group `j`'s weights.
    pub fn group_weights(&self, j: usize) -> &[f32] {
        let g = &self.groups[j];
        &self.weights[g.offset..][..g.len]
    }

    /// Group `j + 1`'s weights, or nothing after the last group (what a kernel prefetches
    /// while it computes group `j`).
    pub fn next_group_weights(&self, j: usize) -> &[f32] {
        if j + 1 < self.groups.len() {
            self.group_weights(j + 1)
        } else {
            &[]
        }
    }

    /// Group `j`'s bias.
    pub fn group_bias(&self, j: usize) -> &[f32] {
        &self.bias[j * self.group_width..][..self.group_width]
    }
}

/// `(oc_start, oc_end, k_start, k_len)` of every output-channel group.
fn group_ranges(spec: &ConvSpec, width: usize) -> Vec<(usize, usize, usize, usize)> {
    let (cig, cog) = (spec.in_per_group(), spec.out_per_group());
    (0..spec.out_channels.div_ceil(width))
        .map(|j| {
            let oc_start = j * width;
            let oc_end = (oc_start + width).min(spec.out_channels);
            let first = oc_start / cog;
            let last = (oc_end - 1) / cog;
            (oc_start, oc_end, first * cig, (last - first + 1) * cig)
        })
        .collect()
}

/// Packs weights with `per_pair` values per (input channel, output channel) pair, laid out
/// `[position][k][lane]` with `positions` positions (`k²` taps for direct, `α²` for Winograd).
fn pack(
    spec: &ConvSpec,
    weight: &Tensor,
    bias: Option<&[f32]>,
    width: usize,
    positions: usize,
    per_pair: impl Fn(&[f32]) -> Vec<f32>,
) -> Packed {
    let (cig, cog) = (spec.in_per_group(), spec.out_per_group());
    let taps = spec.kernel * spec.kernel;
    let ranges = group_ranges(spec, width);
    let total = ranges.iter().map(|r| positions * r.3 * width).sum();
    let mut groups = Vec::with_capacity(ranges.len());
    let mut weights = AlignedVec::zeros(total);
    let mut packed_bias = vec![0.0; spec.out_channels.div_ceil(width) * width];
    let mut offset = 0;
    for (oc_start, oc_end, k_start, k_len) in ranges {
        let len = positions * k_len * width;
        let dst = &mut weights[offset..][..len];
        for oc in oc_start..oc_end {
            let lane = oc - oc_start;
            let conv_group = oc / cog;
            for k in 0..k_len {
                let ch = k_start + k;
                if ch / cig != conv_group {
                    continue;
                }
                let src = &weight.data()[(oc * cig + ch % cig) * taps..][..taps];
                for (p, value) in per_pair(src).into_iter().enumerate() {
                    dst[(p * k_len + k) * width + lane] = value;
                }
            }
            if let Some(b) = bias {
                packed_bias[oc] = b[oc];
            }
        }
        groups.push(OcGroup {
            k_start,
            k_len,
            offset,
            len,
        });
        offset += len;
    }
    Packed {
        group_width: width,
        groups,
        weights,
        half: None,
        pairs: None,
        bias: packed_bias,
    }
}

/// Direct-convolution packing: per group `[u][v][c][lane]` (tap-major, like the Winograd
/// layout, so the micro-kernel streams one tap's weights contiguously).
pub(crate) fn pack_direct(
    spec: &ConvSpec,
    weight: &Tensor,
    bias: Option<&[f32]>,
    width: usize,
) -> Packed {
    let taps = spec.kernel * spec.kernel;
    pack(spec, weight, bias, width, taps, |g| g.to_vec())
}

/// Winograd packing: per group `[b][c][lane]` holding `U = G·g·Gᵀ` (f64, rounded once).
pub(crate) fn pack_winograd(
    spec: &ConvSpec,
    weight: &Tensor,
    bias: Option<&[f32]>,
    width: usize,
    variant: Variant,
) -> Packed {
    let a = variant.alpha();
    pack(spec, weight, bias, width, a * a, |g| {
        let g: &[f32; 9] = g.try_into().expect("3x3 kernels have 9 taps");
        variant.transform_kernel(g)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_cover_the_union_of_conv_groups() {
        // 12 outputs in 3 conv groups of 4; packing width 8 straddles groups 0 and 1.
        let spec = ConvSpec::conv3x3(6, 12, 1, 3);
        let r = group_ranges(&spec, 8);
        assert_eq!(r, vec![(0, 8, 0, 4), (8, 12, 4, 2)]);
        let dense = ConvSpec::conv3x3(6, 12, 1, 1);
        assert_eq!(group_ranges(&dense, 8), vec![(0, 8, 0, 6), (8, 12, 0, 6)]);
    }

    #[test]
    fn direct_packing_places_taps_and_zeros() {
        let spec = ConvSpec::conv3x3(2, 2, 1, 2);
        let w =
            Tensor::from_fn([2, 1, 3, 3], |o, _, u, v| (o * 100 + u * 3 + v + 1) as f32).unwrap();
        let p = pack_direct(&spec, &w, Some(&[5.0, 6.0]), 4);
        assert_eq!(p.groups.len(), 1);
        assert_eq!((p.groups[0].k_start, p.groups[0].k_len), (0, 2));
        let g = p.group_weights(0);
        // Layout [tap][k][lane]. Tap (0,1), input 0: lane 0 = out 0's tap 2; lane 1 (out 1, the
        // other conv group) = 0.
        assert_eq!(&g[2 * 4..][..4], &[2.0, 0.0, 0.0, 0.0]);
        // Tap (2,2), input 1: only out 1.
        assert_eq!(&g[(8 * 2 + 1) * 4..][..4], &[0.0, 109.0, 0.0, 0.0]);
        assert_eq!(p.group_bias(0), &[5.0, 6.0, 0.0, 0.0]);
    }
}
