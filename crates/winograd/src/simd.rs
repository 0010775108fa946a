//! The vector abstraction the generic kernel bodies are written against.
//!
//! Each ISA file implements [`Simd`] on its zero-sized capability token with `#[inline(always)]`
//! methods wrapping one intrinsic each. The generic bodies in [`crate::kernels`] are
//! `#[inline(always)]` too and are instantiated inside one `#[target_feature]` entry point per
//! ISA (see [`crate::arch`]), so the whole loop nest is compiled for that ISA.

use half::f16;

/// `LANES` f32 values in one register, and the handful of operations the kernels need.
pub(crate) trait Simd: Copy + Send + Sync {
    /// f32 lanes per vector (= the NCHWc channel block).
    const LANES: usize;
    /// The vector type.
    type V: Copy;
    /// All lanes zero.
    fn zero(self) -> Self::V;
    /// All lanes `x`.
    fn splat(self, x: f32) -> Self::V;
    /// Loads `src[..LANES]` (panics if `src` is shorter: a kernel bug, never user input).
    fn load(self, src: &[f32]) -> Self::V;
    /// Loads `src[..LANES]` of f16 values, widened to f32 (exactly: every f16 is an f32; panics if
    /// `src` is shorter).
    fn load_f16(self, src: &[f16]) -> Self::V;
    /// Stores to `dst[..LANES]` (panics if `dst` is shorter).
    fn store(self, dst: &mut [f32], v: Self::V);
    /// `a + b`.
    fn add(self, a: Self::V, b: Self::V) -> Self::V;
    /// `a − b`.
    fn sub(self, a: Self::V, b: Self::V) -> Self::V;
    /// `a · b`.
    fn mul(self, a: Self::V, b: Self::V) -> Self::V;
    /// `a · b + c`, fused (one rounding) where the ISA has FMA.
    fn mul_add(self, a: Self::V, b: Self::V, c: Self::V) -> Self::V;
    /// Lane-wise maximum (used for ReLU with `zero`).
    fn max(self, a: Self::V, b: Self::V) -> Self::V;
    /// A hint to bring the cache line holding `src[index]` into the L2 cache; no effect on
    /// results. `index` may lie past the end of `src` (a prefetch never faults, nothing is
    /// read). The default does nothing.
    #[inline(always)]
    fn prefetch_l2<T>(self, src: &[T], index: usize) {
        let _ = (src, index);
    }
}

/// The element type of packed weights a GEMM loads into f32 vectors: `f32`, or `f16` for
/// [`crate::Precision::F16Weights`].
pub(crate) trait Weight: Copy + Send + Sync + 'static {
    /// Loads `src[..LANES]` as one f32 vector.
    fn load<S: Simd>(s: S, src: &[Self]) -> S::V;
}

impl Weight for f32 {
    #[inline(always)]
    fn load<S: Simd>(s: S, src: &[f32]) -> S::V {
        s.load(src)
    }
}

impl Weight for f16 {
    #[inline(always)]
    fn load<S: Simd>(s: S, src: &[f16]) -> S::V {
        s.load_f16(src)
    }
}
