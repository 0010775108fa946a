//! Weight layouts of the GPU kernels, packed once on the host when a plan is built.
//!
//! * Direct / implicit GEMM / naive: `w[g][tap][ci][j]` with `tap = ky·K + kx`, `ci < Cin/g`
//!   and `j < cog_pad = ⌈(Cout/g)/4⌉·4` (zero beyond `Cout/g`). For the GEMM this is the B
//!   operand `B[k][j]` with `k = tap·(Cin/g) + ci`, read as `vec4` over `j`.
//! * Winograd F(2×2,3×3): `U[g][pos][ci][j] = (G w Gᵀ)[r][s]`, `pos = 4·r + s`, computed in f64
//!   and rounded once, same `j` padding.
//! * Bias: `[g][cog_pad]`, zero where there is no bias and beyond `Cout/g`.

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

/// G of F(2×2, 3×3) with interpolation points 0, 1, −1 (and ∞):
/// ```text
///     | 1    0    0  |
/// G = | 1/2  1/2  1/2|
///     | 1/2 −1/2  1/2|
///     | 0    0    1  |
/// ```
/// Bᵀ and Aᵀ are written out in `winograd_f23_input.wgsl` / `winograd_f23_output.wgsl` and
/// repeated in [`F23_BT`] / [`F23_AT`] for the host-side check of the identity.
pub(crate) const F23_G: [[f64; 3]; 4] = [
    [1.0, 0.0, 0.0],
    [0.5, 0.5, 0.5],
    [0.5, -0.5, 0.5],
    [0.0, 0.0, 1.0],
];

/// Bᵀ of F(2×2, 3×3) (as in `winograd_f23_input.wgsl`).
#[cfg(test)]
pub(crate) const F23_BT: [[f64; 4]; 4] = [
    [1.0, 0.0, -1.0, 0.0],
    [0.0, 1.0, 1.0, 0.0],
    [0.0, -1.0, 1.0, 0.0],
    [0.0, 1.0, 0.0, -1.0],
];

/// Aᵀ of F(2×2, 3×3) (as in `winograd_f23_output.wgsl`).
#[cfg(test)]
pub(crate) const F23_AT: [[f64; 4]; 2] = [[1.0, 1.0, 1.0, 0.0], [0.0, 1.0, -1.0, -1.0]];

/// `U = G w Gᵀ` for one 3x3 kernel, in f64.
fn transform_kernel(w: &[[f64; 3]; 3]) -> [[f64; 4]; 4] {
    let mut gw = [[0.0; 3]; 4];
    for (r, row) in gw.iter_mut().enumerate() {
        for (c, v) in row.iter_mut().enumerate() {
            *v = (0..3).map(|i| F23_G[r][i] * w[i][c]).sum();
        }
    }
    let mut u = [[0.0; 4]; 4];
    for (r, row) in u.iter_mut().enumerate() {
        for (s, v) in row.iter_mut().enumerate() {
            *v = (0..3).map(|i| gw[r][i] * F23_G[s][i]).sum();
        }
    }
    u
}

/// `U[g][pos][ci][j]` (see the module docs) from OIHW 3x3 weights.
pub(crate) fn winograd_f23_weights(spec: &ConvSpec, weight: &Tensor) -> Vec<f32> {
    let (cig, cog) = (spec.in_per_group(), spec.out_per_group());
    let cp = cog_pad(spec);
    let mut packed = vec![0.0; spec.groups * 16 * cig * cp];
    for g in 0..spec.groups {
        for j in 0..cog {
            for ci in 0..cig {
                let o = g * cog + j;
                let mut w = [[0.0; 3]; 3];
                for (ky, row) in w.iter_mut().enumerate() {
                    for (kx, v) in row.iter_mut().enumerate() {
                        *v = f64::from(weight.at(o, ci, ky, kx));
                    }
                }
                let u = transform_kernel(&w);
                for pos in 0..16 {
                    packed[((g * 16 + pos) * cig + ci) * cp + j] = u[pos / 4][pos % 4] as f32;
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

    /// The F(2×2,3×3) identity with the matrices above, in f64: for a random 4x4 patch d and
    /// 3x3 kernel w, `Aᵀ[(G w Gᵀ) ⊙ (Bᵀ d B)]A` equals the 2x2 correlation `Σ w[u][v]·d[a+u][b+v]`.
    #[test]
    fn f23_matrices_compute_the_correlation() {
        let mut rng = SplitMix64::new(7);
        for _ in 0..20 {
            let d: [[f64; 4]; 4] =
                std::array::from_fn(|_| std::array::from_fn(|_| rng.next_f64() - 0.5));
            let w: [[f64; 3]; 3] =
                std::array::from_fn(|_| std::array::from_fn(|_| rng.next_f64() - 0.5));
            let u = transform_kernel(&w);
            // V = Bᵀ d B
            let mut v = [[0.0; 4]; 4];
            for r in 0..4 {
                for s in 0..4 {
                    v[r][s] = (0..4)
                        .flat_map(|i| (0..4).map(move |j| (i, j)))
                        .map(|(i, j)| F23_BT[r][i] * d[i][j] * F23_BT[s][j])
                        .sum();
                }
            }
            for a in 0..2 {
                for b in 0..2 {
                    let wino: f64 = (0..4)
                        .flat_map(|r| (0..4).map(move |s| (r, s)))
                        .map(|(r, s)| F23_AT[a][r] * u[r][s] * v[r][s] * F23_AT[b][s])
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
