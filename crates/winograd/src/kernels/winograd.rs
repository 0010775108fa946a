//! Winograd F(m, 3) bodies: input transform, transform-domain GEMM and output transform.
//!
//! Per image, with `T` tiles of `m×m` outputs numbered row-major and grouped into blocks of `NT`:
//! 1. [`input_transform`]: for each tile and channel block, `V = Bᵀ·d·B` on the `α×α` window of
//!    the input; stored as `V[block][b][cb][t][lane]` (`b = i·α + j` indexes the α²
//!    transform-domain positions, input channel `k = cb·L + lane`), so one tile block is one
//!    contiguous chunk and, within a channel block, the block's tiles lie side by side: the GEMM
//!    reads tile t's value at a constant offset `t·L` from one pointer.
//! 2. [`gemm_output`], per output-channel group of `R·L` channels: for each tile block and each
//!    `b`, `M[t][b][oc] = Σ_k U[b][k][oc] · V[b][k][t]` over the group's input range, with the
//!    `R·L` output channels in lanes and each `V` value broadcast; then for each tile
//!    `Y = Aᵀ·M·A`, plus bias, ReLU, stored into the NCHWc output (clipped at the borders).

use super::{Band, LINE_BYTES, epilogue};
use crate::simd::{Simd, Weight};
use crate::transforms::Variant;
use std::marker::PhantomData;

/// A variant's shape and its 1-D transforms, written out with shared subexpressions (the way
/// NNPACK and ncnn write them) so each costs a handful of adds and FMAs. `tests` checks each
/// against the matrices in [`crate::transforms`] by transforming unit impulses.
pub(crate) trait Tile {
    /// Output tile size.
    const M: usize;
    /// Input tile size α.
    const A: usize;
    /// `Bᵀ·d` for one column of α values (the first α entries of the arrays are used).
    fn bt<S: Simd>(s: S, d: [S::V; 8]) -> [S::V; 8];
    /// `Aᵀ·m` for one column of α values; the first m outputs are meaningful.
    fn at<S: Simd>(s: S, m: [S::V; 8]) -> [S::V; 8];
}

/// `a·x + y` with a constant `a`.
#[inline(always)]
fn axpy<S: Simd>(s: S, a: f32, x: S::V, y: S::V) -> S::V {
    s.mul_add(s.splat(a), x, y)
}

/// F(2,3), points {0, ±1, ∞}.
pub(crate) struct F23;
impl Tile for F23 {
    const M: usize = 2;
    const A: usize = 4;
    #[inline(always)]
    fn bt<S: Simd>(s: S, d: [S::V; 8]) -> [S::V; 8] {
        let z = s.zero();
        [
            s.sub(d[0], d[2]),
            s.add(d[1], d[2]),
            s.sub(d[2], d[1]),
            s.sub(d[3], d[1]),
            z,
            z,
            z,
            z,
        ]
    }
    #[inline(always)]
    fn at<S: Simd>(s: S, m: [S::V; 8]) -> [S::V; 8] {
        let z = s.zero();
        [
            s.add(s.add(m[0], m[1]), m[2]),
            s.add(s.sub(m[1], m[2]), m[3]),
            z,
            z,
            z,
            z,
            z,
            z,
        ]
    }
}

