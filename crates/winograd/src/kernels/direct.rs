//! Direct convolution body (kernel 1 or 3, any stride and padding) on the staged NCHWc input.
//!
//! For an output-channel group of `R·L` channels (in lanes) and a run of `NT` consecutive output
//! pixels `p0 + t` in row-major order (a run may wrap to the next row, so a 7x7 output with
//! `NT = 7` wastes no column):
//!
//! ```text
//! acc[t][oc] = Σ_{c ∈ group's inputs} Σ_{u,v < K} W[c][u][v][oc] · X[c][y_t·s + u][x_t·s + v]
//! ```
//!
//! with `(y_t, x_t)` the coordinates of pixel `p0 + t`, every `X` value broadcast and the weights
//! loaded as `R` vectors. The staging added the zero padding; the pixels of the last run past
//! the end of the band read the band's last pixel again and are not stored. The same body serves
//! the 3-channel first layer (`K·K·3 = 27` reductions) and 1x1 convolutions (`K = 1`).

use super::{Band, LINE_FLOATS, epilogue};
use crate::simd::Simd;

/// One output-channel group's share of a direct convolution of one image.
pub(crate) struct DirectJob<'a> {
    /// The group's packed weights `[u][v][c][R·L]` for its `c_len` input channels.
    pub w: &'a [f32],
    /// The next group's weights (empty for the last): prefetched into L2 while this group
    /// computes, so a layer whose weights come from L3 (192→1280: 8.8 MB) does not wait for
    /// each group's first pixel block to fetch them on demand.
    pub next_w: &'a [f32],
    /// First input channel the group reads.
    pub c_start: usize,
    /// Input channels the group reads.
    pub c_len: usize,
    /// Input image `[C_in/P][hp][wp][P]`: for [`first_layer`] the staging with its zero
    /// padding; for the general body the unpadded NCHWc image (`pad` below is applied by
    /// reading taps outside it as zero).
    pub input: &'a [f32],
    /// Floats per staged pixel `P`: the lane count `L`, or the channel count of a compact
    /// staging (fewer channels than `L`; only the first-layer body reads those).
    pub pitch: usize,
    /// Staged height.
    pub hp: usize,
    /// Staged width.
    pub wp: usize,
    /// Zero padding the kernel applies itself (0 when the staging holds it).
    pub pad: usize,
    /// Stride.
    pub stride: usize,
    /// The group's bias, `R·L` (zero padded).
    pub bias: &'a [f32],
    /// Apply ReLU.
    pub relu: bool,
    /// The band of the group's output planes this job computes.
    pub out: Band<'a>,
    /// Output width.
    pub out_w: usize,
}

/// Runs a [`DirectJob`] with kernel size `kernel` (1 or 3).
#[inline(always)]
pub(crate) fn direct<S: Simd, const NT: usize, const R: usize>(
    s: S,
    kernel: usize,
    job: DirectJob<'_>,
) {
    let p = job.pitch;
    let single_block = job.c_start / p == (job.c_start + job.c_len - 1) / p;
    // The first-layer body and the unclipped general body read a staging that holds the
    // padding; the clipped one applies it itself.
    match (kernel, single_block, job.pad > 0) {
        (1, _, false) => direct_k::<S, 1, NT, R, false>(s, job),
        (1, _, true) => direct_k::<S, 1, NT, R, true>(s, job),
        (_, true, false) => first_layer::<S, NT, R>(s, job),
        (_, _, false) => direct_k::<S, 3, NT, R, false>(s, job),
        (_, _, true) => direct_k::<S, 3, NT, R, true>(s, job),
    }
}

/// 3x3 direct convolution for a group whose inputs fit in one channel block — the RGB first
/// layer above all (`K = 27`). Per kernel row `u` it takes, for each pixel, one window covering
/// the 3 taps × L lanes, then runs the `3 × c_len` reductions from it; the general body would
/// recompute the windows per tap and per channel block.
// `first_layer` and `direct_k` each spell out the pixel-run loop and `store_block` call
// instead of sharing a driver that takes the reduction as a closure: closures are not
// `#[inline(always)]`, so the reduction would be outlined from the `#[target_feature]` entry point,
// compiled without the ISA's features, and its accumulators spilled (tried and measured in the
// disassembly).
#[inline(always)]
fn first_layer<S: Simd, const NT: usize, const R: usize>(s: S, job: DirectJob<'_>) {
    const K: usize = 3;
    let l = S::LANES;
    let rl = R * l;
    let DirectJob {
        w,
        next_w: _,
        c_start,
        c_len,
        input,
        pitch,
        hp,
        wp,
        pad,
        stride,
        bias,
        relu,
        mut out,
        out_w,
    } = job;
    debug_assert_eq!(pad, 0, "the first-layer body reads a padded staging");
    let w = &w[..K * K * c_len * rl];
    let bias_v: [S::V; R] = std::array::from_fn(|r| s.load(&bias[r * l..]));
    let lo = c_start % pitch;
    let block_base = (c_start / pitch) * hp * wp * pitch;
    let (first, end) = (out.row0 * out_w, (out.row0 + out.rows) * out_w);
    for p0 in (first..end).step_by(NT) {
        // Each pixel's top-left tap in the (padded) staging.
        let origins = run_corners::<NT>(p0, end, out_w, stride).map(|(y, x)| (y * wp + x) * pitch);
        let mut acc = [[s.zero(); R]; NT];
        for u in 0..K {
            let row_base = block_base + u * wp * pitch + lo;
            let windows: [&[f32]; NT] =
                std::array::from_fn(|t| &input[row_base + origins[t]..][..(K - 1) * pitch + c_len]);
            for v in 0..K {
                let w_tap = &w[(u * K + v) * c_len * rl..][..c_len * rl];
                for (c, wk) in w_tap.chunks_exact(rl).enumerate() {
                    rank1_update(s, &mut acc, wk, &windows, v * pitch + c);
                }
            }
        }
        store_block(
            s,
            &acc,
            &bias_v,
            relu,
            &mut out,
            (p0 - first) * l,
            NT.min(end - p0),
        );
    }
}

