//! Layout staging: NCHW or NCHWc images into the zero-padded NCHWc buffer the kernels read, and
//! NCHWc results back to NCHW. Plain copies; memory-bound and cheap next to the convolution.

/// Geometry of a staged image: `[C/L][hp][wp][L]` with the data at row/column offset `pad`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Staged {
    /// Lanes (channel block).
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

impl Staged {
    /// Floats in one staged image.
    pub fn len(&self) -> usize {
        self.channels.div_ceil(self.lanes) * self.hp * self.wp * self.lanes
    }

    /// Copies one NCHW image (`src`: `[C][h][w]`) into `dst` (`len()` floats), zeroing the rest.
    pub fn stage_nchw(&self, src: &[f32], dst: &mut [f32]) {
        let l = self.lanes;
        dst.fill(0.0);
        for c in 0..self.channels {
            let plane = &src[c * self.h * self.w..][..self.h * self.w];
            let base = (c / l) * self.hp * self.wp * l + c % l;
            for (y, row) in plane.chunks_exact(self.w).enumerate() {
                let row_base = base + ((y + self.pad) * self.wp + self.pad) * l;
                for (x, &v) in row.iter().enumerate() {
                    dst[row_base + x * l] = v;
                }
            }
        }
    }

    /// Copies one NCHWc image with the same lanes (`src`: `[C/L][h][w][L]`) into `dst`.
    pub fn stage_blocked(&self, src: &[f32], dst: &mut [f32]) {
        let l = self.lanes;
        dst.fill(0.0);
        let row_len = self.w * l;
        for cb in 0..self.channels.div_ceil(l) {
            for y in 0..self.h {
                let s = &src[(cb * self.h + y) * row_len..][..row_len];
                let d = ((cb * self.hp + y + self.pad) * self.wp + self.pad) * l;
                dst[d..d + row_len].copy_from_slice(s);
            }
        }
    }
}

/// Copies one NCHWc image `[⌈C/L⌉][h][w][L]` to NCHW `[C][h][w]`.
pub(crate) fn blocked_to_nchw(
    src: &[f32],
    lanes: usize,
    channels: usize,
    plane: usize,
    dst: &mut [f32],
) {
    for c in 0..channels {
        let base = (c / lanes) * plane * lanes + c % lanes;
        for (p, d) in dst[c * plane..][..plane].iter_mut().enumerate() {
            *d = src[base + p * lanes];
        }
    }
}