/// F(4,3), points {0, ±√2, ±√2/2, ∞}.
pub(crate) struct F43;
impl Tile for F43 {
    const M: usize = 4;
    const A: usize = 6;
    #[inline(always)]
    fn bt<S: Simd>(s: S, d: [S::V; 8]) -> [S::V; 8] {
        const R2: f32 = std::f32::consts::SQRT_2;
        const H: f32 = std::f32::consts::FRAC_1_SQRT_2;
        let z = s.zero();
        // r1, r2 = (d4 − 2·d2) ± (√2/2·d3 − √2·d1); r3, r4 = (d4 − d2/2) ± (√2·d3 − √2/2·d1)
        let t1 = axpy(s, -2.0, d[2], d[4]);
        let t2 = axpy(s, H, d[3], s.mul(s.splat(-R2), d[1]));
        let t3 = axpy(s, -0.5, d[2], d[4]);
        let t4 = axpy(s, R2, d[3], s.mul(s.splat(-H), d[1]));
        [
            s.add(axpy(s, -2.5, d[2], d[0]), d[4]),
            s.add(t1, t2),
            s.sub(t1, t2),
            s.add(t3, t4),
            s.sub(t3, t4),
            s.add(axpy(s, -2.5, d[3], d[1]), d[5]),
            z,
            z,
        ]
    }
    #[inline(always)]
    fn at<S: Simd>(s: S, m: [S::V; 8]) -> [S::V; 8] {
        const R2: f32 = std::f32::consts::SQRT_2;
        const H: f32 = std::f32::consts::FRAC_1_SQRT_2;
        let z = s.zero();
        let (a12, s12) = (s.add(m[1], m[2]), s.sub(m[1], m[2]));
        let (a34, s34) = (s.add(m[3], m[4]), s.sub(m[3], m[4]));
        [
            s.add(s.add(m[0], a12), a34),
            axpy(s, R2, s34, s.mul(s.splat(H), s12)),
            axpy(s, 2.0, a34, s.mul(s.splat(0.5), a12)),
            s.add(axpy(s, 2.0 * R2, s34, s.mul(s.splat(H * 0.5), s12)), m[5]),
            z,
            z,
            z,
            z,
        ]
    }
}

/// F(6,3), points {0, ±1, ±2, ±1/2, ∞}.
pub(crate) struct F63;
impl Tile for F63 {
    const M: usize = 6;
    const A: usize = 8;
    #[inline(always)]
    fn bt<S: Simd>(s: S, d: [S::V; 8]) -> [S::V; 8] {
        // Pairs (even part) ± (odd part), as in NNPACK's f6x6k3x3 input transform.
        let e1 = axpy(s, -4.25, d[4], s.add(d[2], d[6]));
        let o1 = axpy(s, -4.25, d[3], s.add(d[1], d[5]));
        let e2 = axpy(s, -1.25, d[4], axpy(s, 0.25, d[2], d[6]));
        let o2 = axpy(s, 2.0, d[5], axpy(s, -2.5, d[3], s.mul(s.splat(0.5), d[1])));
        let e3 = axpy(s, -5.0, d[4], axpy(s, 4.0, d[2], d[6]));
        let o3 = axpy(s, 0.5, d[5], axpy(s, -2.5, d[3], s.mul(s.splat(2.0), d[1])));
        [
            axpy(s, 5.25, s.sub(d[4], d[2]), s.sub(d[0], d[6])),
            s.add(e1, o1),
            s.sub(e1, o1),
            s.add(e2, o2),
            s.sub(e2, o2),
            s.add(e3, o3),
            s.sub(e3, o3),
            axpy(s, 5.25, s.sub(d[3], d[5]), s.sub(d[7], d[1])),
        ]
    }
    #[inline(always)]
    fn at<S: Simd>(s: S, m: [S::V; 8]) -> [S::V; 8] {
        let z = s.zero();
        let (a12, s12) = (s.add(m[1], m[2]), s.sub(m[1], m[2]));
        let (a34, s34) = (s.add(m[3], m[4]), s.sub(m[3], m[4]));
        let (a56, s56) = (s.add(m[5], m[6]), s.sub(m[5], m[6]));
        [
            axpy(s, 32.0, a56, s.add(s.add(m[0], a12), a34)),
            axpy(s, 16.0, s56, axpy(s, 2.0, s34, s12)),
            axpy(s, 8.0, a56, axpy(s, 4.0, a34, a12)),
            axpy(s, 4.0, s56, axpy(s, 8.0, s34, s12)),
            axpy(s, 2.0, a56, axpy(s, 16.0, a34, a12)),
            s.add(s.add(axpy(s, 32.0, s34, s12), s56), m[7]),
            z,
            z,
        ]
    }
}

