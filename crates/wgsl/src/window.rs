//! Splitting work so every storage binding fits the device: a tensor larger than
//! `max_storage_buffer_binding_size` is processed in chunks of whole images (or pixels), each
//! bound as a window of the buffer.
//!
//! A window binds bytes `[offset, offset + size)` where `offset` is the element range's start
//! rounded down to `min_storage_buffer_offset_alignment`; the shader adds `base` (in elements)
//! to its indices to reach the first element of the range.

use crate::context::GpuContext;
use crate::error::GpuError;
use std::num::NonZeroU64;

/// A bound range of a buffer holding the elements `[first, first + len)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Window {
    /// Byte offset of the binding (a multiple of the storage alignment).
    pub offset: u64,
    /// Byte size of the binding (a multiple of 4, ≥ 4).
    pub size: NonZeroU64,
    /// Elements between `offset` and the first element of the range.
    pub base: u32,
}

impl Window {
    /// The window of f32 elements `[first, first + len)` with the given storage alignment.
    pub fn new(first: u64, len: u64, alignment: u64) -> Self {
        let start = first * 4;
        let offset = start - start % alignment;
        let base = (start - offset) / 4;
        let size = (base + len.max(1)) * 4;
        Self {
            offset,
            size: NonZeroU64::new(size).unwrap_or(NonZeroU64::MIN),
            base: u32::try_from(base).unwrap_or(u32::MAX),
        }
    }

    /// The binding resource of this window of `buffer`.
    pub fn bind(self, buffer: &wgpu::Buffer) -> wgpu::BindingResource<'_> {
        wgpu::BindingResource::Buffer(wgpu::BufferBinding {
            buffer,
            offset: self.offset,
            size: Some(self.size),
        })
    }
}

/// A run of whole items (images, or pixels) bound and dispatched together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Chunk {
    /// Index of the first item.
    pub first: usize,
    /// Items in the chunk.
    pub len: usize,
    alignment: u64,
}

impl Chunk {
    /// The window of an operand that holds `per_item` floats per item.
    pub fn window(&self, per_item: u64) -> Window {
        Window::new(
            self.first as u64 * per_item,
            self.len as u64 * per_item,
            self.alignment,
        )
    }
}

/// Splits `total` items into chunks such that, for every operand `(name, floats per item)`,
/// the chunk's window fits one storage binding of `ctx`; fails naming the first operand whose
/// single item does not fit.
pub(crate) fn split(
    ctx: &GpuContext,
    total: usize,
    operands: &[(&'static str, u64)],
) -> Result<Vec<Chunk>, GpuError> {
    let bytes: Vec<(&'static str, u64)> = operands.iter().map(|&(n, f)| (n, f * 4)).collect();
    let alignment = ctx.storage_alignment();
    let per_chunk = items_per_chunk(total, &bytes, ctx.max_binding_bytes(), alignment)?;
    Ok(chunks(total, per_chunk)
        .map(|(first, end)| Chunk {
            first,
            len: end - first,
            alignment,
        })
        .collect())
}

/// How many items (images, pixels) one chunk may hold so that, for every operand, a window of
/// `items × bytes_per_item` bytes plus the alignment slack fits in `max_binding`.
/// `operands` are `(name, bytes per item)`; fails naming the first operand whose single item
/// does not fit.
fn items_per_chunk(
    total_items: usize,
    operands: &[(&'static str, u64)],
    max_binding: u64,
    alignment: u64,
) -> Result<usize, GpuError> {
    let usable = max_binding.saturating_sub(alignment);
    let mut items = total_items.max(1) as u64;
    for &(operand, per_item) in operands {
        let per_item = per_item.max(4);
        let fit = usable / per_item;
        if fit == 0 {
            return Err(GpuError::TooLarge {
                operand,
                needed: per_item + alignment,
                max: max_binding,
            });
        }
        items = items.min(fit);
    }
    Ok(usize::try_from(items).unwrap_or(usize::MAX))
}

/// `[start, end)` ranges of at most `chunk` items covering `0..total`.
fn chunks(total: usize, chunk: usize) -> impl Iterator<Item = (usize, usize)> {
    let chunk = chunk.max(1);
    (0..total.div_ceil(chunk)).map(move |i| (i * chunk, ((i + 1) * chunk).min(total)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_aligns_down_and_keeps_the_range() {
        let w = Window::new(100, 10, 256);
        assert_eq!(w.offset, 256);
        assert_eq!(w.base, (400 - 256) / 4);
        assert_eq!(w.size.get(), (36 + 10) * 4);
        let w = Window::new(0, 5, 32);
        assert_eq!((w.offset, w.base, w.size.get()), (0, 0, 20));
    }

    #[test]
    fn chunk_sizes_respect_every_operand() {
        // 1000-byte and 3000-byte items under a 10_000-byte binding with 256-byte alignment:
        // (10_000 - 256) / 3000 = 3 items.
        let n = items_per_chunk(10, &[("x", 1000), ("y", 3000)], 10_000, 256).unwrap();
        assert_eq!(n, 3);
        assert_eq!(items_per_chunk(2, &[("x", 1000)], 10_000, 256).unwrap(), 2);
        let err = items_per_chunk(1, &[("weight", 20_000)], 10_000, 256).unwrap_err();
        assert!(matches!(
            err,
            GpuError::TooLarge {
                operand: "weight",
                ..
            }
        ));
    }

    #[test]
    fn chunks_cover_the_range_once() {
        let c: Vec<_> = chunks(7, 3).collect();
        assert_eq!(c, [(0, 3), (3, 6), (6, 7)]);
        assert_eq!(chunks(0, 3).count(), 0);
    }
}
