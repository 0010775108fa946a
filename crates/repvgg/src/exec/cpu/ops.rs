//! The non-convolution ops of [`super::Cpu`] on NCHWc activations (`lanes` channels per block,
//! padding lanes zero): plain loops over whole channel blocks, written so that LLVM vectorizes
//! the innermost loop over the `lanes` channels of a pixel. Parallel over images × channel
//! blocks (every output element is computed by one thread in a fixed order, so results do not
//! depend on the thread count).
//!
//! No `f32::mul_add` here: without the FMA target feature (these functions are compiled for the
//! baseline ISA) it is a call into the software `fmaf`, ~100x slower than a multiply and an add.
//!
//! Each op keeps the padding lanes zero: its per-channel parameters are zero-padded so that a
//! zero input lane maps to a zero output lane.

use rayon::prelude::*;
use reparam_tensor::Shape;

/// Fewest floats a parallel task gets: below this the split costs more than the work.
const MIN_TASK_FLOATS: usize = 16 * 1024;

/// Chunks of `plane_len` floats (one channel block of one image) per rayon task.
fn planes_per_task(plane_len: usize) -> usize {
    MIN_TASK_FLOATS.div_ceil(plane_len.max(1)).max(1)
}

/// NCHW `[N, C, H, W]` → NCHWc with `lanes` lanes (padding lanes zero); `y` holds
/// `N·⌈C/lanes⌉·H·W·lanes` floats.
pub fn nchw_to_blocked(x: &[f32], shape: Shape, lanes: usize, y: &mut [f32]) {
    let [_, c, h, w] = shape;
    let plane = h * w;
    let blocks = c.div_ceil(lanes);
    for (i, yp) in y.chunks_exact_mut(plane * lanes).enumerate() {
        let (n, b) = (i / blocks, i % blocks);
        yp.fill(0.0);
        for l in 0..lanes.min(c - b * lanes) {
            let src = &x[(n * c + b * lanes + l) * plane..][..plane];
            for (p, &v) in src.iter().enumerate() {
                yp[p * lanes + l] = v;
            }
        }
    }
}

/// NCHWc with `lanes` lanes → NCHW `[N, C, H, W]` (padding lanes dropped).
pub fn blocked_to_nchw(x: &[f32], shape: Shape, lanes: usize, y: &mut [f32]) {
    let [_, c, h, w] = shape;
    let plane = h * w;
    let blocks = c.div_ceil(lanes);
    for (i, xp) in x.chunks_exact(plane * lanes).enumerate() {
        let (n, b) = (i / blocks, i % blocks);
        for l in 0..lanes.min(c - b * lanes) {
            let dst = &mut y[(n * c + b * lanes + l) * plane..][..plane];
            for (p, d) in dst.iter_mut().enumerate() {
                *d = xp[p * lanes + l];
            }
        }
    }
}

/// Per-channel parameters padded to whole channel blocks with `pad`.
pub fn pad_channels(values: impl IntoIterator<Item = f32>, lanes: usize, pad: f32) -> Vec<f32> {
    let mut v: Vec<f32> = values.into_iter().collect();
    v.resize(v.len().div_ceil(lanes) * lanes, pad);
    v
}

/// Calls `f(b, y_plane, x_plane)` for every plane of `plane_len` floats (one channel block of
/// one image) in parallel, with `b` the plane's channel block (its index modulo `blocks`).
fn for_each_plane(
    x: &[f32],
    y: &mut [f32],
    plane_len: usize,
    blocks: usize,
    f: impl Fn(usize, &mut [f32], &[f32]) + Sync + Send,
) {
    y.par_chunks_mut(plane_len)
        .zip(x.par_chunks(plane_len))
        .enumerate()
        .with_min_len(planes_per_task(plane_len))
        .for_each(|(i, (yp, xp))| f(i % blocks, yp, xp));
}

/// `y[n,c,p] = scale[c]·x[n,c,p] + shift[c]` (inference batch norm). `scale` and `shift` hold
/// `blocks·lanes` values, zero beyond the real channels.
pub fn affine(x: &[f32], y: &mut [f32], scale: &[f32], shift: &[f32], plane: usize, lanes: usize) {
    for_each_plane(x, y, plane * lanes, scale.len() / lanes, |b, yp, xp| {
        let (t, s) = (&scale[b * lanes..][..lanes], &shift[b * lanes..][..lanes]);
        for (yv, xv) in yp.chunks_exact_mut(lanes).zip(xp.chunks_exact(lanes)) {
            for l in 0..lanes {
                yv[l] = t[l] * xv[l] + s[l];
            }
        }
    });
}

/// `y[n,c,p] = s[c]·x[n,c,p]` (`s` holds `blocks·lanes` values, zero beyond the channels).
fn scale_channels(x: &[f32], y: &mut [f32], s: &[f32], plane: usize, lanes: usize) {
    for_each_plane(x, y, plane * lanes, s.len() / lanes, |b, yp, xp| {
        let t = &s[b * lanes..][..lanes];
        for (yv, xv) in yp.chunks_exact_mut(lanes).zip(xp.chunks_exact(lanes)) {
            for l in 0..lanes {
                yv[l] = t[l] * xv[l];
            }
        }
    });
}

/// `y = a + b` elementwise.
pub fn add(a: &[f32], b: &[f32], y: &mut [f32]) {
    y.par_chunks_mut(MIN_TASK_FLOATS)
        .zip(
            a.par_chunks(MIN_TASK_FLOATS)
                .zip(b.par_chunks(MIN_TASK_FLOATS)),
        )
        .for_each(|(yc, (ac, bc))| {
            for ((yv, &av), &bv) in yc.iter_mut().zip(ac).zip(bc) {
                *yv = av + bv;
            }
        });
}

