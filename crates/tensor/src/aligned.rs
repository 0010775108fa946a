//! [`AlignedVec`]: `f32` storage that starts on a cache-line boundary.
//!
//! A 64-byte vector load or store whose address is not a multiple of 64 touches two cache lines.
//! The system allocator aligns large blocks to 16 bytes only, so an AVX-512 kernel reading a plain
//! `Vec<f32>` splits every access; storage that kernels stream (NCHWc tensors, packed weights,
//! scratch) is kept in this type instead. 64 bytes also covers AVX2 (32) and NEON (16).

use bytemuck::{Pod, Zeroable};
use std::fmt;
use std::ops::{Deref, DerefMut};

/// Alignment of [`AlignedVec`] data in bytes: one cache line, one AVX-512 register.
pub const ALIGN_BYTES: usize = 64;

/// `f32`s per [`ALIGN_BYTES`].
pub const ALIGN_FLOATS: usize = ALIGN_BYTES / size_of::<f32>();

/// One cache line of `f32`s; a `Vec` of these is aligned by its element type.
#[repr(C, align(64))]
#[derive(Clone, Copy, PartialEq, Pod, Zeroable)]
struct CacheLine([f32; ALIGN_FLOATS]);

/// A fixed-length `f32` buffer whose first element is [`ALIGN_BYTES`]-aligned. Dereferences to
/// `[f32]`; the unused lanes of its last cache line are zero and never visible.
#[derive(Clone, PartialEq, Default)]
pub struct AlignedVec {
    lines: Vec<CacheLine>,
    len: usize,
}

impl AlignedVec {
    /// `len` zeros.
    pub fn zeros(len: usize) -> Self {
        Self {
            lines: vec![CacheLine::zeroed(); len.div_ceil(ALIGN_FLOATS)],
            len,
        }
    }

    /// A copy of `values`.
    pub fn from_slice(values: &[f32]) -> Self {
        let mut v = Self::zeros(values.len());
        v.copy_from_slice(values);
        v
    }
}

impl Deref for AlignedVec {
    type Target = [f32];
    fn deref(&self) -> &[f32] {
        &bytemuck::cast_slice(&self.lines)[..self.len]
    }
}

impl DerefMut for AlignedVec {
    fn deref_mut(&mut self) -> &mut [f32] {
        &mut bytemuck::cast_slice_mut(&mut self.lines)[..self.len]
    }
}

impl fmt::Debug for AlignedVec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_is_cache_line_aligned_at_every_length_and_after_clone() {
        for len in [0, 1, 15, 16, 17, 1000, 100_003] {
            let v = AlignedVec::from_slice(&(0..len).map(|i| i as f32).collect::<Vec<_>>());
            let c = v.clone();
            for buf in [&v, &c] {
                assert_eq!(buf.len(), len);
                assert_eq!(buf.as_ptr() as usize % ALIGN_BYTES, 0, "len {len}");
                assert!(buf.iter().enumerate().all(|(i, &x)| x == i as f32));
            }
            assert_eq!(v, c);
        }
    }

    #[test]
    fn zeros_is_zero_and_writes_stay_in_bounds() {
        let mut v = AlignedVec::zeros(17);
        assert!(v.iter().all(|&x| x == 0.0));
        v[16] = 3.0;
        assert_eq!(v.len(), 17);
        assert_eq!(v[16], 3.0);
        assert_eq!(
            format!("{:?}", AlignedVec::from_slice(&[1.0, 2.0])),
            "[1.0, 2.0]"
        );
    }
}