/// `[e(0), e(1), …, e(7)]` with `j` bound to each index in `e`, spelled out.
///
/// The 2-D transforms hold their intermediate as eight columns built this way: a
/// zero-initialised `[[V; 8]; 8]` filled in a loop becomes a 4 KiB `memset` call per tile (LLVM
/// recognises the zeroing loop before it unrolls the rest), and closures (`std::array::from_fn`
/// or a local `|j| …`) are not always inlined into the `#[target_feature]` entry point, and
/// outside it every SIMD intrinsic becomes a call.
macro_rules! eight_columns {
    ($j:ident => $e:expr) => {
        [
            {
                let $j = 0;
                $e
            },
            {
                let $j = 1;
                $e
            },
            {
                let $j = 2;
                $e
            },
            {
                let $j = 3;
                $e
            },
            {
                let $j = 4;
                $e
            },
            {
                let $j = 5;
                $e
            },
            {
                let $j = 6;
                $e
            },
            {
                let $j = 7;
                $e
            },
        ]
    };
}

/// Entries `lo..hi` of a column of 8 from `src[first + (k − lo)·step]`, the rest zero.
#[inline(always)]
fn load_column_rows<S: Simd>(
    s: S,
    src: &[f32],
    first: usize,
    step: usize,
    lo: usize,
    hi: usize,
) -> [S::V; 8] {
    let mut col = [s.zero(); 8];
    for (k, c) in col.iter_mut().enumerate() {
        if k >= lo && k < hi {
            *c = s.load(&src[first + (k - lo) * step..]);
        }
    }
    col
}

/// Row `i` of eight columns: `[cols[0][i], …, cols[7][i]]`.
#[inline(always)]
fn transposed_row<V: Copy>(cols: &[[V; 8]; 8], i: usize) -> [V; 8] {
    [
        cols[0][i], cols[1][i], cols[2][i], cols[3][i], cols[4][i], cols[5][i], cols[6][i],
        cols[7][i],
    ]
}

/// What [`input_transform`] reads for one tile block.
pub(crate) struct InputJob<'a> {
    /// The input image `[C_in/L][h][w][L]`, not padded: tile `(ty, tx)` reads rows
    /// `ty·m − 1 .. ty·m − 1 + α` and columns `tx·m − 1 .. tx·m − 1 + α`, and the parts of that
    /// window outside the image (the padding of 1, and past the right and bottom edges) read as
    /// zero.
    pub input: &'a [f32],
    /// Image height.
    pub h: usize,
    /// Image width.
    pub w: usize,
    /// Input channel blocks.
    pub channel_blocks: usize,
    /// Tiles per row.
    pub tiles_x: usize,
    /// Tiles in the image.
    pub tiles: usize,
    /// Index of the block's first tile.
    pub first_tile: usize,
}

/// Transforms one block of `NT` tiles into `v` (`[α²][C_in/L][NT][L]`); tiles past the end of the
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
    let a = T::A;
    // Channel blocks outermost. The stores take a third to over half of this transform's time:
    // with every store aimed at one L1-resident spot (a deliberately wrong-result experiment,
    // GEMM skipped) the transform of 48 channels @56 F(6,3) ran in 0.64x the time, of 192
    // channels @14 F(4,3) in 0.43x. Within a channel block the block's tiles lie side by side,
    // so consecutive tiles fill adjacent cache lines instead of lines a whole `[cb][t]` panel
    // apart. In-process A/B against tiles outermost: 1.02–1.08x on the stride-1 RepVGG layers
    // (1 thread), 1.01–1.12x (2 threads), AVX2 1.00–1.05x.
    for cb in 0..job.channel_blocks {
        for t in 0..NT {
            let tile = job.first_tile + t;
            if tile >= job.tiles {
                for b in 0..a * a {
                    v[((b * job.channel_blocks + cb) * NT + t) * S::LANES..][..S::LANES].fill(0.0);
                }
                continue;
            }
            let (y0, x0) = ((tile / job.tiles_x) * T::M, (tile % job.tiles_x) * T::M);
            // The window's rows and columns y0 − 1 .. y0 − 1 + α, x0 − 1 .. x0 − 1 + α lie
            // inside the image for all but the border tiles, which take the clipping path.
            if y0 >= 1 && x0 >= 1 && y0 - 1 + a <= job.h && x0 - 1 + a <= job.w {
                transform_window::<S, T, NT, false>(s, job, (y0, x0), (t, cb), v);
            } else {
                transform_window::<S, T, NT, true>(s, job, (y0, x0), (t, cb), v);
            }
        }
    }
}

