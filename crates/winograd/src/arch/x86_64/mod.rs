//! x86-64 kernels: AVX-512F and AVX2 + FMA, and the AVX512-BF16 GEMM of bf16 plans.

mod avx2_fma;
mod avx512bf16;
mod avx512f;

pub use avx2_fma::Avx2Fma;
pub use avx512bf16::Avx512Bf16;
pub use avx512f::Avx512f;
