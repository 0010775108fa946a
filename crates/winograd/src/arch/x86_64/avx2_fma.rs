//! AVX2 + FMA kernels: 8 f32 lanes, 16 ymm registers.
//!
//! Register tiles: 16 output channels (2 ymm) × 6 tiles or pixels = 12 accumulators, leaving two
//! registers for weights and one for the broadcast input. F16C (on every AVX2 CPU but a few
//! early VIA parts) widens f16 weights.

use crate::simd::Simd;
use std::arch::x86_64::*;

/// Proof that the CPU supports AVX2, FMA and F16C: only [`Avx2Fma::detect`] creates one.
#[derive(Debug, Clone, Copy)]
pub struct Avx2Fma {
    _private: (),
}

impl Avx2Fma {
    /// `Some` iff the running CPU has AVX2, FMA and F16C.
    pub fn detect() -> Option<Self> {
        (is_x86_feature_detected!("avx2")
            && is_x86_feature_detected!("fma")
            && is_x86_feature_detected!("f16c"))
        .then_some(Self { _private: () })
    }
}

impl Simd for Avx2Fma {
    const LANES: usize = 8;
    type V = __m256;

    #[inline(always)]
    fn zero(self) -> __m256 {
        // SAFETY: an `Avx2Fma` token exists only if AVX2 and FMA were detected on this CPU.
        unsafe { _mm256_setzero_ps() }
    }
    #[inline(always)]
    fn splat(self, x: f32) -> __m256 {
        // SAFETY: the token proves AVX2.
        unsafe { _mm256_set1_ps(x) }
    }
    #[inline(always)]
    fn load(self, src: &[f32]) -> __m256 {
        let src = &src[..8];
        // SAFETY: the token proves AVX; `src` holds 8 floats; `loadu` needs no alignment.
        unsafe { _mm256_loadu_ps(src.as_ptr()) }
    }
    #[inline(always)]
    fn load_f16(self, src: &[half::f16]) -> __m256 {
        let src = &src[..8];
        // SAFETY: the token proves F16C and AVX; `src` holds 8 f16 (16 bytes, checked by the
        // slice above); `loadu` needs no alignment.
        unsafe { _mm256_cvtph_ps(_mm_loadu_si128(src.as_ptr().cast())) }
    }
    #[inline(always)]
    fn store(self, dst: &mut [f32], v: __m256) {
        let dst = &mut dst[..8];
        // SAFETY: the token proves AVX; `dst` holds 8 writable floats.
        unsafe { _mm256_storeu_ps(dst.as_mut_ptr(), v) }
    }
    #[inline(always)]
    fn add(self, a: __m256, b: __m256) -> __m256 {
        // SAFETY: the token proves AVX.
        unsafe { _mm256_add_ps(a, b) }
    }
    #[inline(always)]
    fn sub(self, a: __m256, b: __m256) -> __m256 {
        // SAFETY: the token proves AVX.
        unsafe { _mm256_sub_ps(a, b) }
    }
    #[inline(always)]
    fn mul(self, a: __m256, b: __m256) -> __m256 {
        // SAFETY: the token proves AVX.
        unsafe { _mm256_mul_ps(a, b) }
    }
    #[inline(always)]
    fn mul_add(self, a: __m256, b: __m256, c: __m256) -> __m256 {
        // SAFETY: the token proves FMA.
        unsafe { _mm256_fmadd_ps(a, b, c) }
    }
    #[inline(always)]
    fn max(self, a: __m256, b: __m256) -> __m256 {
        // SAFETY: the token proves AVX.
        unsafe { _mm256_max_ps(a, b) }
    }
    #[inline(always)]
    fn prefetch_l2<T>(self, src: &[T], index: usize) {
        // `wrapping_add` computes the address without asserting it is in bounds; the prefetch
        // instruction reads nothing and never faults, whatever the address.
        let p = src.as_ptr().wrapping_add(index).cast::<i8>();
        // SAFETY: the token proves AVX (which implies SSE); `prefetcht1` has no memory effect.
        unsafe { _mm_prefetch::<_MM_HINT_T1>(p) }
    }
}

crate::arch::isa_kernels!(
    Avx2Fma,
    feature = "avx2,fma,f16c",
    main = (6, 2),
    alt = (4, 3),
    direct = (6, 2)
);