/// `V = Bᵀ·d·B` of tile `t` of the block (window origin `(y0 − 1, x0 − 1)`) for channel block
/// `cb`. With `CLIP`, window rows and columns outside the image read as zero (the convolution's
/// padding); without it the whole window must lie inside the image.
#[inline(always)]
fn transform_window<S: Simd, T: Tile, const NT: usize, const CLIP: bool>(
    s: S,
    job: &InputJob<'_>,
    (y0, x0): (usize, usize),
    (t, cb): (usize, usize),
    v: &mut [f32],
) {
    let l = S::LANES;
    let a = T::A;
    let (h, w) = (job.h, job.w);
    let plane = h * w * l;
    // Window rows `lo..hi` are inside the image (row k is image row y0 − 1 + k).
    let (lo, hi) = if CLIP {
        (usize::from(y0 == 0), a.min(h + 1 - y0))
    } else {
        (0, a)
    };
    // Window column j is inside the image.
    let inside = |j: usize| j < a && (!CLIP || (x0 + j >= 1 && x0 + j <= w));
    let src = &job.input[cb * plane..][..plane];
    // Columns first: cols[j] = Bᵀ·d[·][j]; then rows: V[i][·] = Bᵀ·(cols[·][i]).
    let cols = eight_columns!(j => {
        let col = if inside(j) {
            let first = ((y0 + lo - 1) * w + x0 + j - 1) * l;
            load_column_rows(s, src, first, w * l, lo, hi)
        } else {
            [s.zero(); 8]
        };
        T::bt(s, col)
    });
    for i in 0..a {
        let row = T::bt(s, transposed_row(&cols, i));
        for (j, value) in row.into_iter().enumerate().take(a) {
            let b = i * a + j;
            s.store(
                &mut v[((b * job.channel_blocks + cb) * NT + t) * l..],
                value,
            );
        }
    }
}

/// Register blocks per super-block of the GEMM loop of a single image (see [`gemm_output`]).
pub(crate) const SUPER_BLOCK: usize = 8;

/// How one reduction step of the GEMM register block multiplies: which weights it loads and how
/// many input channels it consumes. [`PerChannel`] (f32 or f16 weights, one input channel per
/// step, one FMA per accumulator) serves every ISA; the AVX512-BF16 token consumes two input
/// channels per step with `vdpbf16ps` on bf16 pairs.
pub(crate) trait Reduction<S: Simd>: Copy {
    /// Input channels one step consumes (1, or 2 for bf16 pairs); a channel block holds
    /// `L / CHANNELS` steps.
    const CHANNELS: usize;
    /// The element of the packed weights: `R·L` of them per step.
    type Weight: Copy + Sync + 'static;
    /// `acc[t] += Σ_c w[c] · x[t][c]` over the step's channels, for the `NT` tiles: `chunk` is
    /// one channel block of the tiles' transformed input (`[t][L / CHANNELS]` elements of
    /// `CHANNELS` values each), `index` the step within it, `wk` its `R·L` weights.
    fn step<const NT: usize, const R: usize>(
        self,
        s: S,
        acc: &mut [[S::V; R]; NT],
        chunk: &[f32],
        index: usize,
        wk: &[Self::Weight],
    );
}

/// One input channel per step, weights of type `W` loaded as f32 vectors (see [`gemm_step`]).
pub(crate) struct PerChannel<W>(PhantomData<W>);

impl<W> Clone for PerChannel<W> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<W> Copy for PerChannel<W> {}

impl<S: Simd, W: Weight> Reduction<S> for PerChannel<W> {
    const CHANNELS: usize = 1;
    type Weight = W;

    #[inline(always)]
    fn step<const NT: usize, const R: usize>(
        self,
        s: S,
        acc: &mut [[S::V; R]; NT],
        chunk: &[f32],
        index: usize,
        wk: &[W],
    ) {
        gemm_step::<S, NT, R, W>(s, acc, chunk, index, wk);
    }
}

