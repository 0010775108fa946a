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
use crate::simd::{Simd, Weight};
use crate::transforms::Variant;

/// The capability token of the bf16-pair GEMM ([`crate::Precision::Bf16`]): AVX512-BF16 on
/// x86-64.
#[cfg(target_arch = "x86_64")]
pub(crate) use x86_64::Avx512Bf16 as Bf16Gemm;

/// The capability token of the bf16-pair GEMM ([`crate::Precision::Bf16`]): no such kernel on
/// this target, so no value of it exists and no plan holds one.
#[cfg(not(target_arch = "x86_64"))]
#[derive(Debug, Clone, Copy)]
pub(crate) enum Bf16Gemm {}

#[cfg(not(target_arch = "x86_64"))]
impl Bf16Gemm {
    /// Never available on this target.
    pub(crate) fn detect() -> Option<Self> {
        None
    }

    /// Unreachable: no value exists.
    pub(crate) fn to_bf16_pairs(self, _: &mut [f32]) {
        match self {}
    }

    /// Unreachable: no value exists.
    pub(crate) fn gemm_output(self, _: RegisterBlock, _: Variant, _: GemmJob<'_, '_, u32>) {
        match self {}
    }
}

/// A micro-kernel register block: `columns` tiles (Winograd) or output pixels (direct), times
/// `oc_vecs` vectors of output channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RegisterBlock {
    /// Columns (tiles or pixels) per block.
    pub columns: usize,
    /// Output-channel vectors per block.
    pub oc_vecs: usize,
}

impl RegisterBlock {
    /// The same block one column narrower. Every ISA also instantiates the narrow form of its
    /// two blocks, for work that divides into it with less padding (7x7 outputs, the 49 F(4,3)
    /// tiles of a 28x28 output: 7 columns instead of 8 waste nothing instead of 12.5 %).
    pub const fn narrow(self) -> Self {
        Self {
            columns: self.columns - 1,
            oc_vecs: self.oc_vecs,
        }
    }

    /// This block or its [`narrow`](Self::narrow) form, whichever computes fewer padded
    /// columns for `units` columns of work; the narrow one only when it saves at least 4 % (it
    /// amortizes each weight load over one column fewer).
    pub fn fitted(self, units: usize) -> Self {
        let padded = |c: usize| units.div_ceil(c) * c;
        let narrow = self.narrow();
        if narrow.columns >= 2 && padded(narrow.columns) * 25 < padded(self.columns) * 24 {
            narrow
        } else {
            self
        }
    }
}

/// The function set every ISA provides, plus its register-block shapes.
pub(crate) trait Kernels: Simd {
    /// The default register block of the Winograd kernels.
    const MAIN: RegisterBlock;
    /// The alternative block with 3 output-channel vectors, used when the channel-block count is
    /// a multiple of 3 but not of `MAIN.oc_vecs` (e.g. 48 channels on AVX-512), so no lane
    /// computes padding.
    const ALT: RegisterBlock;
    /// The main block of direct convolution, in place of `MAIN` (`ALT` is shared): more columns
    /// than the Winograd GEMM, whose transforms need registers too (measured:
    /// `docs/performance.md#direct-register-block`).
    const DIRECT: RegisterBlock;
    /// The ISA's own block for the first-layer body (a compact RGB staging, `K = 27`
    /// reductions), where it has one: taken when its vectors divide the output's channel blocks;
    /// otherwise (and on ISAs without one) the first layer runs the narrow form of the direct
    /// or alternative block. Compiled in an entry point of its own (measured:
    /// `docs/performance.md#first-layer-block`).
    const FIRST: Option<RegisterBlock>;

