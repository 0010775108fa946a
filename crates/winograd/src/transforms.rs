//! Winograd minimal-filtering transforms F(m, 3) for m = 2, 4, 6.
//!
//! One output tile of `m×m` pixels is computed from an input tile of `α×α` pixels, `α = m + 2`:
//!
//! ```text
//! Y = Aᵀ · [ (G·g·Gᵀ) ⊙ (Bᵀ·d·B) ] · A        (Lavin & Gray, CVPR 2016)
//! ```
//!
//! where `d` is the `α×α` input tile, `g` the 3x3 kernel, `⊙` the element-wise product. Summed over
//! input channels, the `α²` element-wise products become `α²` independent GEMMs (the "transform
//! domain"), which is where the multiplications are saved: `α²` per tile instead of `9·m²`.
//!
//! The interpolation points (`docs/winograd.md#transform-matrices`; never ±3, whose large
//! transform entries cost accuracy): F(2,3) {0, ±1, ∞}; F(4,3) {0, ±√2, ±√2/2, ∞}; F(6,3) {0, ±1, ±2, ±1/2, ∞} (NNPACK / ncnn). The matrices, in `f64`, live in
//! `reparam_tensor::winograd` (shared with the GPU kernels) and are re-exported here;
//! kernels use `f32` copies, and the weight transform `G·g·Gᵀ` is evaluated in `f64` and rounded
//! once. The `tests` module checks each set of matrices against direct correlation in exact-ish `f64`.

/// A Winograd variant F(m×m, 3×3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Variant {
    /// F(2×2, 3×3): α = 4, 16 multiplications per 4 outputs (2.25x fewer than direct).
    F23,
    /// F(4×4, 3×3): α = 6, 36 per 16 outputs (4x fewer).
    F43,
    /// F(6×6, 3×3): α = 8, 64 per 36 outputs (5.06x fewer).
    F63,
}

pub use reparam_tensor::winograd::{
    F23_AT, F23_BT, F23_G, F43_AT, F43_BT, F43_G, F63_AT, F63_BT, F63_G,
};

/// The matrices of one variant as slices (`bt`: α×α, `g`: α×3, `at`: m×α), row-major.
#[derive(Debug, Clone, Copy)]
pub struct Matrices {
    /// Output tile size m.
    pub m: usize,
    /// Input tile size α = m + 2.
    pub alpha: usize,
    /// Bᵀ, α rows of α.
    pub bt: &'static [[f64; 8]],
    /// G, α rows of 3.
    pub g: &'static [[f64; 3]],
    /// Aᵀ, m rows of α.
    pub at: &'static [[f64; 8]],
}

/// Pads the rows of a square-ish matrix to 8 columns so all variants share one slice type.
const fn pad8<const R: usize, const C: usize>(m: [[f64; C]; R]) -> [[f64; 8]; R] {
    let mut out = [[0.0; 8]; R];
    let mut r = 0;
    while r < R {
        let mut c = 0;
        while c < C {
            out[r][c] = m[r][c];
            c += 1;
        }
        r += 1;
    }
    out
}

static F23_BT8: [[f64; 8]; 4] = pad8(F23_BT);
static F23_AT8: [[f64; 8]; 2] = pad8(F23_AT);
static F43_BT8: [[f64; 8]; 6] = pad8(F43_BT);
static F43_AT8: [[f64; 8]; 4] = pad8(F43_AT);
static F63_BT8: [[f64; 8]; 8] = F63_BT;
static F63_AT8: [[f64; 8]; 6] = F63_AT;

impl Variant {
    /// All variants, smallest tile first.
    pub const ALL: [Self; 3] = [Self::F23, Self::F43, Self::F63];

    /// Output tile size m.
    pub fn m(self) -> usize {
        self.matrices().m
    }

    /// Input tile size α = m + 2.
    pub fn alpha(self) -> usize {
        self.matrices().alpha
    }

    /// The variant's matrices.
    pub fn matrices(self) -> Matrices {
        match self {
            Self::F23 => Matrices {
                m: 2,
                alpha: 4,
                bt: &F23_BT8,
                g: &F23_G,
                at: &F23_AT8,
            },
            Self::F43 => Matrices {
                m: 4,
                alpha: 6,
                bt: &F43_BT8,
                g: &F43_G,
                at: &F43_AT8,
            },
            Self::F63 => Matrices {
                m: 6,
                alpha: 8,
                bt: &F63_BT8,
                g: &F63_G,
                at: &F63_AT8,
            },
        }
    }