/// `y = max(x, 0)` elementwise.
pub fn relu(x: &[f32], y: &mut [f32]) {
    y.par_chunks_mut(MIN_TASK_FLOATS)
        .zip(x.par_chunks(MIN_TASK_FLOATS))
        .for_each(|(yc, xc)| {
            for (yv, &xv) in yc.iter_mut().zip(xc) {
                *yv = xv.max(0.0);
            }
        });
}

/// `y[n,c] = (1/P)·Σ_p x[n,c,p]` over the `plane` pixels, accumulated in pixel order in f32;
/// `y` holds one block of `lanes` per input channel block.
pub fn global_avg_pool(x: &[f32], y: &mut [f32], plane: usize, lanes: usize) {
    let plane_len = plane * lanes;
    let inv = 1.0 / plane as f32;
    y.par_chunks_mut(lanes)
        .zip(x.par_chunks(plane_len))
        .with_min_len(planes_per_task(plane_len))
        .for_each(|(yv, xp)| pool_plane(xp, yv, inv));
}

/// One channel block's mean over its pixels.
fn pool_plane(xp: &[f32], yv: &mut [f32], inv: f32) {
    let lanes = yv.len();
    yv.fill(0.0);
    for xv in xp.chunks_exact(lanes) {
        for l in 0..lanes {
            yv[l] += xv[l];
        }
    }
    for v in yv.iter_mut() {
        *v *= inv;
    }
}

/// A dense layer `y[m] = b[m] + Σ_f W[m,f]·x[f]` on padded rows: `weight` holds `M` rows of
/// `x.len()` floats (zero beyond the real features).
#[derive(Debug)]
pub struct Dense {
    /// `[M, F_pad]`, row-major.
    pub weight: Vec<f32>,
    /// `[M]`.
    pub bias: Vec<f32>,
    /// `F_pad`: the row length.
    pub row: usize,
}

impl Dense {
    /// From a `[M, F]` row-major weight and bias, rows padded to `row >= F` floats.
    pub fn new(weight: &[f32], bias: &[f32], features: usize, row: usize) -> Self {
        let m = bias.len();
        let mut padded = vec![0.0; m * row];
        for (dst, src) in padded
            .chunks_exact_mut(row)
            .zip(weight.chunks_exact(features))
        {
            dst[..features].copy_from_slice(src);
        }
        Self {
            weight: padded,
            bias: bias.to_vec(),
            row,
        }
    }

    /// Output rows.
    pub fn outputs(&self) -> usize {
        self.bias.len()
    }

    /// `y[m] = b[m] + W[m]·x` for every `m` (parallel over rows when `parallel`); `y` holds at
    /// least [`Dense::outputs`] floats, the rest is left as is.
    pub fn apply(&self, x: &[f32], y: &mut [f32], parallel: bool) {
        let m = self.outputs();
        let row = |(yv, (w, &b)): (&mut f32, (&[f32], &f32))| *yv = b + dot(w, x);
        let rows = y[..m]
            .iter_mut()
            .zip(self.weight.chunks_exact(self.row).zip(&self.bias));
        if parallel {
            y[..m]
                .par_iter_mut()
                .zip(self.weight.par_chunks_exact(self.row).zip(&self.bias))
                .with_min_len(32)
                .for_each(row);
        } else {
            rows.for_each(row);
        }
    }
}

/// `Σ a[i]·b[i]` in 16 interleaved partial sums (one vector register's worth), so the loop
/// vectorizes; the summation order is fixed.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    const W: usize = 16;
    let mut acc = [0.0f32; W];
    let (ac, bc) = (a.chunks_exact(W), b.chunks_exact(W));
    let tail: f32 = ac
        .remainder()
        .iter()
        .zip(bc.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ac.zip(bc) {
        for l in 0..W {
            acc[l] += x[l] * y[l];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// Squeeze-excitation on NCHWc: `p = mean x`, `z = ReLU(W_down·p + b_down)`,
/// `s = sigmoid(W_up·z + b_up)`, `y = x·s` per channel; with its per-image buffers.
#[derive(Debug)]
pub struct SqueezeExcite {
    /// `[hidden, C_pad]`.
    pub down: Dense,
    /// `[C, hidden]`.
    pub up: Dense,
    /// Pooled features, `C_pad`.
    pub pooled: Vec<f32>,
    /// Hidden units.
    pub hidden: Vec<f32>,
    /// Per-channel scales, `C_pad` (zero beyond the real channels).
    pub scale: Vec<f32>,
}

impl SqueezeExcite {
    /// Runs on `n` images of `plane` pixels; `x` and `y` are NCHWc with `lanes` lanes.
    pub fn apply(&mut self, x: &[f32], y: &mut [f32], plane: usize, lanes: usize) {
        let image = self.pooled.len() * plane;
        for (xi, yi) in x.chunks_exact(image).zip(y.chunks_exact_mut(image)) {
            global_avg_pool(xi, &mut self.pooled, plane, lanes);
            self.down.apply(&self.pooled, &mut self.hidden, false);
            for h in &mut self.hidden {
                *h = h.max(0.0);
            }
            self.scale.fill(0.0);
            self.up.apply(&self.hidden, &mut self.scale, false);
            let channels = self.up.outputs();
            for s in &mut self.scale[..channels] {
                *s = 1.0 / (1.0 + (-*s).exp());
            }
            scale_channels(xi, yi, &self.scale, plane, lanes);
        }
    }
}
