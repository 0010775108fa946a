//! Layout staging: NCHW or NCHWc images into the zero-padded NCHWc buffer the kernels read, and
//! NCHWc results back to NCHW. Plain copies, memory-bound; every element is written once (the
//! halo and padding lanes are zero-filled, the interior copied), and the lane count is a
//! compile-time constant so the copies need no per-element bounds checks.

/// Geometry of a staged image: `[C/L][hp][wp][L]` with the data at row/column offset `pad`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Staged {
    /// Lanes (channel block): 4, 8 or 16.
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

    /// Copies one NCHW image (`src`: `[C][h][w]`) into `dst` (`len()` floats).
    pub fn stage_nchw(&self, src: &[f32], dst: &mut [f32]) {
        with_lanes!(self.lanes, stage_nchw_l(self, src, dst))
    }

    /// Copies one NCHWc image with the same lanes (`src`: `[C/L][h][w][L]`) into `dst`.
    pub fn stage_blocked(&self, src: &[f32], dst: &mut [f32]) {
        let l = self.lanes;
        let row_len = self.w * l;
        for (cb, blk) in dst.chunks_exact_mut(self.hp * self.wp * l).enumerate() {
            for (y, row) in self.rows(blk) {
                row.copy_from_slice(&src[(cb * self.h + y) * row_len..][..row_len]);
            }
        }
    }

    /// Zero-fills the halo of one staged channel block and yields its interior rows
    /// `(y, &mut [w·L])`.
    fn rows<'a>(&self, blk: &'a mut [f32]) -> impl Iterator<Item = (usize, &'a mut [f32])> {
        let l = self.lanes;
        let (top, rest) = blk.split_at_mut(self.pad * self.wp * l);
        top.fill(0.0);
        let (body, bottom) = rest.split_at_mut(self.h * self.wp * l);
        bottom.fill(0.0);
        let (pad, w) = (self.pad, self.w);
        body.chunks_exact_mut(self.wp * l)
            .enumerate()
            .map(move |(y, row)| {
                let (left, rest) = row.split_at_mut(pad * l);
                left.fill(0.0);
                let (interior, right) = rest.split_at_mut(w * l);
                right.fill(0.0);
                (y, interior)
            })
    }
}

fn stage_nchw_l<const L: usize>(st: &Staged, src: &[f32], dst: &mut [f32]) {
    let plane = st.h * st.w;
    for (cb, blk) in dst.chunks_exact_mut(st.hp * st.wp * L).enumerate() {
        let lanes = L.min(st.channels - cb * L);
        for (y, interior) in st.rows(blk) {
            let src_rows: [&[f32]; L] = std::array::from_fn(|lane| {
                if lane < lanes {
                    &src[(cb * L + lane) * plane + y * st.w..][..st.w]
                } else {
                    &[]
                }
            });
            for (x, px) in interior.chunks_exact_mut(L).enumerate() {
                for (lane, value) in px.iter_mut().enumerate() {
                    *value = if lane < lanes { src_rows[lane][x] } else { 0.0 };
                }
            }
        }
    }
}

/// Copies one NCHWc image `[⌈C/L⌉][plane][L]` to NCHW `[C][plane]`.
pub(crate) fn blocked_to_nchw(
    src: &[f32],
    lanes: usize,
    channels: usize,
    plane: usize,
    dst: &mut [f32],
) {
    with_lanes!(lanes, blocked_to_nchw_l(src, channels, plane, dst))
}

fn blocked_to_nchw_l<const L: usize>(src: &[f32], channels: usize, plane: usize, dst: &mut [f32]) {
    for (cb, blk) in src.chunks_exact(plane * L).enumerate() {
        let lanes = L.min(channels - cb * L);
        let planes = &mut dst[cb * L * plane..][..lanes * plane];
        for (lane, d) in planes.chunks_exact_mut(plane).enumerate() {
            for (value, px) in d.iter_mut().zip(blk.as_chunks::<L>().0) {
                *value = px[lane];
            }
        }
    }
}
