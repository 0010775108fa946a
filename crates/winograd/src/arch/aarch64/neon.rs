//! NEON (aarch64 Advanced SIMD) kernels: 4 f32 lanes, 32 q registers.
//!
//! Register tiles: 8 output channels (2 q) × 8 tiles or pixels = 16 accumulators.

use crate::simd::Simd;
use std::arch::aarch64::*;

/// Proof that the CPU supports NEON: only [`Neon::detect`] creates one.
#[derive(Debug, Clone, Copy)]
pub struct Neon {
    _private: (),
}

impl Neon {
    /// `Some` iff the running CPU has NEON (every aarch64 Linux CPU does; checked anyway).
    pub fn detect() -> Option<Self> {
        std::arch::is_aarch64_feature_detected!("neon").then_some(Self { _private: () })
    }
}

impl Simd for Neon {
    const LANES: usize = 4;
    type V = float32x4_t;

    #[inline(always)]
    fn zero(self) -> float32x4_t {
        // SAFETY: a `Neon` token exists only if NEON was detected on this CPU.
        unsafe { vdupq_n_f32(0.0) }
    }
    #[inline(always)]
    fn splat(self, x: f32) -> float32x4_t {
        // SAFETY: the token proves NEON.
        unsafe { vdupq_n_f32(x) }
    }
    #[inline(always)]
    fn load(self, src: &[f32]) -> float32x4_t {
        let src = &src[..4];
        // SAFETY: the token proves NEON; `src` holds 4 floats; `vld1q` needs no alignment.
        unsafe { vld1q_f32(src.as_ptr()) }
    }
    #[inline(always)]
    fn store(self, dst: &mut [f32], v: float32x4_t) {
        let dst = &mut dst[..4];
        // SAFETY: the token proves NEON; `dst` holds 4 writable floats.
        unsafe { vst1q_f32(dst.as_mut_ptr(), v) }
    }
    #[inline(always)]
    fn add(self, a: float32x4_t, b: float32x4_t) -> float32x4_t {
        // SAFETY: the token proves NEON.
        unsafe { vaddq_f32(a, b) }
    }
    #[inline(always)]
    fn sub(self, a: float32x4_t, b: float32x4_t) -> float32x4_t {
        // SAFETY: the token proves NEON.
        unsafe { vsubq_f32(a, b) }
    }
    #[inline(always)]
    fn mul(self, a: float32x4_t, b: float32x4_t) -> float32x4_t {
        // SAFETY: the token proves NEON.
        unsafe { vmulq_f32(a, b) }
    }
    #[inline(always)]
    fn mul_add(self, a: float32x4_t, b: float32x4_t, c: float32x4_t) -> float32x4_t {
        // SAFETY: the token proves NEON. vfmaq_f32(c, a, b) = c + a·b, fused.
        unsafe { vfmaq_f32(c, a, b) }
    }
    #[inline(always)]
    fn max(self, a: float32x4_t, b: float32x4_t) -> float32x4_t {
        // SAFETY: the token proves NEON.
        unsafe { vmaxq_f32(a, b) }
    }
}

crate::arch::isa_kernels!(Neon, feature = "neon", wino = (8, 2), direct = (8, 2));
