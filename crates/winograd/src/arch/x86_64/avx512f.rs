//! AVX-512F kernels: 16 f32 lanes, 32 zmm registers.
//!
//! Register tiles: Winograd GEMM 32 output channels (2 zmm) × 8 tiles = 16 accumulators; direct
//! conv 32 output channels × 10 output pixels; the RGB first layer 64 output channels (4 zmm) ×
//! 6 pixels = 24 accumulators. Inputs are broadcast from memory
//! (`vbroadcastss`/embedded broadcast), weights are loaded as full vectors.

use crate::simd::Simd;
use std::arch::x86_64::*;

/// Proof that the CPU supports AVX-512F: only [`Avx512f::detect`] creates one.
#[derive(Debug, Clone, Copy)]
pub struct Avx512f {
    _private: (),
}

impl Avx512f {
    /// `Some` iff the running CPU has AVX-512F.
    pub fn detect() -> Option<Self> {
        is_x86_feature_detected!("avx512f").then_some(Self { _private: () })
    }
}

impl Simd for Avx512f {
    const LANES: usize = 16;
    type V = __m512;

    #[inline(always)]
    fn zero(self) -> __m512 {
        // SAFETY: an `Avx512f` token exists only if AVX-512F was detected on this CPU.
        unsafe { _mm512_setzero_ps() }
    }
    #[inline(always)]
    fn splat(self, x: f32) -> __m512 {
        // SAFETY: the token proves AVX-512F.
        unsafe { _mm512_set1_ps(x) }
    }
    #[inline(always)]
    fn load(self, src: &[f32]) -> __m512 {
        let src = &src[..16];
        // SAFETY: the token proves AVX-512F; `src` holds 16 floats (checked by the slice above)
        // and `loadu` has no alignment requirement.
        unsafe { _mm512_loadu_ps(src.as_ptr()) }
    }
    #[inline(always)]
    fn load_f16(self, src: &[half::f16]) -> __m512 {
        let src = &src[..16];
        // SAFETY: the token proves AVX-512F (whose `vcvtph2ps` takes 16 halves); `src` holds 16
        // f16 (32 bytes, checked by the slice above); `loadu` needs no alignment.
        unsafe { _mm512_cvtph_ps(_mm256_loadu_si256(src.as_ptr().cast())) }
    }
    #[inline(always)]
    fn store(self, dst: &mut [f32], v: __m512) {
        let dst = &mut dst[..16];
        // SAFETY: the token proves AVX-512F; `dst` holds 16 writable floats.
        unsafe { _mm512_storeu_ps(dst.as_mut_ptr(), v) }
    }
    #[inline(always)]
    fn add(self, a: __m512, b: __m512) -> __m512 {
        // SAFETY: the token proves AVX-512F.
        unsafe { _mm512_add_ps(a, b) }
    }
    #[inline(always)]
    fn sub(self, a: __m512, b: __m512) -> __m512 {
        // SAFETY: the token proves AVX-512F.
        unsafe { _mm512_sub_ps(a, b) }
    }
    #[inline(always)]
    fn mul(self, a: __m512, b: __m512) -> __m512 {
        // SAFETY: the token proves AVX-512F.
        unsafe { _mm512_mul_ps(a, b) }
    }
    #[inline(always)]
    fn mul_add(self, a: __m512, b: __m512, c: __m512) -> __m512 {
        // SAFETY: the token proves AVX-512F.
        unsafe { _mm512_fmadd_ps(a, b, c) }
    }
    #[inline(always)]
    fn max(self, a: __m512, b: __m512) -> __m512 {
        // SAFETY: the token proves AVX-512F.
        unsafe { _mm512_max_ps(a, b) }
    }
    #[inline(always)]
    fn prefetch_l2<T>(self, src: &[T], index: usize) {
        // `wrapping_add` computes the address without asserting it is in bounds; the prefetch
        // instruction reads nothing and never faults, whatever the address.
        let p = src.as_ptr().wrapping_add(index).cast::<i8>();
        // SAFETY: the token proves AVX-512F (which implies SSE); `prefetcht1` has no memory effect.
        unsafe { _mm_prefetch::<_MM_HINT_T1>(p) }
    }
}

crate::arch::isa_kernels!(
    Avx512f,
    feature = "avx512f",
    main = (8, 2),
    alt = (8, 3),
    direct = (10, 2),
    first = (6, 4)
);