    /// Winograd input transform `V = Bᵀ·d·B` of one block of `block.columns` tiles. `block` is
    /// `MAIN`, `ALT` or the [`narrow`](RegisterBlock::narrow) form of either.
    fn winograd_input(
        self,
        block: RegisterBlock,
        variant: Variant,
        job: &InputJob<'_>,
        v: &mut [f32],
    );
    /// Transform-domain GEMM and output transform (+ bias, ReLU) for one output-channel group,
    /// on f32 or f16 transformed weights.
    fn winograd_gemm_output<W: Weight>(
        self,
        block: RegisterBlock,
        variant: Variant,
        job: GemmJob<'_, '_, W>,
    );
    /// Direct convolution (kernel 1 or 3, any stride) for one output-channel group, in `block`:
    /// `DIRECT`, `ALT`, the narrow form of either, or `FIRST`.
    fn direct(self, block: RegisterBlock, kernel: usize, job: DirectJob<'_>);
}

/// Which of a kernel family's four instantiated register blocks a [`RegisterBlock`] is (the
/// main block is `MAIN` for Winograd, `DIRECT` for direct convolution).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BlockKind {
    Main,
    MainNarrow,
    Alt,
    AltNarrow,
}

/// The kind of `block` for ISA `K` in the family whose main block is `main` (`K::MAIN` for
/// Winograd, `K::DIRECT` for direct convolution); anything else is a plan bug: it runs as
/// `main`, which the plan's scratch and packing are not sized for, so `debug_assert` catches it
/// in tests.
pub(crate) fn block_kind<K: Kernels>(block: RegisterBlock, main: RegisterBlock) -> BlockKind {
    if block == K::ALT {
        BlockKind::Alt
    } else if block == K::ALT.narrow() {
        BlockKind::AltNarrow
    } else if block == main.narrow() {
        BlockKind::MainNarrow
    } else {
        debug_assert_eq!(block, main, "not one of the ISA's register blocks");
        BlockKind::Main
    }
}