/// One reduction step of a register block, the rank-1 update
/// `acc[t][r] += w[r] · inputs[t][at]` for the `NT` pixels `t` and the `R` weight vectors
/// `w[r] = wk[r·L .. (r + 1)·L]` of one input channel (each pixel's input value broadcast to
/// every lane). No closure for the input: see the note above [`first_layer`].
#[inline(always)]
fn rank1_update<S: Simd, const NT: usize, const R: usize>(
    s: S,
    acc: &mut [[S::V; R]; NT],
    wk: &[f32],
    inputs: &[&[f32]; NT],
    at: usize,
) {
    let l = S::LANES;
    let wv: [S::V; R] = std::array::from_fn(|r| s.load(&wk[r * l..]));
    for (acc_t, input) in acc.iter_mut().zip(inputs) {
        let x = s.splat(input[at]);
        for r in 0..R {
            acc_t[r] = s.mul_add(wv[r], x, acc_t[r]);
        }
    }
}

/// The window corners `(y·stride, x·stride)` (padded coordinates) of the `NT` pixels `p0 ..` of
/// a run; pixels at or past `end` repeat pixel `end − 1`.
#[inline(always)]
fn run_corners<const NT: usize>(
    p0: usize,
    end: usize,
    out_w: usize,
    stride: usize,
) -> [(usize, usize); NT] {
    let (mut y, mut x) = (p0 / out_w, p0 % out_w);
    let mut corners = [(0, 0); NT];
    for (t, corner) in corners.iter_mut().enumerate() {
        *corner = (y * stride, x * stride);
        if p0 + t + 1 < end {
            x += 1;
            if x == out_w {
                x = 0;
                y += 1;
            }
        }
    }
    corners
}

/// What a tap in the padding reads: one pixel of zeros (the widest lane count).
static ZERO_PIXEL: [f32; 16] = [0.0; 16];

/// Stores the first `valid` columns of a register block (+ bias, ReLU) into the band's planes,
/// starting at element `offset` of each.
#[inline(always)]
#[allow(
    clippy::too_many_arguments,
    reason = "an inlined inner body; the caller names each part"
)]
fn store_block<S: Simd, const NT: usize, const R: usize>(
    s: S,
    acc: &[[S::V; R]; NT],
    bias: &[S::V; R],
    relu: bool,
    out: &mut Band<'_>,
    offset: usize,
    valid: usize,
) {
    const {
        assert!(
            R <= 4,
            "a band holds at most 4 planes (one output-channel group)"
        )
    };
    let l = S::LANES;
    // The accumulators stay in registers only while every index into `acc` is a constant, i.e.
    // while LLVM fully unrolls the loops over it; a runtime index makes it keep `acc` in memory
    // and store every accumulator after each FMA of the reduction. A whole block therefore
    // stores through one slice of `NT·L` floats per plane (no bounds check per pixel, so the
    // loop stays within LLVM's unrolling budget even at 6 pixels × 4 vectors, where the
    // per-pixel form did not and ran the RGB first layer at half speed); the last, partial
    // block of a band copies the accumulators out first and stores from the copy.
    if valid == NT {
        for (r, plane) in out.planes.iter_mut().enumerate().take(R) {
            if r >= out.count {
                break;
            }
            for (t, px) in plane[offset..][..NT * l].chunks_exact_mut(l).enumerate() {
                s.store(px, epilogue(s, acc[t][r], bias[r], relu));
            }
        }
    } else {
        let partial = *acc;
        for (t, acc_t) in partial.iter().enumerate().take(valid) {
            for (r, &value) in acc_t.iter().enumerate().take(out.count) {
                s.store(
                    &mut out.planes[r][offset + t * l..],
                    epilogue(s, value, bias[r], relu),
                );
            }
        }
    }
}