/// One output-channel group's share of a Winograd convolution of one image, or of a pass over
/// several small images whose tile blocks form one super-block (weight reuse across images).
pub(crate) struct GemmJob<'a, 'b, W = f32> {
    /// The group's transformed weights `[α²][k_len / C][R·L]` for a reduction of `C` channels
    /// per step (f32, or f16 widened as loaded; for bf16 pairs, channels `2i` and `2i + 1` of
    /// an output channel in the low and high half of one `u32`).
    pub u: &'a [W],
    /// The next group's transformed weights (empty for the last): its first panel is
    /// prefetched while the last position of this group computes.
    pub next_u: &'a [W],
    /// First input channel the group reads.
    pub k_start: usize,
    /// Input channels the group reads.
    pub k_len: usize,
    /// The images' transformed input, `[images][image_blocks][α²][C_in/L][NT][L]`, from tile
    /// block `v_first_block` on (the blocks of the output band at least). For a reduction of
    /// `C` channels per step each block's values are packed `C` to an f32 slot (bf16 pairs)
    /// in the first `1/C` of the block; blocks keep their f32 stride.
    pub v: &'a [f32],
    /// The first tile block `v` holds.
    pub v_first_block: usize,
    /// Tile blocks per image in `v` (`tiles.div_ceil(NT)`; the last is padded with zero tiles).
    pub image_blocks: usize,
    /// `C_in` rounded up to the lane count.
    pub cin_pad: usize,
    /// Tiles per row.
    pub tiles_x: usize,
    /// Tiles in one image.
    pub tiles: usize,
    /// Register blocks per super-block: for each transform-domain position, the weight panel
    /// is read once per super-block.
    pub super_blocks: usize,
    /// The group's bias, `R·L` (zero padded).
    pub bias: &'a [f32],
    /// Apply ReLU.
    pub relu: bool,
    /// Per image, the band of the group's output planes this job computes (`row0` a multiple of
    /// m); with several images every band holds all the rows.
    pub outs: &'b mut [Band<'a>],
    /// Output height.
    pub out_h: usize,
    /// Output width.
    pub out_w: usize,
    /// Scratch for one super-block of GEMM results, `[super_blocks·NT][α²][R·L]`.
    pub m: &'b mut [f32],
}

/// Runs [`GemmJob`] with an `NT`-tile × `R`-vector register block, one input channel per step.
#[inline(always)]
pub(crate) fn gemm_output<S: Simd, const NT: usize, const R: usize, W: Weight>(
    s: S,
    variant: Variant,
    job: GemmJob<'_, '_, W>,
) {
    gemm_output_with::<S, NT, R, PerChannel<W>>(s, PerChannel(PhantomData), variant, job);
}

/// Runs [`GemmJob`] with an `NT`-tile × `R`-vector register block and the reduction `red`.
#[inline(always)]
pub(crate) fn gemm_output_with<S: Simd, const NT: usize, const R: usize, Red: Reduction<S>>(
    s: S,
    red: Red,
    variant: Variant,
    job: GemmJob<'_, '_, Red::Weight>,
) {
    match variant {
        Variant::F23 => gemm_output_tile::<S, F23, NT, R, Red>(s, red, job),
        Variant::F43 => gemm_output_tile::<S, F43, NT, R, Red>(s, red, job),
        Variant::F63 => gemm_output_tile::<S, F63, NT, R, Red>(s, red, job),
    }
}