    /// Short lowercase name: `f23`, `f43`, `f63`.
    pub fn name(self) -> &'static str {
        match self {
            Self::F23 => "f23",
            Self::F43 => "f43",
            Self::F63 => "f63",
        }
    }

    /// The transformed kernel `U = G·g·Gᵀ` (α×α, row-major), evaluated in f64 and rounded once.
    pub fn transform_kernel(self, g: &[f32; 9]) -> Vec<f32> {
        let kernel = std::array::from_fn(|k| std::array::from_fn(|j| f64::from(g[k * 3 + j])));
        reparam_tensor::winograd::transform_kernel(self.matrices().g, &kernel)
            .into_iter()
            .map(|v| v as f32)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reparam_tensor::rng::SplitMix64;

    /// 1-D check of each variant in f64: Aᵀ[(G·g) ⊙ (Bᵀ·d)] must equal the correlation
    /// `y[i] = Σⱼ d[i+j]·g[j]` for i < m, for random d and g.
    #[test]
    fn matrices_compute_correlation_1d() {
        let mut rng = SplitMix64::new(42);
        for v in Variant::ALL {
            let mat = v.matrices();
            let (m, a) = (mat.m, mat.alpha);
            assert_eq!(a, m + 2);
            for _ in 0..20 {
                let d: Vec<f64> = (0..a).map(|_| rng.next_f64() * 2.0 - 1.0).collect();
                let g: Vec<f64> = (0..3).map(|_| rng.next_f64() * 2.0 - 1.0).collect();
                let gg: Vec<f64> = (0..a)
                    .map(|i| (0..3).map(|k| mat.g[i][k] * g[k]).sum())
                    .collect();
                let bd: Vec<f64> = (0..a)
                    .map(|i| (0..a).map(|k| mat.bt[i][k] * d[k]).sum())
                    .collect();
                for i in 0..m {
                    let y: f64 = (0..a).map(|k| mat.at[i][k] * gg[k] * bd[k]).sum();
                    let direct: f64 = (0..3).map(|j| d[i + j] * g[j]).sum();
                    assert!(
                        (y - direct).abs() < 1e-12,
                        "{v:?} output {i}: {y} vs {direct}"
                    );
                }
            }
        }
    }

    /// The padded columns of the shared 8-wide rows must be zero.
    #[test]
    fn padding_columns_are_zero() {
        for v in Variant::ALL {
            let mat = v.matrices();
            for row in mat.bt.iter().chain(mat.at) {
                assert!(row[mat.alpha..].iter().all(|&x| x == 0.0), "{v:?}");
            }
        }
    }

    /// 2-D: Aᵀ[U ⊙ (Bᵀ d B)]A equals the 3x3 correlation of an α×α tile.
    #[test]
    fn kernel_transform_gives_2d_correlation() {
        let mut rng = SplitMix64::new(7);
        for v in Variant::ALL {
            let mat = v.matrices();
            let (m, a) = (mat.m, mat.alpha);
            let g: [f32; 9] = std::array::from_fn(|_| rng.uniform(-1.0, 1.0));
            let d: Vec<f64> = (0..a * a).map(|_| rng.next_f64() - 0.5).collect();
            let u = v.transform_kernel(&g);
            // V = Bᵀ d B
            let mut tmp = vec![0.0; a * a];
            let mut vv = vec![0.0; a * a];
            for i in 0..a {
                for j in 0..a {
                    tmp[i * a + j] = (0..a).map(|k| mat.bt[i][k] * d[k * a + j]).sum();
                }
            }
            for i in 0..a {
                for j in 0..a {
                    vv[i * a + j] = (0..a).map(|k| tmp[i * a + k] * mat.bt[j][k]).sum();
                }
            }
            let prod: Vec<f64> = (0..a * a).map(|i| f64::from(u[i]) * vv[i]).collect();
            for y in 0..m {
                for x in 0..m {
                    let got: f64 = (0..a)
                        .flat_map(|i| (0..a).map(move |j| (i, j)))
                        .map(|(i, j)| mat.at[y][i] * prod[i * a + j] * mat.at[x][j])
                        .sum();
                    let want: f64 = (0..3)
                        .flat_map(|i| (0..3).map(move |j| (i, j)))
                        .map(|(i, j)| d[(y + i) * a + x + j] * f64::from(g[i * 3 + j]))
                        .sum();
                    // U is rounded to f32, so allow f32-level error.
                    assert!(
                        (got - want).abs() < 1e-5,
                        "{v:?} ({y},{x}): {got} vs {want}"
                    );
                }
            }
        }
    }
}