/// The general body. With `CLIP`, taps outside the `hp × wp` image read as zero (the job's
/// `pad`); without it the image is a staging that holds the padding (`pad` = 0).
#[inline(always)]
fn direct_k<S: Simd, const K: usize, const NT: usize, const R: usize, const CLIP: bool>(
    s: S,
    job: DirectJob<'_>,
) {
    let l = S::LANES;
    let rl = R * l;
    let DirectJob {
        w,
        next_w,
        c_start,
        c_len,
        input,
        pitch,
        hp,
        wp,
        pad,
        stride,
        bias,
        relu,
        mut out,
        out_w,
    } = job;
    debug_assert_eq!(pitch, l, "only the first-layer body reads compact staging");
    let w = &w[..K * K * c_len * rl];
    let bias_v: [S::V; R] = std::array::from_fn(|r| s.load(&bias[r * l..]));
    let plane_in = hp * wp * l;
    let (first_block, last_block) = (c_start / l, (c_start + c_len - 1) / l);
    let whole_blocks = c_start % l == 0 && c_len % l == 0;
    // Run `pb` prefetches lines `pb·K²·c_len ..` of the next group's weights, one per reduction
    // step, until all are requested.
    let steps = K * K * c_len;
    let next_lines = next_w.len().div_ceil(LINE_FLOATS);
    let (first, end) = (out.row0 * out_w, (out.row0 + out.rows) * out_w);
    for (pb, p0) in (first..end).step_by(NT).enumerate() {
        // Each pixel's window origin (row, column) in padded coordinates.
        let corners = run_corners::<NT>(p0, end, out_w, stride);
        let mut acc = [[s.zero(); R]; NT];
        let first_line = pb * steps;
        let prefetch_steps = next_lines.saturating_sub(first_line).min(steps);
        for u in 0..K {
            for v in 0..K {
                let tap = u * K + v;
                let w_tap = &w[tap * c_len * rl..][..c_len * rl];
                // Each pixel's offset at this tap, and whether the tap is inside the image
                // (else it falls in the padding and reads as zero).
                let mut offsets = [0; NT];
                let mut inside = [true; NT];
                for t in 0..NT {
                    let (ry, rx) = (corners[t].0 + u, corners[t].1 + v);
                    if CLIP {
                        inside[t] = ry >= pad && ry < hp + pad && rx >= pad && rx < wp + pad;
                    }
                    if inside[t] {
                        offsets[t] = ((ry - pad) * wp + rx - pad) * l;
                    }
                }
                let all_inside = !CLIP || inside.iter().all(|&i| i);
                if all_inside && whole_blocks {
                    // The common case, as its own loop: every pixel of the run inside the image
                    // and every channel block wholly the group's, so the lane loop has the
                    // constant trip count `L`, reads each pixel through a window LLVM knows is
                    // `L` long (no per-lane bounds or padding checks) and issues this block's
                    // prefetches ahead of it instead of testing for one per lane.
                    for cb in first_block..=last_block {
                        let block = &input[cb * plane_in..][..plane_in];
                        let pixels: [&[f32]; NT] =
                            std::array::from_fn(|t| &block[offsets[t]..][..l]);
                        let w_block = &w_tap[(cb - first_block) * l * rl..][..l * rl];
                        let step0 = tap * c_len + (cb - first_block) * l;
                        for i in 0..prefetch_steps.saturating_sub(step0).min(l) {
                            s.prefetch_l2(next_w, (first_line + step0 + i) * LINE_FLOATS);
                        }
                        for lane in 0..l {
                            let wk = &w_block[lane * rl..][..rl];
                            rank1_update(s, &mut acc, wk, &pixels, lane);
                        }
                    }
                    continue;
                }
                for cb in first_block..=last_block {
                    // Lanes of this channel block inside the group's input range.
                    let lo = c_start.max(cb * l) - cb * l;
                    let hi = (c_start + c_len).min(cb * l + l) - cb * l;
                    let block = &input[cb * plane_in..][..plane_in];
                    // Each pixel's L channels at this tap (a zero block in the padding):
                    // fixed-length windows, so the lane loop needs no bounds checks.
                    let pixels: [&[f32]; NT] = if all_inside {
                        std::array::from_fn(|t| &block[offsets[t]..][..l])
                    } else {
                        std::array::from_fn(|t| {
                            if inside[t] {
                                &block[offsets[t]..][..l]
                            } else {
                                &ZERO_PIXEL[..l]
                            }
                        })
                    };
                    let w_block = &w_tap[(cb * l + lo - c_start) * rl..][..(hi - lo) * rl];
                    let step0 = tap * c_len + cb * l + lo - c_start;
                    for (i, (lane, wk)) in (lo..hi).zip(w_block.chunks_exact(rl)).enumerate() {
                        if step0 + i < prefetch_steps {
                            s.prefetch_l2(next_w, (first_line + step0 + i) * LINE_FLOATS);
                        }
                        rank1_update(s, &mut acc, wk, &pixels, lane);
                    }
                }
            }
        }
        store_block(
            s,
            &acc,
            &bias_v,
            relu,
            &mut out,
            (p0 - first) * l,
            NT.min(end - p0),
        );
    }
}
