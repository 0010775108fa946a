//! Winograd F(m, 3) bodies: input transform, transform-domain GEMM and output transform.
//!
//! Per image, with `T` tiles of `m×m` outputs numbered row-major and grouped into blocks of `NT`:
//! 1. [`input_transform`]: for each tile and channel block, `V = Bᵀ·d·B` on the `α×α` window of
//!    the staged input; stored as `V[block][b][t][C_in_pad]` (`b = i·α + j` indexes the α²
//!    transform-domain positions), so one tile block is one contiguous chunk.
//! 2. [`gemm_output`], per output-channel group of `R·L` channels: for each tile block and each
//!    `b`, `M[t][b][oc] = Σ_k U[b][k][oc] · V[b][t][k]` over the group's input range, with the
//!    `R·L` output channels in lanes and each `V` value broadcast; then for each tile
//!    `Y = Aᵀ·M·A`, plus bias, ReLU, stored into the NCHWc output (clipped at the borders).

use super::{epilogue, lin_comb};
use crate::simd::Simd;
use crate::transforms::{self, Variant};

/// A variant's shape and f32 matrices as compile-time constants.
pub(crate) trait Tile {
    /// Output tile size.
    const M: usize;
    /// Input tile size α.
    const A: usize;
    /// Bᵀ rows (first α rows and columns used).
    const BT: [[f32; 8]; 8];
    /// Aᵀ rows (first m rows, α columns used).
    const AT: [[f32; 8]; 8];
}

/// Rounds an f64 matrix to f32 rows of 8 (zero padded).
const fn f32_rows<const R: usize, const C: usize>(m: [[f64; C]; R]) -> [[f32; 8]; 8] {
    let mut out = [[0.0f32; 8]; 8];
    let mut r = 0;
    while r < R {
        let mut c = 0;
        while c < C {
            out[r][c] = m[r][c] as f32;
            c += 1;
        }
        r += 1;
    }
    out
}

/// F(2,3) constants.
pub(crate) struct F23;
impl Tile for F23 {
    const M: usize = 2;
    const A: usize = 4;
    const BT: [[f32; 8]; 8] = f32_rows(transforms::F23_BT);
    const AT: [[f32; 8]; 8] = f32_rows(transforms::F23_AT);
}

/// F(4,3) constants.
pub(crate) struct F43;
impl Tile for F43 {
    const M: usize = 4;
    const A: usize = 6;
    const BT: [[f32; 8]; 8] = f32_rows(transforms::F43_BT);
    const AT: [[f32; 8]; 8] = f32_rows(transforms::F43_AT);
}

/// F(6,3) constants.
pub(crate) struct F63;
impl Tile for F63 {
    const M: usize = 6;
    const A: usize = 8;
    const BT: [[f32; 8]; 8] = f32_rows(transforms::F63_BT);
    const AT: [[f32; 8]; 8] = f32_rows(transforms::F63_AT);
}

/// What [`input_transform`] reads for one tile block.
pub(crate) struct InputJob<'a> {
    /// Staged image `[C_in/L][hp][wp][L]`; tile `(ty, tx)` reads rows `ty·m ..ty·m+α` and columns
    /// `tx·m .. tx·m+α` (the staging added the padding of 1 and the margins).
    pub input: &'a [f32],
    /// Staged height.
    pub hp: usize,
    /// Staged width.
    pub wp: usize,
    /// Input channel blocks.
    pub channel_blocks: usize,
    /// Tiles per row.
    pub tiles_x: usize,
    /// Tiles in the image.
    pub tiles: usize,
    /// Index of the block's first tile.
    pub first_tile: usize,
}

