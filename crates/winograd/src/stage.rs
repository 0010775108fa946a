//! Layout staging: NCHW or NCHWc images into the zero-padded NCHWc buffer the kernels read, and
//! NCHWc results back to NCHW. Plain copies, memory-bound; every element is written once (the
//! halo and padding lanes are zero-filled, the interior copied), and the lane count is a
//! compile-time constant so the copies need no per-element bounds checks.

use rayon::prelude::*;

/// Geometry of a staged image: `[C/L][hp][wp][L]` with the data at row/column offset `pad`.
/// Winograd plans stage with `pad = 0` (an NCHW input converted to NCHWc; a blocked input is not
/// staged at all).
///
/// `L` is the channel block (4, 8 or 16), except for the *compact* staging of a layer with fewer
/// input channels than a block (the RGB first layer): then `L = C`, one block `[hp][wp][C]`
/// without padding lanes. The first layer then reads 3 floats per pixel instead of a 16-lane
/// block, and staging writes 5.3x less (the staged RGB image of a 224x224 input is 613 KB and
/// stays in L2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Staged {
    /// Floats per staged pixel: the channel block (4, 8 or 16), or `channels` when compact.
    pub lanes: usize,
    /// Channels.
    pub channels: usize,
    /// Source height and width.
    pub h: usize,
    /// Source width.
    pub w: usize,
    /// Staged height (≥ h + 2·pad).
    pub hp: usize,
    /// Staged width (≥ w + 2·pad).
    pub wp: usize,
    /// Top/left zero padding.
    pub pad: usize,
}

/// Calls `$f::<L>(args)` for the runtime lane count.
macro_rules! with_lanes {
    ($lanes:expr, $f:ident($($arg:expr),*)) => {
        match $lanes {
            4 => $f::<4>($($arg),*),
            8 => $f::<8>($($arg),*),
            _ => $f::<16>($($arg),*),
        }
    };
}

impl Staged {
    /// Floats in one staged image.
    pub fn len(&self) -> usize {
        self.channels.div_ceil(self.lanes) * self.hp * self.wp * self.lanes
    }

    /// Copies one NCHW image (`src`: `[C][h][w]`) into `dst` (`len()` floats), rows in parallel
    /// when `parallel`. A compact staging of 4 or 8 channels is the same layout as one 4- or
    /// 8-lane block.
    pub fn stage_nchw(&self, src: &[f32], dst: &mut [f32], parallel: bool) {
        match self.lanes {
            4 | 8 | 16 => with_lanes!(self.lanes, stage_nchw_l(self, src, dst, parallel)),
            // Compact: interleave the channels' rows pixel by pixel.
            _ => self.fill_rows(dst, parallel, &|_, y, interior| {
                self.compact_row(src, y, interior);
            }),
        }
    }

    /// Staged rows `first .. first + rows` (padded coordinates) of the compact staging of the
    /// NCHW image `src`, into `dst` (`rows·wp·C` floats; rows past the staging are zero). The
    /// first layer stages one chunk of rows right before it convolves them, so the staged rows
    /// are still in cache when the kernel reads them.
    pub fn stage_nchw_rows(&self, src: &[f32], dst: &mut [f32], first: usize, rows: usize) {
        let c = self.channels;
        debug_assert_eq!(self.lanes, c, "compact staging only");
        for (i, row) in dst[..rows * self.wp * c]
            .chunks_exact_mut(self.wp * c)
            .enumerate()
        {
            self.staged_row(row, first + i, |y, interior| {
                self.compact_row(src, y, interior);
            });
        }
    }

    /// Writes staged row `yy` (`wp·L` floats): zero above and below the image, else the left
    /// halo, the interior from `fill(y = yy − pad, interior)` and the right margin.
    fn staged_row(&self, row: &mut [f32], yy: usize, fill: impl FnOnce(usize, &mut [f32])) {
        let (l, pad) = (self.lanes, self.pad);
        if yy < pad || yy >= pad + self.h {
            row.fill(0.0);
            return;
        }
        let (left, rest) = row.split_at_mut(pad * l);
        left.fill(0.0);
        let (interior, right) = rest.split_at_mut(self.w * l);
        right.fill(0.0);
        fill(yy - pad, interior);
    }

    /// Image row `y` of the NCHW image `src` interleaved pixel by pixel into `interior` (`w·C`
    /// floats): the compact staging's row.
    fn compact_row(&self, src: &[f32], y: usize, interior: &mut [f32]) {
        let (c, plane, w) = (self.channels, self.h * self.w, self.w);
        if c == 3 {
            let rows: [&[f32]; 3] = std::array::from_fn(|ch| &src[ch * plane + y * w..][..w]);
            // Constant-length pixels and rows of exactly `w`: no bounds checks (RGB).
            for (x, px) in interior
                .as_chunks_mut::<3>()
                .0
                .iter_mut()
                .enumerate()
                .take(w)
            {
                *px = [rows[0][x], rows[1][x], rows[2][x]];
            }
        } else {
            for (x, px) in interior.chunks_exact_mut(c).enumerate() {
                for (ch, value) in px.iter_mut().enumerate() {
                    *value = src[ch * plane + y * w + x];
                }
            }
        }
    }

