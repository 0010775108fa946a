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
    fn load_f16(self, src: &[half::f16]) -> float32x4_t {
        let src = &src[..4];
        // f16 → f32 with integer NEON (stable Rust has no f16 vector intrinsics): the exponent
        // and mantissa bits shifted into f32 position read as 2⁻¹¹² times the f16 value, for
        // normal and subnormal f16 alike, so one multiply by 2¹¹² (exact) rebiases them (`0x7780_0000` is 2¹¹²); the sign
        // is or-ed back. Infinities and NaNs, which packing refuses, are not handled.
        // SAFETY: the token proves NEON; `src` holds 4 f16 (8 bytes, checked by the slice above);
        // `vld1` needs no alignment.
        unsafe {
            let h = vmovl_u16(vld1_u16(src.as_ptr().cast()));
            let sign = vshlq_n_u32::<16>(vandq_u32(h, vdupq_n_u32(0x8000)));
            let bits = vshlq_n_u32::<13>(vandq_u32(h, vdupq_n_u32(0x7fff)));
            let value = vmulq_f32(
                vreinterpretq_f32_u32(bits),
                vdupq_n_f32(f32::from_bits(0x7780_0000)),
            );
            vreinterpretq_f32_u32(vorrq_u32(vreinterpretq_u32_f32(value), sign))
        }
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

crate::arch::isa_kernels!(
    Neon,
    feature = "neon",
    main = (8, 2),
    alt = (8, 3),
    direct = (8, 2)
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Isa;

    /// NEON must be detected on every aarch64 target we test on (including qemu-user), so the
    /// kernel tests that loop over `Isa::available()` cannot silently skip it.
    #[test]
    fn neon_is_detected_and_available() {
        assert!(Neon::detect().is_some(), "NEON not detected on aarch64");
        assert!(Isa::Neon.is_available());
        assert!(Isa::available().contains(&Isa::Neon));
        assert_eq!(Isa::best(), Isa::Neon);
        assert_eq!(Isa::Neon.require().unwrap(), Isa::Neon);
        eprintln!("available ISAs: {:?}", Isa::available());
    }

    /// Each `Simd` operation on lanes with distinct values (catches swapped operands, e.g. in
    /// `vfmaq_f32(c, a, b)`).
    #[test]
    fn simd_ops_lane_by_lane() {
        let s = Neon::detect().expect("NEON");
        let a = s.load(&[1.0, -2.0, 3.5, 0.25]);
        let b = s.load(&[4.0, 5.0, -6.0, 8.0]);
        let c = s.load(&[0.5, -1.0, 2.0, -3.0]);
        let get = |v: float32x4_t| {
            let mut out = [0.0f32; 4];
            s.store(&mut out, v);
            out
        };
        assert_eq!(get(s.zero()), [0.0; 4]);
        assert_eq!(get(s.splat(7.5)), [7.5; 4]);
        assert_eq!(get(s.add(a, b)), [5.0, 3.0, -2.5, 8.25]);
        assert_eq!(get(s.sub(a, b)), [-3.0, -7.0, 9.5, -7.75]);
        assert_eq!(get(s.mul(a, b)), [4.0, -10.0, -21.0, 2.0]);
        assert_eq!(get(s.mul_add(a, b, c)), [4.5, -11.0, -19.0, -1.0]);
        assert_eq!(get(s.max(a, s.zero())), [1.0, 0.0, 3.5, 0.25]);
        // Fused: one rounding. (1 + 2⁻²³)² − (1 + 2⁻²²) = 2⁻⁴⁶, lost if rounded after the multiply.
        let e = 1.0 + f32::EPSILON;
        let fused = get(s.mul_add(s.splat(e), s.splat(e), s.splat(-(1.0 + 2.0 * f32::EPSILON))));
        assert_eq!(fused, [f32::EPSILON * f32::EPSILON; 4]);
    }
}
