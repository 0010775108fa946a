//! Instruction-set selection: detected once, overridable with `REPARAM_ISA`.

use crate::ConvError;
use std::fmt;

/// The instruction sets this crate has kernels for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Isa {
    /// x86-64 AVX-512F: 16 f32 lanes, 32 registers.
    Avx512f,
    /// x86-64 AVX2 + FMA: 8 f32 lanes, 16 registers.
    Avx2Fma,
    /// aarch64 Advanced SIMD: 4 f32 lanes, 32 registers.
    Neon,
    /// Portable Rust on 4-lane arrays: the readable reference of every kernel's loop structure.
    Scalar,
}

/// The environment variable that forces an ISA: `scalar`, `avx2`, `avx512` or `neon`.
pub const ENV_ISA: &str = "REPARAM_ISA";

impl Isa {
    /// Every ISA, fastest first.
    pub const ALL: [Self; 4] = [Self::Avx512f, Self::Avx2Fma, Self::Neon, Self::Scalar];

    /// f32 lanes per vector, which is also the channel block of the NCHWc layout the ISA's kernels
    /// use.
    pub fn lanes(self) -> usize {
        match self {
            Self::Avx512f => 16,
            Self::Avx2Fma => 8,
            Self::Neon | Self::Scalar => 4,
        }
    }

    /// Name used in benchmark ids and tables: `avx512f`, `avx2fma`, `neon`, `scalar`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Avx512f => "avx512f",
            Self::Avx2Fma => "avx2fma",
            Self::Neon => "neon",
            Self::Scalar => "scalar",
        }
    }

    /// Parses a `REPARAM_ISA` value (`scalar`, `avx2`, `avx512`, `neon`; the [`Isa::name`]s are
    /// accepted too).
    pub fn parse(value: &str) -> Result<Self, ConvError> {
        match value.trim().to_ascii_lowercase().as_str() {
            "scalar" => Ok(Self::Scalar),
            "avx2" | "avx2fma" => Ok(Self::Avx2Fma),
            "avx512" | "avx512f" => Ok(Self::Avx512f),
            "neon" => Ok(Self::Neon),
            _ => Err(ConvError::UnknownIsa {
                value: value.to_string(),
            }),
        }
    }

    /// Whether this CPU (and build target) can run the ISA's kernels.
    pub fn is_available(self) -> bool {
        match self {
            Self::Scalar => true,
            #[cfg(target_arch = "x86_64")]
            Self::Avx512f => crate::arch::x86_64::Avx512f::detect().is_some(),
            #[cfg(target_arch = "x86_64")]
            Self::Avx2Fma => crate::arch::x86_64::Avx2Fma::detect().is_some(),
            #[cfg(target_arch = "aarch64")]
            Self::Neon => crate::arch::aarch64::Neon::detect().is_some(),
            #[allow(
                unreachable_patterns,
                reason = "which arms exist depends on the target"
            )]
            _ => false,
        }
    }

    /// The available ISAs, fastest first.
    pub fn available() -> Vec<Self> {
        Self::ALL.into_iter().filter(|i| i.is_available()).collect()
    }

    /// The fastest available ISA.
    pub fn best() -> Self {
        Self::ALL
            .into_iter()
            .find(|i| i.is_available())
            .unwrap_or(Self::Scalar)
    }

    /// The ISA to use by default: `REPARAM_ISA` if set (an error if unknown or unavailable — a
    /// forced ISA never silently falls back), else [`Isa::best`].
    pub fn from_env() -> Result<Self, ConvError> {
        match std::env::var(ENV_ISA) {
            Ok(value) if !value.trim().is_empty() => Self::parse(&value)?.require(),
            _ => Ok(Self::best()),
        }
    }

    /// `Ok(self)` if available, else [`ConvError::IsaUnavailable`].
    pub fn require(self) -> Result<Self, ConvError> {
        if self.is_available() {
            Ok(self)
        } else {
            Err(ConvError::IsaUnavailable {
                isa: self,
                available: Self::available()
                    .iter()
                    .map(|i| i.name())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
        }
    }
}

impl fmt::Display for Isa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_availability() {
        assert_eq!(Isa::parse("AVX512").unwrap(), Isa::Avx512f);
        assert_eq!(Isa::parse("avx2").unwrap(), Isa::Avx2Fma);
        assert!(matches!(
            Isa::parse("sse9"),
            Err(ConvError::UnknownIsa { .. })
        ));
        assert!(Isa::Scalar.is_available());
        assert!(Isa::available().contains(&Isa::best()));
        #[cfg(target_arch = "x86_64")]
        assert!(matches!(
            Isa::Neon.require(),
            Err(ConvError::IsaUnavailable { isa: Isa::Neon, .. })
        ));
    }
}
