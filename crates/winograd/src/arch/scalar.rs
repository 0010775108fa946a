//! Portable scalar "vectors" of 4 f32 (plain arrays): the readable reference of every kernel and
//! the fallback on any CPU. LLVM may auto-vectorize these loops; correctness never depends on it.

use crate::simd::Simd;

/// The scalar capability token (always available).
#[derive(Debug, Clone, Copy)]
pub struct Scalar;

impl Simd for Scalar {
    const LANES: usize = 4;
    type V = [f32; 4];

    #[inline(always)]
    fn zero(self) -> [f32; 4] {
        [0.0; 4]
    }
    #[inline(always)]
    fn splat(self, x: f32) -> [f32; 4] {
        [x; 4]
    }
    #[inline(always)]
    fn load(self, src: &[f32]) -> [f32; 4] {
        let mut v = [0.0; 4];
        v.copy_from_slice(&src[..4]);
        v
    }
    #[inline(always)]
    fn load_f16(self, src: &[half::f16]) -> [f32; 4] {
        let src = &src[..4];
        std::array::from_fn(|i| src[i].to_f32())
    }
    #[inline(always)]
    fn store(self, dst: &mut [f32], v: [f32; 4]) {
        dst[..4].copy_from_slice(&v);
    }
    #[inline(always)]
    fn add(self, a: [f32; 4], b: [f32; 4]) -> [f32; 4] {
        std::array::from_fn(|i| a[i] + b[i])
    }
    #[inline(always)]
    fn sub(self, a: [f32; 4], b: [f32; 4]) -> [f32; 4] {
        std::array::from_fn(|i| a[i] - b[i])
    }
    #[inline(always)]
    fn mul(self, a: [f32; 4], b: [f32; 4]) -> [f32; 4] {
        std::array::from_fn(|i| a[i] * b[i])
    }
    #[inline(always)]
    fn mul_add(self, a: [f32; 4], b: [f32; 4], c: [f32; 4]) -> [f32; 4] {
        // `f32::mul_add` is a libm call without hardware FMA; the scalar path is the portable
        // reference, so it uses separate multiply and add.
        std::array::from_fn(|i| a[i] * b[i] + c[i])
    }
    #[inline(always)]
    fn max(self, a: [f32; 4], b: [f32; 4]) -> [f32; 4] {
        std::array::from_fn(|i| a[i].max(b[i]))
    }
}

super::isa_kernels!(Scalar, main = (8, 2), alt = (8, 3), direct = (8, 2));
