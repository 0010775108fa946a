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

/// `Σ_{k<n} c[k]·x[k]`, skipping zero coefficients and using add/sub for ±1. With constant `c`
/// (the transform matrices) and constant `n`, the branches fold away at compile time.
#[inline(always)]
pub(crate) fn lin_comb<S: Simd>(s: S, c: &[f32; 8], x: &[S::V; 8], n: usize) -> S::V {
    let mut acc: Option<S::V> = None;
    for k in 0..n {
        let ck = c[k];
        if ck == 0.0 {
            continue;
        }
        acc = Some(match acc {
            None if ck == 1.0 => x[k],
            None => s.mul(s.splat(ck), x[k]),
            Some(a) if ck == 1.0 => s.add(a, x[k]),
            Some(a) if ck == -1.0 => s.sub(a, x[k]),
            Some(a) => s.mul_add(s.splat(ck), x[k], a),
        });
    }
    acc.unwrap_or_else(|| s.zero())
}

/// `relu?(v + bias)`.
#[inline(always)]
pub(crate) fn epilogue<S: Simd>(s: S, v: S::V, bias: S::V, relu: bool) -> S::V {
    let v = s.add(v, bias);
    if relu { s.max(v, s.zero()) } else { v }
}