#[inline(always)]
fn gemm_output_tile<S: Simd, T: Tile, const NT: usize, const R: usize, Red: Reduction<S>>(
    s: S,
    red: Red,
    job: GemmJob<'_, '_, Red::Weight>,
) {
    let l = S::LANES;
    // Input channels per reduction step: a channel block is `l / c` steps, and the packed
    // transformed input and weights hold `c` channels per element.
    let c = Red::CHANNELS;
    let a2 = T::A * T::A;
    let rl = R * l;
    let GemmJob {
        u,
        next_u,
        k_start,
        k_len,
        v,
        v_first_block,
        image_blocks,
        cin_pad,
        tiles_x,
        tiles,
        super_blocks,
        bias,
        relu,
        outs,
        out_h,
        out_w,
        m,
    } = job;
    let block_len = a2 * NT * cin_pad;
    let line = LINE_BYTES / size_of::<Red::Weight>();
    // Rows of one position's weight panel (reduction steps over the group's channels).
    let panel_steps = k_len / c;
    // Tiles are numbered across the images, `image_tiles` per image (the last block of each
    // padded). The bands' tiles, and the register blocks that hold them (a block straddling two
    // bands is computed by both; only its own tiles are stored).
    let image_tiles = image_blocks * NT;
    let (Some(first_out), Some(last_out)) = (outs.first(), outs.last()) else {
        return;
    };
    let first_tile = (first_out.row0 / T::M) * tiles_x;
    let end_tile = (outs.len() - 1) * image_tiles
        + ((last_out.row0 + last_out.rows).div_ceil(T::M) * tiles_x).min(tiles);
    let blocks = first_tile / NT..end_tile.div_ceil(NT);
    let v =
        &v[(blocks.start - v_first_block) * block_len..(blocks.end - v_first_block) * block_len];
    // Super-blocks of `super_blocks` register blocks: for each transform-domain position `b` the
    // group's U[b] (k_len × R·L floats) is loaded into L1 once and used by every tile of the
    // super-block, so at batch 1 (e.g. 16 tiles at 14x14 for F(4,3)) each weight is read once per
    // run instead of once per register block, and a pass over several small images reads it
    // once for all of them.
    for (sb, vsuper) in v.chunks(super_blocks * block_len).enumerate() {
        for b in 0..a2 {
            let ub = &u[b * panel_steps * rl..][..panel_steps * rl];
            // The next position's panel, prefetched into L2 while this panel computes: at
            // batch 1 a panel is used by few tiles, and fetched on demand it arrives in a burst
            // the first register block waits for. One line per reduction step, or, where the
            // super-block has at least two steps per line (`spread`), one per two steps (even
            // lanes): inside a network the weights come from DRAM (A0's 14x14 layers: 5.3 MB
            // each), and one line per 6x2 step (64 B per 6 cycles) asks more than a core's
            // DRAM bandwidth, so the prefetches queue behind each other instead of overlapping
            // the FMAs (`docs/performance.md#spread-weight-prefetch`).
            let next = match u.get((b + 1) * panel_steps * rl..) {
                Some(rest) if !rest.is_empty() => rest,
                _ => next_u,
            };
            let next_lines = next.len().min(panel_steps * rl).div_ceil(line);
            let spread = vsuper.len() / block_len * panel_steps >= 2 * next_lines;
            // Reduction step `step` of the super-block prefetches line `step` (or `step / 2`
            // at even steps where spread; an odd group start skips a line, a hint only).
            for (tb, vblk) in vsuper.chunks_exact(block_len).enumerate() {
                let vb = &vblk[b * NT * cin_pad / c..][..NT * cin_pad / c];
                let first_step = tb * panel_steps;
                let mut acc = [[s.zero(); R]; NT];
                // Per channel block, the NT tiles' L lanes lie side by side (`[cb][t][lane]`):
                // tile t's input channel cb·L + lane is `chunk[t·L + lane]`, a constant offset per
                // tile from one pointer.
                for cb in k_start / l..(k_start + k_len).div_ceil(l) {
                    // Lanes of this channel block inside the group's input range.
                    let lo = k_start.max(cb * l) - cb * l;
                    let hi = (k_start + k_len).min(cb * l + l) - cb * l;
                    let chunk = &vb[cb * NT * l / c..][..NT * l / c];
                    // The block's first step within the group (`lo`, `k_start` and the group's
                    // length are multiples of `c`: the plan checks it for bf16 pairs).
                    let k0 = (cb * l + lo - k_start) / c;
                    let w_block = &ub[k0 * rl..][..(hi - lo) / c * rl];
                    let prefetch = |i: usize| {
                        let step = first_step + k0 + i;
                        let next_line = if spread { step / 2 } else { step };
                        if next_line < next_lines {
                            s.prefetch_l2(next, next_line * line);
                        }
                    };
                    if hi - lo == l {
                        // A whole channel block: `step < L / c` is a constant bound, so the
                        // reads of `chunk` need no bounds checks.
                        for (step, wk) in w_block.chunks_exact(rl).enumerate().take(l / c) {
                            if !spread || step % 2 == 0 {
                                prefetch(step);
                            }
                            red.step::<NT, R>(s, &mut acc, chunk, step, wk);
                        }
                    } else {
                        for (i, wk) in w_block.chunks_exact(rl).enumerate() {
                            if !spread || i % 2 == 0 {
                                prefetch(i);
                            }
                            red.step::<NT, R>(s, &mut acc, chunk, lo / c + i, wk);
                        }
                    }
                }
                for (t, acc_t) in acc.iter().enumerate() {
                    for (r, &val) in acc_t.iter().enumerate() {
                        s.store(&mut m[((tb * NT + t) * a2 + b) * rl + r * l..], val);
                    }
                }
            }
        }
        let sb_first = (blocks.start + sb * super_blocks) * NT;
        let sb_end = (sb_first + super_blocks * NT).min(end_tile);
        for numbered in sb_first.max(first_tile)..sb_end {
            let (image, tile) = (numbered / image_tiles, numbered % image_tiles);
            if tile >= tiles {
                continue;
            }
            let out = &mut outs[image];
            let origin = ((tile / tiles_x) * T::M - out.row0, (tile % tiles_x) * T::M);
            let m_tile = &m[(numbered - sb_first) * a2 * rl..][..a2 * rl];
            let band_h = (out_h - out.row0).min(out.rows);
            for (r, dst) in out.planes.iter_mut().take(out.count).enumerate() {
                let bias_r = s.load(&bias[r * l..]);
                output_transform_tile::<S, T>(
                    s,
                    &m_tile[r * l..],
                    rl,
                    bias_r,
                    relu,
                    dst,
                    (band_h, out_w),
                    origin,
                );
            }
        }
    }
}