/// Transforms one block of `NT` tiles into `v` (`[α²][NT][C_in_pad]`); tiles past the end of the
/// image are zero so the GEMM can run full register blocks.
#[inline(always)]
pub(crate) fn input_transform<S: Simd, const NT: usize>(
    s: S,
    variant: Variant,
    job: &InputJob<'_>,
    v: &mut [f32],
) {
    match variant {
        Variant::F23 => input_transform_tile::<S, F23, NT>(s, job, v),
        Variant::F43 => input_transform_tile::<S, F43, NT>(s, job, v),
        Variant::F63 => input_transform_tile::<S, F63, NT>(s, job, v),
    }
}

#[inline(always)]
fn input_transform_tile<S: Simd, T: Tile, const NT: usize>(
    s: S,
    job: &InputJob<'_>,
    v: &mut [f32],
) {
    let l = S::LANES;
    let a = T::A;
    let cin_pad = job.channel_blocks * l;
    let plane = job.hp * job.wp * l;
    for t in 0..NT {
        let tile = job.first_tile + t;
        if tile >= job.tiles {
            for b in 0..a * a {
                v[(b * NT + t) * cin_pad..][..cin_pad].fill(0.0);
            }
            continue;
        }
        let (y0, x0) = ((tile / job.tiles_x) * T::M, (tile % job.tiles_x) * T::M);
        for cb in 0..job.channel_blocks {
            let src = &job.input[cb * plane..][..plane];
            // Columns first: tmp[i][j] = Σ_k Bᵀ[i][k]·d[k][j].
            let mut tmp = [[s.zero(); 8]; 8];
            for j in 0..a {
                let col: [S::V; 8] = std::array::from_fn(|k| {
                    if k < a {
                        s.load(&src[((y0 + k) * job.wp + x0 + j) * l..])
                    } else {
                        s.zero()
                    }
                });
                for (i, row) in tmp.iter_mut().enumerate().take(a) {
                    row[j] = lin_comb(s, &T::BT[i], &col, a);
                }
            }
            // Then rows: V[i][j] = Σ_k tmp[i][k]·Bᵀ[j][k].
            for (i, row) in tmp.iter().enumerate().take(a) {
                for j in 0..a {
                    let val = lin_comb(s, &T::BT[j], row, a);
                    s.store(&mut v[((i * a + j) * NT + t) * cin_pad + cb * l..], val);
                }
            }
        }
    }
}

/// One output-channel group's share of a Winograd convolution of one image.
pub(crate) struct GemmJob<'a> {
    /// The group's transformed weights `[α²][k_len][R·L]`.
    pub u: &'a [f32],
    /// First input channel the group reads.
    pub k_start: usize,
    /// Input channels the group reads.
    pub k_len: usize,
    /// The image's transformed input, `[blocks][α²][NT][C_in_pad]`.
    pub v: &'a [f32],
    /// `C_in` rounded up to the lane count.
    pub cin_pad: usize,
    /// Tiles per row.
    pub tiles_x: usize,
    /// Tiles in the image.
    pub tiles: usize,
    /// The group's bias, `R·L` (zero padded).
    pub bias: &'a [f32],
    /// Apply ReLU.
    pub relu: bool,
    /// The group's output planes, `[planes][out_h][out_w][L]` with `planes ≤ R`.
    pub out: &'a mut [f32],
    /// Output height.
    pub out_h: usize,
    /// Output width.
    pub out_w: usize,
    /// Scratch for one tile block of GEMM results, `[NT][α²][R·L]`.
    pub m: &'a mut [f32],
}

/// Runs [`GemmJob`] with an `NT`-tile × `R`-vector register block.
#[inline(always)]
pub(crate) fn gemm_output<S: Simd, const NT: usize, const R: usize>(
    s: S,
    variant: Variant,
    job: GemmJob<'_>,
) {
    match variant {
        Variant::F23 => gemm_output_tile::<S, F23, NT, R>(s, job),
        Variant::F43 => gemm_output_tile::<S, F43, NT, R>(s, job),
        Variant::F63 => gemm_output_tile::<S, F63, NT, R>(s, job),
    }
}

