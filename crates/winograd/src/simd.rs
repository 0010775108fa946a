//! The vector abstraction the generic kernel bodies are written against.
//!
//! Each ISA file implements [`Simd`] on its zero-sized capability token with `#[inline(always)]`
//! methods wrapping one intrinsic each. The generic bodies in [`crate::kernels`] are
//! `#[inline(always)]` too and are instantiated inside one `#[target_feature]` entry point per
//! ISA (see [`crate::arch`]), so the whole loop nest is compiled for that ISA.

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
    fn prefetch_l2(self, src: &[f32], index: usize) {
        let _ = (src, index);
    }
}