/// Implements [`Kernels`] for a token: `isa_kernels!(Token, feature = "f1,f2", main = (columns,
/// oc_vecs), alt = (columns, 3), direct = (columns, oc_vecs)[, first = (columns, oc_vecs)])`.
/// Without `feature` the entry points are plain `#[inline]` functions (the scalar path). Each
/// entry point instantiates the generic body for its family's main block (`main` for Winograd,
/// `direct` for direct convolution), the alternative block and one column narrower each; the
/// optional first-layer block ([`Kernels::FIRST`]) gets a direct-convolution entry point of its
/// own.
macro_rules! isa_kernels {
    ($token:ident, feature = $feature:literal, $($blocks:tt)*) => {
        crate::arch::isa_kernels!(@impl $token, [target_feature(enable = $feature)], target, $($blocks)*);
    };
    ($token:ident, $($blocks:tt)*) => {
        crate::arch::isa_kernels!(@impl $token, [inline], portable, $($blocks)*);
    };
    (@impl $token:ident, $attr:tt, $entry:ident, main = ($mc:literal, $mr:literal), alt = ($ac:literal, $ar:literal), direct = ($dc:literal, $dr:literal) $(, first = ($fc:literal, $fr:literal))?) => {
        mod entry {
            use super::$token;
            use crate::arch::{BlockKind, RegisterBlock, block_kind};
            use crate::kernels::{self, DirectJob, GemmJob, InputJob};
            use crate::transforms::Variant;

            #$attr
            pub(super) fn winograd_input(
                tok: $token,
                block: RegisterBlock,
                variant: Variant,
                job: &InputJob<'_>,
                v: &mut [f32],
            ) {
                match block_kind::<$token>(block, <$token as crate::arch::Kernels>::MAIN) {
                    BlockKind::Alt => {
                        kernels::winograd::input_transform::<$token, $ac>(tok, variant, job, v)
                    }
                    BlockKind::AltNarrow => {
                        kernels::winograd::input_transform::<$token, { $ac - 1 }>(
                            tok, variant, job, v,
                        )
                    }
                    BlockKind::MainNarrow => kernels::winograd::input_transform::<
                        $token,
                        { $mc - 1 },
                    >(tok, variant, job, v),
                    BlockKind::Main => {
                        kernels::winograd::input_transform::<$token, $mc>(tok, variant, job, v)
                    }
                }
            }

            #$attr
            pub(super) fn winograd_gemm_output<W: crate::simd::Weight>(
                tok: $token,
                block: RegisterBlock,
                variant: Variant,
                job: GemmJob<'_, '_, W>,
            ) {
                match block_kind::<$token>(block, <$token as crate::arch::Kernels>::MAIN) {
                    BlockKind::Alt => {
                        kernels::winograd::gemm_output::<$token, $ac, $ar, W>(tok, variant, job)
                    }
                    BlockKind::AltNarrow => {
                        kernels::winograd::gemm_output::<$token, { $ac - 1 }, $ar, W>(
                            tok, variant, job,
                        )
                    }
                    BlockKind::MainNarrow => {
                        kernels::winograd::gemm_output::<$token, { $mc - 1 }, $mr, W>(
                            tok, variant, job,
                        )
                    }
                    BlockKind::Main => {
                        kernels::winograd::gemm_output::<$token, $mc, $mr, W>(tok, variant, job)
                    }
                }
            }

            #$attr
            pub(super) fn direct(
                tok: $token,
                block: RegisterBlock,
                kernel: usize,
                job: DirectJob<'_>,
            ) {
                match block_kind::<$token>(block, <$token as crate::arch::Kernels>::DIRECT) {
                    BlockKind::Alt => kernels::direct::direct::<$token, $ac, $ar>(tok, kernel, job),
                    BlockKind::AltNarrow => {
                        kernels::direct::direct::<$token, { $ac - 1 }, $ar>(tok, kernel, job)
                    }
                    BlockKind::MainNarrow => {
                        kernels::direct::direct::<$token, { $dc - 1 }, $dr>(tok, kernel, job)
                    }
                    BlockKind::Main => {
                        kernels::direct::direct::<$token, $dc, $dr>(tok, kernel, job)
                    }
                }
            }

            $(
            #$attr
            pub(super) fn direct_first(tok: $token, kernel: usize, job: DirectJob<'_>) {
                kernels::direct::direct::<$token, $fc, $fr>(tok, kernel, job)
            }
            )?
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
            const DIRECT: crate::arch::RegisterBlock = crate::arch::RegisterBlock {
                columns: $dc,
                oc_vecs: $dr,
            };
            const FIRST: Option<crate::arch::RegisterBlock> =
                crate::arch::optional_block!($(($fc, $fr))?);

            fn winograd_input(
                self,
                block: crate::arch::RegisterBlock,
                variant: crate::transforms::Variant,
                job: &crate::kernels::InputJob<'_>,
                v: &mut [f32],
            ) {
                crate::arch::call_entry!($entry, entry::winograd_input(self, block, variant, job, v))
            }

            fn winograd_gemm_output<W: crate::simd::Weight>(
                self,
                block: crate::arch::RegisterBlock,
                variant: crate::transforms::Variant,
                job: crate::kernels::GemmJob<'_, '_, W>,
            ) {
                crate::arch::call_entry!($entry, entry::winograd_gemm_output(self, block, variant, job))
            }

            fn direct(
                self,
                block: crate::arch::RegisterBlock,
                kernel: usize,
                job: crate::kernels::DirectJob<'_>,
            ) {
                $(
                if block == (crate::arch::RegisterBlock { columns: $fc, oc_vecs: $fr }) {
                    return crate::arch::call_entry!($entry, entry::direct_first(self, kernel, job));
                }
                )?
                crate::arch::call_entry!($entry, entry::direct(self, block, kernel, job))
            }
        }
    };
}
pub(crate) use isa_kernels;

/// Calls an [`isa_kernels!`] entry point: `target` ones carry `#[target_feature]` and are
/// called inside `unsafe` (the token proves the features), `portable` ones (the scalar token's)
/// are plain functions.
macro_rules! call_entry {
    (target, $call:expr) => {
        // SAFETY: `self` is a capability token, created only after detecting the features.
        unsafe { $call }
    };
    (portable, $call:expr) => {
        $call
    };
}
pub(crate) use call_entry;

/// `Some` register block from `(columns, oc_vecs)`, or `None` without arguments (the optional
/// `first` block of [`isa_kernels!`]).
macro_rules! optional_block {
    () => {
        None
    };
    (($c:literal, $r:literal)) => {
        Some(crate::arch::RegisterBlock {
            columns: $c,
            oc_vecs: $r,
        })
    };
}
pub(crate) use optional_block;