    /// Copies one NCHWc image with `src_lanes` lanes (`src`: `[C/L][h][w][L]`) into `dst`,
    /// rows in parallel when `parallel`: row copies when the staged layout has the same lanes,
    /// else (compact: `C` < `src_lanes`, one source block) the first `C` lanes of each pixel.
    pub fn stage_blocked(&self, src: &[f32], src_lanes: usize, dst: &mut [f32], parallel: bool) {
        let row_len = self.w * src_lanes;
        if self.lanes == src_lanes {
            let h = self.h;
            self.fill_rows(dst, parallel, &|cb, y, interior| {
                interior.copy_from_slice(&src[(cb * h + y) * row_len..][..row_len]);
            });
            return;
        }
        let c = self.channels;
        self.fill_rows(dst, parallel, &|_, y, interior| {
            let src_row = &src[y * row_len..][..row_len];
            let pixels = interior
                .chunks_exact_mut(c)
                .zip(src_row.chunks_exact(src_lanes));
            // A constant length for RGB, so the copy is three moves, not a `memcpy` call.
            if c == 3 {
                for (px, s) in pixels {
                    px.copy_from_slice(&s[..3]);
                }
            } else {
                for (px, s) in pixels {
                    for (d, v) in px.iter_mut().zip(s) {
                        *d = *v;
                    }
                }
            }
        });
    }

    /// Zero-fills the halo of every staged channel block of `dst` and calls
    /// `fill(block, y, interior row)` for each interior row (`w·L` floats). With `parallel`, the
    /// rows of all blocks form one parallel loop (one fork-join per staging, not one per
    /// channel block: at 14x14 a layer with 256 channels would otherwise pay 16 of them).
    /// Every element of the staged image is written once.
    fn fill_rows(
        &self,
        dst: &mut [f32],
        parallel: bool,
        fill: &(dyn Fn(usize, usize, &mut [f32]) + Sync),
    ) {
        let (l, hp, wp) = (self.lanes, self.hp, self.wp);
        let row = |(i, row): (usize, &mut [f32])| {
            let (cb, yy) = (i / hp, i % hp);
            self.staged_row(row, yy, |y, interior| fill(cb, y, interior));
        };
        let rows = &mut dst[..self.len()];
        if parallel {
            rows.par_chunks_exact_mut(wp * l).enumerate().for_each(row);
        } else {
            rows.chunks_exact_mut(wp * l).enumerate().for_each(row);
        }
    }
}

fn stage_nchw_l<const L: usize>(st: &Staged, src: &[f32], dst: &mut [f32], parallel: bool) {
    let (plane, w, channels) = (st.h * st.w, st.w, st.channels);
    st.fill_rows(dst, parallel, &|cb, y, interior| {
        let lanes = L.min(channels - cb * L);
        let src_rows: [&[f32]; L] = std::array::from_fn(|lane| {
            if lane < lanes {
                &src[(cb * L + lane) * plane + y * w..][..w]
            } else {
                &[]
            }
        });
        for (x, px) in interior.chunks_exact_mut(L).enumerate() {
            for (lane, value) in px.iter_mut().enumerate() {
                *value = if lane < lanes { src_rows[lane][x] } else { 0.0 };
            }
        }
    });
}

/// Copies one NCHWc image `[⌈C/L⌉][plane][L]` to NCHW `[C][plane]`, channel blocks in parallel
/// when `parallel`.
pub(crate) fn blocked_to_nchw(
    src: &[f32],
    lanes: usize,
    channels: usize,
    plane: usize,
    dst: &mut [f32],
    parallel: bool,
) {
    with_lanes!(
        lanes,
        blocked_to_nchw_l(src, channels, plane, dst, parallel)
    )
}

fn blocked_to_nchw_l<const L: usize>(
    src: &[f32],
    channels: usize,
    plane: usize,
    dst: &mut [f32],
    parallel: bool,
) {
    // One channel block: its (up to) L planes from the block's interleaved lanes.
    let block = |(planes, blk): (&mut [f32], &[f32])| {
        for (lane, d) in planes.chunks_exact_mut(plane).enumerate() {
            for (value, px) in d.iter_mut().zip(blk.as_chunks::<L>().0) {
                *value = px[lane];
            }
        }
    };
    let dst = &mut dst[..channels * plane];
    let src = &src[..channels.div_ceil(L) * plane * L];
    if parallel {
        dst.par_chunks_mut(L * plane)
            .zip(src.par_chunks_exact(plane * L))
            .for_each(block);
    } else {
        dst.chunks_mut(L * plane)
            .zip(src.chunks_exact(plane * L))
            .for_each(block);
    }
}
