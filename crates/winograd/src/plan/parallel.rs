//! The parallel loops of a run: row bands split with `rayon::join`, and chunked loops, each
//! sequential under [`Parallelism::Sequential`].

use crate::Parallelism;
use crate::kernels::Rows;
use rayon::prelude::*;

/// Splits `band` into `parts` bands of whole multiples of `align` rows (the last may be shorter)
/// and runs `f(band, scratch part)` on each, in parallel with `rayon::join` under
/// [`Parallelism::Rayon`]. `scratch` holds `parts` equal parts (empty when `f` needs none).
pub(super) fn for_each_band<const P: usize>(
    par: Parallelism,
    band: Rows<'_, P>,
    scratch: &mut [f32],
    parts: usize,
    align: usize,
    f: &(impl Fn(Rows<'_, P>, &mut [f32]) + Sync),
) {
    let part_len = scratch.len() / parts;
    let left_parts = parts / 2;
    let Some(first) = band_split(band.rows, parts, align) else {
        f(band, &mut scratch[..part_len]);
        return;
    };
    let (a, b) = band.split(first);
    let (sa, sb) = scratch.split_at_mut(left_parts * part_len);
    let right_parts = parts - left_parts;
    match par {
        Parallelism::Sequential => {
            for_each_band(par, a, sa, left_parts, align, f);
            for_each_band(par, b, sb, right_parts, align, f);
        }
        Parallelism::Rayon => {
            rayon::join(
                || for_each_band(par, a, sa, left_parts, align, f),
                || for_each_band(par, b, sb, right_parts, align, f),
            );
        }
    }
}

/// Where [`for_each_band`] splits `rows` rows for `parts` bands: the first `parts / 2` bands
/// get the returned number of rows (a multiple of `align`), the others the rest; `None` when
/// the rows stay one band.
fn band_split(rows: usize, parts: usize, align: usize) -> Option<usize> {
    if parts <= 1 {
        return None;
    }
    let first = (rows * (parts / 2) / parts).div_ceil(align) * align;
    (first > 0 && first < rows).then_some(first)
}

/// The most rows any of the bands [`for_each_band`] cuts `rows` rows into.
pub(super) fn band_rows_max(rows: usize, parts: usize, align: usize) -> usize {
    match band_split(rows, parts, align) {
        None => rows,
        Some(first) => band_rows_max(first, parts / 2, align).max(band_rows_max(
            rows - first,
            parts - parts / 2,
            align,
        )),
    }
}

/// Runs `f(index, chunk)` over `chunk`-sized pieces of `data`, on rayon or sequentially.
pub(super) fn for_each_chunk<T: Send>(
    par: Parallelism,
    data: &mut [T],
    chunk: usize,
    f: impl Fn(usize, &mut [T]) + Sync + Send,
) {
    match par {
        Parallelism::Sequential => data
            .chunks_mut(chunk)
            .enumerate()
            .for_each(|(i, c)| f(i, c)),
        Parallelism::Rayon => data
            .par_chunks_mut(chunk)
            .enumerate()
            .for_each(|(i, c)| f(i, c)),
    }
}

/// Like [`for_each_chunk`] over two slices in lockstep.
pub(super) fn for_each_chunk_pair<T: Send, U: Send>(
    par: Parallelism,
    a: &mut [T],
    chunk_a: usize,
    b: &mut [U],
    chunk_b: usize,
    f: impl Fn(usize, &mut [T], &mut [U]) + Sync + Send,
) {
    match par {
        Parallelism::Sequential => a
            .chunks_mut(chunk_a)
            .zip(b.chunks_mut(chunk_b))
            .enumerate()
            .for_each(|(i, (x, y))| f(i, x, y)),
        Parallelism::Rayon => a
            .par_chunks_mut(chunk_a)
            .zip(b.par_chunks_mut(chunk_b))
            .enumerate()
            .for_each(|(i, (x, y))| f(i, x, y)),
    }
}
