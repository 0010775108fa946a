//! Generic kernel bodies, written once against [`Simd`] and instantiated per ISA by
//! [`crate::arch`]. Every function here is `#[inline(always)]` so that it is compiled inside the
//! ISA's `#[target_feature]` entry point.
//!
//! Data layouts (L = lanes of the ISA):
//! - staged input: one image, `[C_in/L][Hp][Wp][L]`, zero halo of the convolution's padding and
//!   zero right/bottom margins so register blocks never need bounds checks;
//! - output: one image, `[C_out/L][H_out][W_out][L]` (NCHWc); padding lanes are written as
//!   `relu?(0 + 0)` = 0;
//! - packed weights: per output-channel group of `R·L` channels, `[k][R·L]` (see [`crate::pack`]).

pub(crate) mod direct;
pub(crate) mod winograd;

use crate::simd::Simd;

pub(crate) use direct::DirectJob;
pub(crate) use winograd::{GemmJob, InputJob};

/// `relu?(v + bias)`.
#[inline(always)]
pub(crate) fn epilogue<S: Simd>(s: S, v: S::V, bias: S::V, relu: bool) -> S::V {
    let v = s.add(v, bias);
    if relu { s.max(v, s.zero()) } else { v }
}
