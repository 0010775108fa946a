//! ISA dispatch: the capability token of a plan's ISA, [`with_token!`] to call a generic body
//! with the concrete token, and the register-block shape each ISA gives a layer.

use crate::arch::{Kernels, RegisterBlock, scalar::Scalar};
use crate::{ConvError, Isa};
use reparam_tensor::ConvSpec;

/// The detected capability token of the plan's ISA.
#[derive(Debug, Clone, Copy)]
pub(super) enum Token {
    Scalar(Scalar),
    #[cfg(target_arch = "x86_64")]
    Avx512f(crate::arch::x86_64::Avx512f),
    #[cfg(target_arch = "x86_64")]
    Avx2Fma(crate::arch::x86_64::Avx2Fma),
    #[cfg(target_arch = "aarch64")]
    Neon(crate::arch::aarch64::Neon),
}

/// Calls `$body` with `$k` bound to the concrete token (a generic call per ISA).
macro_rules! with_token {
    ($token:expr, $k:ident => $body:expr) => {
        match $token {
            Token::Scalar($k) => $body,
            #[cfg(target_arch = "x86_64")]
            Token::Avx512f($k) => $body,
            #[cfg(target_arch = "x86_64")]
            Token::Avx2Fma($k) => $body,
            #[cfg(target_arch = "aarch64")]
            Token::Neon($k) => $body,
        }
    };
}

impl Token {
    pub(super) fn new(isa: Isa) -> Result<Self, ConvError> {
        let unavailable = || {
            isa.require().err().unwrap_or(ConvError::IsaUnavailable {
                isa,
                available: String::new(),
            })
        };
        match isa {
            Isa::Scalar => Ok(Self::Scalar(Scalar)),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512f => crate::arch::x86_64::Avx512f::detect()
                .map(Self::Avx512f)
                .ok_or_else(unavailable),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2Fma => crate::arch::x86_64::Avx2Fma::detect()
                .map(Self::Avx2Fma)
                .ok_or_else(unavailable),
            #[cfg(target_arch = "aarch64")]
            Isa::Neon => crate::arch::aarch64::Neon::detect()
                .map(Self::Neon)
                .ok_or_else(unavailable),
            #[allow(
                unreachable_patterns,
                reason = "which arms exist depends on the target"
            )]
            _ => Err(unavailable()),
        }
    }

    /// Lanes and the register block for `spec`: the ISA's main block (`DIRECT` for direct
    /// convolution, `MAIN` for Winograd), or its 3-vector alternative when that avoids computing
    /// padding lanes (channel blocks a multiple of 3 but not of the main block's vector count).
    /// The direct first layer on a compact staging (fewer input channels than lanes) takes the
    /// ISA's `FIRST` block where it has one that divides the channel blocks, else the narrow
    /// form of the other choice, whose accumulators leave room for the pixel windows
    /// (`docs/performance.md#first-layer-narrow-block`).
    pub(super) fn shape(self, spec: &ConvSpec, direct: bool) -> TileShape {
        fn of<K: Kernels>(_: K, spec: &ConvSpec, direct: bool) -> TileShape {
            let blocks = spec.out_channels.div_ceil(K::LANES);
            let first_layer = direct && spec.kernel == 3 && spec.in_channels < K::LANES;
            let main = if direct { K::DIRECT } else { K::MAIN };
            let block = if let Some(first) = K::FIRST
                && first_layer
                && blocks % first.oc_vecs == 0
            {
                first
            } else {
                let block = if blocks % main.oc_vecs != 0 && blocks % K::ALT.oc_vecs == 0 {
                    K::ALT
                } else {
                    main
                };
                if first_layer { block.narrow() } else { block }
            };
            TileShape {
                lanes: K::LANES,
                block,
            }
        }
        with_token!(self, k => of(k, spec, direct))
    }
}

#[derive(Debug, Clone, Copy)]
pub(super) struct TileShape {
    pub(super) lanes: usize,
    pub(super) block: RegisterBlock,
}
