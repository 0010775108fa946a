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

/// A micro-kernel register block: `columns` tiles (Winograd) or output pixels (direct), times
/// `oc_vecs` vectors of output channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RegisterBlock {
    /// Columns (tiles or pixels) per block.
    pub columns: usize,
    /// Output-channel vectors per block.
    pub oc_vecs: usize,
}

/// The function set every ISA provides, plus its register-block shapes.
pub(crate) trait Kernels: Simd {
    /// The default register block.
    const MAIN: RegisterBlock;
    /// The alternative block with 3 output-channel vectors, used when the channel-block count is
    /// a multiple of 3 but not of `MAIN.oc_vecs` (e.g. 48 channels on AVX-512), so no lane
    /// computes padding.
    const ALT: RegisterBlock;

    /// Winograd input transform `V = Bᵀ·d·B` of one block of `block.columns` tiles.
    fn winograd_input(
        self,
        block: RegisterBlock,
        variant: Variant,
        job: &InputJob<'_>,
        v: &mut [f32],
    );
    /// Transform-domain GEMM and output transform (+ bias, ReLU) for one output-channel group.
    fn winograd_gemm_output(self, block: RegisterBlock, variant: Variant, job: GemmJob<'_>);
    /// Direct convolution (kernel 1 or 3, any stride) for one output-channel group.
    fn direct(self, block: RegisterBlock, kernel: usize, job: DirectJob<'_>);
}

/// Implements [`Kernels`] for a token: `isa_kernels!(Token, feature = "f1,f2", main = (columns,
/// oc_vecs), alt = (columns, 3))`. Without `feature`, no `#[target_feature]` is applied (the
/// scalar path). Each entry point instantiates the generic body for both register blocks.
macro_rules! isa_kernels {
    ($token:ident, feature = $feature:literal, main = ($mc:literal, $mr:literal), alt = ($ac:literal, $ar:literal)) => {
        mod entry {
            use super::$token;
            use crate::arch::{Kernels, RegisterBlock};
            use crate::kernels::{self, DirectJob, GemmJob, InputJob};
            use crate::transforms::Variant;

            #[target_feature(enable = $feature)]
            pub(super) fn winograd_input(
                tok: $token,
                block: RegisterBlock,
                variant: Variant,
                job: &InputJob<'_>,
                v: &mut [f32],
            ) {
                if block == <$token as Kernels>::ALT {
                    kernels::winograd::input_transform::<$token, $ac>(tok, variant, job, v)
                } else {
                    kernels::winograd::input_transform::<$token, $mc>(tok, variant, job, v)
                }
            }

            #[target_feature(enable = $feature)]
            pub(super) fn winograd_gemm_output(
                tok: $token,
                block: RegisterBlock,
                variant: Variant,
                job: GemmJob<'_>,
            ) {
                if block == <$token as Kernels>::ALT {
                    kernels::winograd::gemm_output::<$token, $ac, $ar>(tok, variant, job)
                } else {
                    kernels::winograd::gemm_output::<$token, $mc, $mr>(tok, variant, job)
                }
            }

            #[target_feature(enable = $feature)]
            pub(super) fn direct(
                tok: $token,
                block: RegisterBlock,
                kernel: usize,
                job: DirectJob<'_>,
            ) {
                if block == <$token as Kernels>::ALT {
                    kernels::direct::direct::<$token, $ac, $ar>(tok, kernel, job)
                } else {
                    kernels::direct::direct::<$token, $mc, $mr>(tok, kernel, job)
                }
            }
        }

        impl crate::arch::Kernels for $token {
            const MAIN: crate::arch::RegisterBlock = crate::arch::RegisterBlock {
                columns: $mc,
                oc_vecs: $mr,
            };
            const ALT: crate::arch::RegisterBlock = crate::arch::RegisterBlock {
                columns: $ac,
                oc_vecs: $ar,
            };

            fn winograd_input(
                self,
                block: crate::arch::RegisterBlock,
                variant: crate::transforms::Variant,
                job: &crate::kernels::InputJob<'_>,
                v: &mut [f32],
            ) {
                // SAFETY: `self` is a capability token, created only after detecting the features.
                unsafe { entry::winograd_input(self, block, variant, job, v) }
            }

            fn winograd_gemm_output(
                self,
                block: crate::arch::RegisterBlock,
                variant: crate::transforms::Variant,
                job: crate::kernels::GemmJob<'_>,
            ) {
                // SAFETY: `self` is a capability token, created only after detecting the features.
                unsafe { entry::winograd_gemm_output(self, block, variant, job) }
            }

            fn direct(
                self,
                block: crate::arch::RegisterBlock,
                kernel: usize,
                job: crate::kernels::DirectJob<'_>,
            ) {
                // SAFETY: `self` is a capability token, created only after detecting the features.
                unsafe { entry::direct(self, block, kernel, job) }
            }
        }
    };
    ($token:ident, main = ($mc:literal, $mr:literal), alt = ($ac:literal, $ar:literal)) => {
        impl crate::arch::Kernels for $token {
            const MAIN: crate::arch::RegisterBlock = crate::arch::RegisterBlock {
                columns: $mc,
                oc_vecs: $mr,
            };
            const ALT: crate::arch::RegisterBlock = crate::arch::RegisterBlock {
                columns: $ac,
                oc_vecs: $ar,
            };

            fn winograd_input(
                self,
                block: crate::arch::RegisterBlock,
                variant: crate::transforms::Variant,
                job: &crate::kernels::InputJob<'_>,
                v: &mut [f32],
            ) {
                if block == Self::ALT {
                    crate::kernels::winograd::input_transform::<$token, $ac>(self, variant, job, v)
                } else {
                    crate::kernels::winograd::input_transform::<$token, $mc>(self, variant, job, v)
                }
            }

            fn winograd_gemm_output(
                self,
                block: crate::arch::RegisterBlock,
                variant: crate::transforms::Variant,
                job: crate::kernels::GemmJob<'_>,
            ) {
                if block == Self::ALT {
                    crate::kernels::winograd::gemm_output::<$token, $ac, $ar>(self, variant, job)
                } else {
                    crate::kernels::winograd::gemm_output::<$token, $mc, $mr>(self, variant, job)
                }
            }

            fn direct(
                self,
                block: crate::arch::RegisterBlock,
                kernel: usize,
                job: crate::kernels::DirectJob<'_>,
            ) {
                if block == Self::ALT {
                    crate::kernels::direct::direct::<$token, $ac, $ar>(self, kernel, job)
                } else {
                    crate::kernels::direct::direct::<$token, $mc, $mr>(self, kernel, job)
                }
            }
        }
    };
}
pub(crate) use isa_kernels;
