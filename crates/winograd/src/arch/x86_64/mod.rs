//! x86-64 kernels: AVX-512F and AVX2 + FMA.

mod avx2_fma;
mod avx512f;

pub use avx2_fma::Avx2Fma;
pub use avx512f::Avx512f;