#[inline(always)]
fn gemm_output_tile<S: Simd, T: Tile, const NT: usize, const R: usize>(s: S, job: GemmJob<'_>) {
    let l = S::LANES;
    let a2 = T::A * T::A;
    let rl = R * l;
    let GemmJob {
        u,
        k_start,
        k_len,
        v,
        cin_pad,
        tiles_x,
        tiles,
        bias,
        relu,
        out,
        out_h,
        out_w,
        m,
    } = job;
    let plane = out_h * out_w * l;
    let block_len = a2 * NT * cin_pad;
    for (tb, vblk) in v.chunks_exact(block_len).enumerate() {
        for b in 0..a2 {
            let ub = &u[b * k_len * rl..][..k_len * rl];
            let vb = &vblk[b * NT * cin_pad..][..NT * cin_pad];
            let mut acc = [[s.zero(); R]; NT];
            for (k, wk) in ub.chunks_exact(rl).enumerate() {
                let w: [S::V; R] = std::array::from_fn(|r| s.load(&wk[r * l..]));
                let kk = k_start + k;
                for (t, acc_t) in acc.iter_mut().enumerate() {
                    let x = s.splat(vb[t * cin_pad + kk]);
                    for r in 0..R {
                        acc_t[r] = s.mul_add(w[r], x, acc_t[r]);
                    }
                }
            }
            for (t, acc_t) in acc.iter().enumerate() {
                for (r, &val) in acc_t.iter().enumerate() {
                    s.store(&mut m[(t * a2 + b) * rl + r * l..], val);
                }
            }
        }
        for t in 0..NT {
            let tile = tb * NT + t;
            if tile >= tiles {
                break;
            }
            let origin = ((tile / tiles_x) * T::M, (tile % tiles_x) * T::M);
            let m_tile = &m[t * a2 * rl..][..a2 * rl];
            for (r, dst) in out.chunks_exact_mut(plane).enumerate() {
                let bias_r = s.load(&bias[r * l..]);
                output_transform_tile::<S, T>(
                    s,
                    &m_tile[r * l..],
                    rl,
                    bias_r,
                    relu,
                    dst,
                    (out_h, out_w),
                    origin,
                );
            }
        }
    }
}

/// `Y = Aᵀ·M·A`, plus bias and ReLU, for one tile and one output vector: `m[b·stride..]` holds
/// the α² transform-domain values; `Y` goes to `dst` (`[out_h][out_w][L]`) at `origin`, clipped.
#[inline(always)]
#[allow(
    clippy::too_many_arguments,
    reason = "an inlined inner body; the caller names each part"
)]
fn output_transform_tile<S: Simd, T: Tile>(
    s: S,
    m: &[f32],
    stride: usize,
    bias: S::V,
    relu: bool,
    dst: &mut [f32],
    (out_h, out_w): (usize, usize),
    (y0, x0): (usize, usize),
) {
    let l = S::LANES;
    let a = T::A;
    // tmp[i][j] = Σ_k Aᵀ[i][k]·M[k][j]   (m × α)
    let mut tmp = [[s.zero(); 8]; 8];
    for j in 0..a {
        let col: [S::V; 8] = std::array::from_fn(|k| {
            if k < a {
                s.load(&m[(k * a + j) * stride..])
            } else {
                s.zero()
            }
        });
        for (i, row) in tmp.iter_mut().enumerate().take(T::M) {
            row[j] = lin_comb(s, &T::AT[i], &col, a);
        }
    }
    // Y[i][j] = Σ_k tmp[i][k]·Aᵀ[j][k]
    for (i, row) in tmp.iter().enumerate().take(T::M.min(out_h - y0)) {
        for j in 0..T::M.min(out_w - x0) {
            let val = epilogue(s, lin_comb(s, &T::AT[j], row, a), bias, relu);
            s.store(&mut dst[((y0 + i) * out_w + x0 + j) * l..], val);
        }
    }
}