/// One reduction step of the GEMM register block: `acc[t] += w · chunk[t·L + lane]` for the
/// `NT` tiles, `w` the `R` weight vectors of input channel `lane` of the chunk's block.
#[inline(always)]
fn gemm_step<S: Simd, const NT: usize, const R: usize, W: Weight>(
    s: S,
    acc: &mut [[S::V; R]; NT],
    chunk: &[f32],
    lane: usize,
    wk: &[W],
) {
    let l = S::LANES;
    let w: [S::V; R] = std::array::from_fn(|r| W::load(s, &wk[r * l..]));
    for (t, acc_t) in acc.iter_mut().enumerate() {
        let x = s.splat(chunk[t * l + lane]);
        for r in 0..R {
            acc_t[r] = s.mul_add(w[r], x, acc_t[r]);
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
    // Columns first: cols[j] = Aᵀ·M[·][j]; then rows: Y[i][·] = Aᵀ·(cols[·][i]).
    let cols = eight_columns!(j => {
        let len = if j < a { a } else { 0 };
        T::at(s, load_column_rows(s, m, j * stride, a * stride, 0, len))
    });
    for i in 0..T::M.min(out_h - y0) {
        let y_row = T::at(s, transposed_row(&cols, i));
        for (j, &value) in y_row.iter().enumerate().take(T::M.min(out_w - x0)) {
            let val = epilogue(s, value, bias, relu);
            s.store(&mut dst[((y0 + i) * out_w + x0 + j) * l..], val);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::scalar::Scalar;
    use crate::transforms::Variant;

    /// Feeds unit impulses through the written-out 1-D transforms and compares with the matrices
    /// of [`crate::transforms`] (documented there): column `k` of Bᵀ and Aᵀ.
    fn check<T: Tile>(variant: Variant) {
        let mat = variant.matrices();
        assert_eq!((T::M, T::A), (mat.m, mat.alpha));
        let s = Scalar;
        for k in 0..T::A {
            let e: [[f32; 4]; 8] = std::array::from_fn(|i| [if i == k { 1.0 } else { 0.0 }; 4]);
            let bt = T::bt(s, e);
            let at = T::at(s, e);
            for (i, got) in bt.iter().enumerate().take(T::A) {
                let want = mat.bt[i][k] as f32;
                assert!(
                    (got[0] - want).abs() <= 1e-6,
                    "{variant:?} Bᵀ[{i}][{k}]: {} vs {want}",
                    got[0]
                );
            }
            for (i, got) in at.iter().enumerate().take(T::M) {
                let want = mat.at[i][k] as f32;
                assert!(
                    (got[0] - want).abs() <= 1e-6,
                    "{variant:?} Aᵀ[{i}][{k}]: {} vs {want}",
                    got[0]
                );
            }
        }
    }

    #[test]
    fn written_out_transforms_match_the_matrices() {
        check::<F23>(Variant::F23);
        check::<F43>(Variant::F43);
        check::<F63>(Variant::F63);
    }
}
