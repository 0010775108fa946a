//! Generic kernel bodies, written once against [`Simd`] and instantiated per ISA by
//! [`crate::arch`]. Every function here is `#[inline(always)]` so that it is compiled inside the
//! ISA's `#[target_feature]` entry point.
//!
//! Data layouts (L = lanes of the ISA):
//! - direct input: one staged image, `[C_in/L][Hp][Wp][L]` with a zero halo of the
//!   convolution's padding, so register blocks never need bounds checks (the first layer from
//!   an NCHW input: the staged rows of one chunk of output rows, see `Conv2dPlan`), or an
//!   unpadded NCHWc image read in place, the kernel clipping its own border taps;
//! - Winograd input: one unpadded NCHWc image `[C_in/L][H][W][L]` (a blocked input in place);
//!   the input transform clips the windows of border tiles itself;
//! - output: one image, `[C_out/L][H_out][W_out][L]` (NCHWc); padding lanes are written as
//!   `relu?(0 + 0)` = 0;
//! - packed weights: per output-channel group of `R·L` channels, `[k][R·L]` (see [`crate::pack`]).

pub(crate) mod direct;
pub(crate) mod winograd;

use crate::simd::Simd;

pub(crate) use direct::DirectJob;
pub(crate) use winograd::{GemmJob, InputJob};

/// Bytes per cache line (the unit of the kernels' software prefetches).
pub(crate) const LINE_BYTES: usize = 64;

/// f32 values per cache line.
pub(crate) const LINE_FLOATS: usize = LINE_BYTES / size_of::<f32>();

/// `relu?(v + bias)`.
#[inline(always)]
pub(crate) fn epilogue<S: Simd>(s: S, v: S::V, bias: S::V, relu: bool) -> S::V {
    let v = s.add(v, bias);
    if relu { s.max(v, s.zero()) } else { v }
}

/// Rows `[row0, row0 + rows)` of up to `P` output planes, each `[rows][out_w][L]`. Splitting
/// at a row gives two disjoint sets of rows, so several threads can share planes without any
/// allocation.
pub(crate) struct Rows<'a, const P: usize> {
    /// The planes' rows; only the first `count` are used.
    pub planes: [&'a mut [f32]; P],
    /// Planes in use (`≤ P`).
    pub count: usize,
    /// First output row.
    pub row0: usize,
    /// Rows held.
    pub rows: usize,
    /// Floats per row (`out_w·L`).
    pub row_len: usize,
}

/// The rows of one output-channel group's (up to 4) planes: what a kernel writes.
pub(crate) type Band<'a> = Rows<'a, 4>;

impl<'a, const P: usize> Rows<'a, P> {
    /// Every row of the planes of `out` (`out.len() / (out_h·row_len)` planes of `out_h` rows,
    /// at most `P`).
    pub fn whole(out: &'a mut [f32], out_h: usize, row_len: usize) -> Self {
        let plane = out_h * row_len;
        let count = out.len() / plane;
        debug_assert!(count <= P, "{count} planes, room for {P}");
        let mut planes: [&'a mut [f32]; P] = std::array::from_fn(|_| Default::default());
        for (slot, p) in planes.iter_mut().zip(out.chunks_exact_mut(plane)) {
            *slot = p;
        }
        Self {
            planes,
            count: count.min(P),
            row0: 0,
            rows: out_h,
            row_len,
        }
    }

    /// Splits after `first` rows.
    pub fn split(self, first: usize) -> (Self, Self) {
        let mut a: [&'a mut [f32]; P] = std::array::from_fn(|_| Default::default());
        let mut b: [&'a mut [f32]; P] = std::array::from_fn(|_| Default::default());
        for (i, p) in self.planes.into_iter().enumerate() {
            let (x, y) = p.split_at_mut((first * self.row_len).min(p.len()));
            a[i] = x;
            b[i] = y;
        }
        (
            Self {
                planes: a,
                count: self.count,
                row0: self.row0,
                rows: first,
                row_len: self.row_len,
            },
            Self {
                planes: b,
                count: self.count,
                row0: self.row0 + first,
                rows: self.rows - first,
                row_len: self.row_len,
            },
        )
    }

    /// The same rows, borrowed for a shorter lifetime.
    pub fn reborrow(&mut self) -> Rows<'_, P> {
        let mut planes: [&mut [f32]; P] = std::array::from_fn(|_| Default::default());
        for (slot, p) in planes.iter_mut().zip(self.planes.iter_mut()) {
            *slot = p;
        }
        Rows {
            planes,
            count: self.count,
            row0: self.row0,
            rows: self.rows,
            row_len: self.row_len,
        }
    }

    /// The same rows of planes `first .. first + count` (at most 4: one output-channel group).
    pub fn group(&mut self, first: usize, count: usize) -> Band<'_> {
        let mut planes: [&mut [f32]; 4] = Default::default();
        let count = count.min(4).min(self.count.saturating_sub(first));
        for (slot, p) in planes
            .iter_mut()
            .zip(self.planes[first..].iter_mut())
            .take(count)
        {
            *slot = p;
        }
        Band {
            planes,
            count,
            row0: self.row0,
            rows: self.rows,
            row_len: self.row_len,
        }
    }
}
