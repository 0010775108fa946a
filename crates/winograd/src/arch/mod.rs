//! Per-ISA kernels. Every ISA file has the same shape: a capability token (a zero-sized type that
//! only detection can create), its [`Simd`](crate::simd::Simd) implementation, and one
//! [`isa_kernels!`] line that instantiates the generic kernel bodies inside `#[target_feature]`
//! entry points and implements [`Kernels`] for the token.

#[cfg(target_arch = "aarch64")]
pub mod aarch64;
pub mod scalar;
#[cfg(target_arch = "x86_64")]
pub mod x86_64;

use crate::kernels::{DirectJob, GemmJob, InputJob};
use crate::simd::Simd;
use crate::transforms::Variant;

/// The function set every ISA provides, plus its register-tile shape.
pub(crate) trait Kernels: Simd {
    /// Tiles per Winograd GEMM register block (columns of the micro-kernel).
    const WINO_TILES: usize;
    /// Output-channel vectors per Winograd GEMM register block.
    const WINO_OC_VECS: usize;
    /// Output pixels per direct-conv register block.
    const DIRECT_PIXELS: usize;
    /// Output-channel vectors per direct-conv register block.
    const DIRECT_OC_VECS: usize;

    /// Winograd input transform `V = Bᵀ·d·B` of one block of `WINO_TILES` tiles.
    fn winograd_input(self, variant: Variant, job: &InputJob<'_>, v: &mut [f32]);
    /// Transform-domain GEMM and output transform (+ bias, ReLU) for one output-channel group.
    fn winograd_gemm_output(self, variant: Variant, job: GemmJob<'_>);
    /// Direct convolution (kernel 1 or 3, any stride) for one output-channel group.
    fn direct(self, kernel: usize, job: DirectJob<'_>);
}

/// Implements [`Kernels`] for a token: `isa_kernels!(Token, feature = "f1,f2", wino = (tiles,
/// oc_vecs), direct = (pixels, oc_vecs))`. Without `feature`, no `#[target_feature]` is applied
/// (the scalar path).
macro_rules! isa_kernels {
    ($token:ident, feature = $feature:literal, wino = ($wt:literal, $wr:literal), direct = ($dp:literal, $dr:literal)) => {
        mod entry {
            use super::$token;
            use crate::kernels::{self, DirectJob, GemmJob, InputJob};
            use crate::transforms::Variant;

            #[target_feature(enable = $feature)]
            pub(super) fn winograd_input(
                tok: $token,
                variant: Variant,
                job: &InputJob<'_>,
                v: &mut [f32],
            ) {
                kernels::winograd::input_transform::<$token, $wt>(tok, variant, job, v)
            }

            #[target_feature(enable = $feature)]
            pub(super) fn winograd_gemm_output(tok: $token, variant: Variant, job: GemmJob<'_>) {
                kernels::winograd::gemm_output::<$token, $wt, $wr>(tok, variant, job)
            }

            #[target_feature(enable = $feature)]
            pub(super) fn direct(tok: $token, kernel: usize, job: DirectJob<'_>) {
                kernels::direct::direct::<$token, $dp, $dr>(tok, kernel, job)
            }
        }

        impl crate::arch::Kernels for $token {
            const WINO_TILES: usize = $wt;
            const WINO_OC_VECS: usize = $wr;
            const DIRECT_PIXELS: usize = $dp;
            const DIRECT_OC_VECS: usize = $dr;

            fn winograd_input(
                self,
                variant: crate::transforms::Variant,
                job: &crate::kernels::InputJob<'_>,
                v: &mut [f32],
            ) {
                // SAFETY: `self` is a capability token, created only after detecting the features.
                unsafe { entry::winograd_input(self, variant, job, v) }
            }

            fn winograd_gemm_output(
                self,
                variant: crate::transforms::Variant,
                job: crate::kernels::GemmJob<'_>,
            ) {
                // SAFETY: `self` is a capability token, created only after detecting the features.
                unsafe { entry::winograd_gemm_output(self, variant, job) }
            }

            fn direct(self, kernel: usize, job: crate::kernels::DirectJob<'_>) {
                // SAFETY: `self` is a capability token, created only after detecting the features.
                unsafe { entry::direct(self, kernel, job) }
            }
        }
    };
    ($token:ident, wino = ($wt:literal, $wr:literal), direct = ($dp:literal, $dr:literal)) => {
        impl crate::arch::Kernels for $token {
            const WINO_TILES: usize = $wt;
            const WINO_OC_VECS: usize = $wr;
            const DIRECT_PIXELS: usize = $dp;
            const DIRECT_OC_VECS: usize = $dr;

            fn winograd_input(
                self,
                variant: crate::transforms::Variant,
                job: &crate::kernels::InputJob<'_>,
                v: &mut [f32],
            ) {
                crate::kernels::winograd::input_transform::<$token, $wt>(self, variant, job, v)
            }

            fn winograd_gemm_output(
                self,
                variant: crate::transforms::Variant,
                job: crate::kernels::GemmJob<'_>,
            ) {
                crate::kernels::winograd::gemm_output::<$token, $wt, $wr>(self, variant, job)
            }

            fn direct(self, kernel: usize, job: crate::kernels::DirectJob<'_>) {
                crate::kernels::direct::direct::<$token, $dp, $dr>(self, kernel, job)
            }
        }
    };
}
pub(crate) use isa_kernels;
