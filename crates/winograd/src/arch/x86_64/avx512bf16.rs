//! AVX512-BF16 Winograd GEMM for [`crate::Precision::Bf16`]: `vdpbf16ps` on bf16 pairs.
//!
//! Everything else of a bf16 plan (transforms, output stores, direct convolution) runs on the
//! [`Avx512f`] kernels; this file adds the two operations the precision needs:
//!
//! - [`Avx512Bf16::to_bf16_pairs`]: a tile block of transformed input `V`, written in f32 by the
//!   AVX-512F input transform, rounded to bf16 (round to nearest even, `vcvtne2ps2bf16`) and
//!   packed in place: f32 slot `i` of the block then holds values `2i` (low half) and `2i + 1`
//!   (high half), i.e. input channels `2p` and `2p + 1` of one tile side by side.
//! - the GEMM step (a [`Reduction`] of two input channels): each transformed-weight `u32` holds
//!   the bf16 weights of channels `2p` and `2p + 1` for one output channel; the tile's pair is
//!   broadcast as one 32-bit value, and `vdpbf16ps` adds `w₀·x₀ + w₁·x₁` to every f32 lane (the
//!   products of two bf16 are exact in f32; the two additions round). One instruction does the
//!   work of two FMAs, on half the weight and input bytes.
//!
//! Register blocks are those of AVX-512F (8 or 7 tiles × 2 or 3 vectors).

use super::Avx512f;
use crate::arch::{BlockKind, Kernels, RegisterBlock, block_kind};
use crate::kernels::GemmJob;
use crate::kernels::winograd::{Reduction, gemm_output_with};
use crate::simd::Simd;
use crate::transforms::Variant;
use std::arch::x86_64::*;

/// Proof that the CPU supports AVX-512F and AVX512-BF16: only [`Avx512Bf16::detect`] creates
/// one.
#[derive(Debug, Clone, Copy)]
pub struct Avx512Bf16 {
    f32_ops: Avx512f,
}

impl Avx512Bf16 {
    /// `Some` iff the running CPU has AVX-512F and AVX512-BF16.
    pub fn detect() -> Option<Self> {
        let f32_ops = Avx512f::detect()?;
        is_x86_feature_detected!("avx512bf16").then_some(Self { f32_ops })
    }

    /// Rounds one tile block of transformed input to bf16 pairs in place (see the module
    /// documentation); `v.len()` must be a multiple of 32 (a block is α²·NT·C_in/L vectors,
    /// α² even).
    pub(crate) fn to_bf16_pairs(self, v: &mut [f32]) {
        // SAFETY: `self` proves AVX-512F and AVX512-BF16, the features the entry is compiled for.
        unsafe { pack_pairs_entry(v) }
    }

    /// Runs a GEMM job on bf16-pair weights and transformed input with `block`.
    pub(crate) fn gemm_output(
        self,
        block: RegisterBlock,
        variant: Variant,
        job: GemmJob<'_, '_, u32>,
    ) {
        // SAFETY: `self` proves AVX-512F and AVX512-BF16, the features the entry is compiled for.
        unsafe { gemm_entry(self, block, variant, job) }
    }
}

#[target_feature(enable = "avx512f,avx512bf16")]
fn pack_pairs_entry(v: &mut [f32]) {
    assert_eq!(
        v.len() % 32,
        0,
        "a tile block is a whole number of vector pairs"
    );
    for i in 0..v.len() / 32 {
        let src = &v[32 * i..][..32];
        // SAFETY: the entry is compiled for AVX-512F and AVX512-BF16 (its callers hold the
        // token); `src` holds 32 floats and `loadu` needs no alignment.
        let packed = unsafe {
            let lo = _mm512_loadu_ps(src.as_ptr());
            let hi = _mm512_loadu_ps(src.as_ptr().add(16));
            // 32 bf16: `lo`'s 16 values in the low 256 bits, `hi`'s in the high ones.
            _mm512_cvtne2ps_pbh(hi, lo)
        };
        // Slots 16i..16i+16 lie at or before the 32 floats just read (16i + 16 ≤ 32i for
        // i ≥ 1; for i = 0 both were read first), so packing in place never overwrites an
        // unread value.
        let dst = &mut v[16 * i..][..16];
        // SAFETY: as above; `dst` holds 16 writable floats (64 bytes, the 32 bf16 stored), and
        // `__m512bh` is 512 bits like `__m512`.
        unsafe {
            _mm512_storeu_ps(
                dst.as_mut_ptr(),
                std::mem::transmute::<__m512bh, __m512>(packed),
            )
        }
    }
}

#[target_feature(enable = "avx512f,avx512bf16")]
fn gemm_entry(tok: Avx512Bf16, block: RegisterBlock, variant: Variant, job: GemmJob<'_, '_, u32>) {
    const MAIN: RegisterBlock = <Avx512f as Kernels>::MAIN;
    const ALT: RegisterBlock = <Avx512f as Kernels>::ALT;
    let s = tok.f32_ops;
    match block_kind::<Avx512f>(block, MAIN) {
        BlockKind::Main => {
            gemm_output_with::<Avx512f, { MAIN.columns }, { MAIN.oc_vecs }, _>(s, tok, variant, job)
        }
        BlockKind::MainNarrow => {
            gemm_output_with::<Avx512f, { MAIN.columns - 1 }, { MAIN.oc_vecs }, _>(
                s, tok, variant, job,
            )
        }
        BlockKind::Alt => {
            gemm_output_with::<Avx512f, { ALT.columns }, { ALT.oc_vecs }, _>(s, tok, variant, job)
        }
        BlockKind::AltNarrow => {
            gemm_output_with::<Avx512f, { ALT.columns - 1 }, { ALT.oc_vecs }, _>(
                s, tok, variant, job,
            )
        }
    }
}

impl Reduction<Avx512f> for Avx512Bf16 {
    const CHANNELS: usize = 2;
    type Weight = u32;

    #[inline(always)]
    fn step<const NT: usize, const R: usize>(
        self,
        s: Avx512f,
        acc: &mut [[__m512; R]; NT],
        chunk: &[f32],
        index: usize,
        wk: &[u32],
    ) {
        let l = Avx512f::LANES;
        let w: [__m512bh; R] = std::array::from_fn(|r| {
            let src = &wk[r * l..][..l];
            // SAFETY: `self` proves AVX-512F; `src` holds 16 u32 (64 bytes, checked by the slice
            // above), `loadu` needs no alignment, and `__m512bh` is 512 bits like `__m512i`.
            unsafe {
                std::mem::transmute::<__m512i, __m512bh>(_mm512_loadu_si512(src.as_ptr().cast()))
            }
        });
        for (t, acc_t) in acc.iter_mut().enumerate() {
            // The tile's bf16 pair, broadcast as one 32-bit pattern (`splat` copies the bits).
            let x = s.splat(chunk[t * (l / 2) + index]);
            // SAFETY: `__m512bh` and `__m512` are both 512 bits; any bit pattern is valid.
            let x = unsafe { std::mem::transmute::<__m512, __m512bh>(x) };
            for r in 0..R {
                // SAFETY: `self` proves AVX512-BF16 (and AVX-512F).
                acc_t[r] = unsafe { _mm512_dpbf16_ps(acc_t[r], w[r], x) };
            }
        }
    }
}
