//! Weight layouts of the GPU kernels, packed once on the host when a plan is built.
//!
//! * Direct / implicit GEMM / naive: `w[g][tap][ci][j]` with `tap = ky·K + kx`, `ci < Cin/g`
//!   and `j < cog_pad = ⌈(Cout/g)/4⌉·4` (zero beyond `Cout/g`). For the GEMM this is the B
//!   operand `B[k][j]` with `k = tap·(Cin/g) + ci`, read as `vec4` over `j`.
//! * Winograd F(2×2,3×3) and F(4×4,3×3): `U[g][pos][ci][j] = (G w Gᵀ)[r][s]`, `pos = α·r + s`
//!   (α = 4 or 6), with the matrices of `reparam_tensor::winograd`, computed in f64 and rounded
//!   once, same `j` padding.
//! * Bias: `[g][cog_pad]`, zero where there is no bias and beyond `Cout/g`.

use reparam_tensor::winograd::transform_kernel;
use reparam_tensor::{ConvSpec, Epilogue, Tensor};

/// Output channels per group rounded up to the vec4 width.
pub(crate) fn cog_pad(spec: &ConvSpec) -> usize {
    spec.out_per_group().div_ceil(4) * 4
}

/// `w[g][tap][ci][j]` (see the module docs) from OIHW weights.
pub(crate) fn direct_weights(spec: &ConvSpec, weight: &Tensor) -> Vec<f32> {
    let (cig, cog, k) = (spec.in_per_group(), spec.out_per_group(), spec.kernel);
    let cp = cog_pad(spec);
    let mut packed = vec![0.0; spec.groups * k * k * cig * cp];
    for g in 0..spec.groups {
        for j in 0..cog {
            let o = g * cog + j;
            for ci in 0..cig {
                for ky in 0..k {
                    for kx in 0..k {
                        let tap = ky * k + kx;
                        packed[((g * k * k + tap) * cig + ci) * cp + j] = weight.at(o, ci, ky, kx);
                    }
                }
            }
        }
    }
    packed
}

/// The bias as `[g][cog_pad]`.
pub(crate) fn bias(spec: &ConvSpec, epilogue: &Epilogue) -> Vec<f32> {
    let (cog, cp) = (spec.out_per_group(), cog_pad(spec));
    let mut packed = vec![0.0; spec.groups * cp];
    if let Some(b) = &epilogue.bias {
        for g in 0..spec.groups {
            packed[g * cp..g * cp + cog].copy_from_slice(&b[g * cog..(g + 1) * cog]);
        }
    }
    packed
}

/// `U[g][pos][ci][j]` (see the module docs) from OIHW 3x3 weights, for the variant whose
/// kernel transform is `g_matrix` (α rows: `reparam_tensor::winograd`'s `F23_G` or `F43_G`, the
/// matrices the CPU crate uses too; the shaders spell out the matching Bᵀ and Aᵀ).
pub(crate) fn winograd_weights(
    spec: &ConvSpec,
    weight: &Tensor,
    g_matrix: &[[f64; 3]],
) -> Vec<f32> {
    let (cig, cog) = (spec.in_per_group(), spec.out_per_group());
    let cp = cog_pad(spec);
    let positions = g_matrix.len() * g_matrix.len();
    let mut packed = vec![0.0; spec.groups * positions * cig * cp];
    for g in 0..spec.groups {
        for j in 0..cog {
            for ci in 0..cig {
                let o = g * cog + j;
                let w: [[f64; 3]; 3] = std::array::from_fn(|ky| {
                    std::array::from_fn(|kx| f64::from(weight.at(o, ci, ky, kx)))
                });
                let u = transform_kernel(g_matrix, &w);
                for (pos, &value) in u.iter().enumerate() {
                    packed[((g * positions + pos) * cig + ci) * cp + j] = value as f32;
                }
            }
        }
    }
    packed
}

#[cfg(test)]
mod tests {
    use super::*;
    use reparam_tensor::rng::SplitMix64;
    use reparam_tensor::winograd::{F23_AT, F23_BT, F23_G, F43_AT, F43_BT, F43_G};

    /// The F(m×m,3×3) identity of the matrices the shaders spell out (the shared ones of
    /// `reparam_tensor::winograd`), in f64: for random α×α patches d and 3x3 kernels w,
    /// `Aᵀ[(G w Gᵀ) ⊙ (Bᵀ d B)]A` equals the m×m correlation `Σ w[u][v]·d[a+u][b+v]`.
    fn check_identity<const A: usize, const M: usize>(
        g: &[[f64; 3]; A],
        bt: &[[f64; A]; A],
        at: &[[f64; A]; M],
    ) {
        let mut rng = SplitMix64::new(7);
        for _ in 0..20 {
            let d: [[f64; A]; A] =
                std::array::from_fn(|_| std::array::from_fn(|_| rng.next_f64() - 0.5));
            let w: [[f64; 3]; 3] =
                std::array::from_fn(|_| std::array::from_fn(|_| rng.next_f64() - 0.5));
            let u = transform_kernel(g, &w);
            // V = Bᵀ d B
            let v: [[f64; A]; A] = std::array::from_fn(|r| {
                std::array::from_fn(|s| {
                    (0..A)
                        .flat_map(|i| (0..A).map(move |j| (i, j)))
                        .map(|(i, j)| bt[r][i] * d[i][j] * bt[s][j])
                        .sum()
                })
            });
            for a in 0..M {
                for b in 0..M {
                    let wino: f64 = (0..A)
                        .flat_map(|r| (0..A).map(move |s| (r, s)))
                        .map(|(r, s)| at[a][r] * u[r * A + s] * v[r][s] * at[b][s])
                        .sum();
                    let direct: f64 = (0..3)
                        .flat_map(|i| (0..3).map(move |j| (i, j)))
                        .map(|(i, j)| w[i][j] * d[a + i][b + j])
                        .sum();
                    assert!((wino - direct).abs() < 1e-12, "{wino} vs {direct}");
                }
            }
        }
    }

    #[test]
    fn f23_matrices_compute_the_correlation() {
        check_identity(&F23_G, &F23_BT, &F23_AT);
    }

    #[test]
    fn f43_matrices_compute_the_correlation() {
        check_identity(&F43_G, &F43_BT, &F43_AT);
    }

    #[test]
    fn direct_packing_places_every_weight_once() {
        let spec = ConvSpec::conv3x3(6, 6, 1, 2);
        let weight = Tensor::from_fn(spec.weight_shape(), |o, i, y, x| {
            (o * 1000 + i * 100 + y * 10 + x) as f32 + 1.0
        })
        .unwrap();
        let packed = direct_weights(&spec, &weight);
        // cig = 3, cog = 3, cog_pad = 4: 2 groups · 9 taps · 3 · 4.
        assert_eq!(packed.len(), 2 * 9 * 3 * 4);
        assert_eq!(packed.iter().filter(|&&v| v != 0.0).count(), 6 * 3 * 9);
        // o = 4 is group 1, j = 1; ci = 2, ky = 1, kx = 2 → tap 5.
        assert_eq!(packed[((9 + 5) * 3 + 2) * 4 + 1], weight.at(4, 2, 1, 2));
    }
}
