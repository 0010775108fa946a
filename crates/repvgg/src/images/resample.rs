//! Pillow's antialiased bilinear resampling of 8-bit images, reproduced value for value.
//!
//! `Image.resize(size, Image.BILINEAR)` (what torchvision's `Resize` calls on a PIL image, and so
//! what timm's evaluation transform runs) is a separable convolution: first along rows, rounded to
//! 8 bits, then along columns. For output sample `i` of an axis scaled from `n_in` to `n_out`:
//!
//! ```text
//! scale   = n_in / n_out                      (> 1: downscaling)
//! fscale  = max(scale, 1)                     (the filter widens when downscaling: antialias)
//! support = 1 · fscale                        (the triangle filter has support 1)
//! center  = (i + 0.5) · scale
//! first   = max(0, trunc(center - support + 0.5)),  last = min(n_in, trunc(center + support + 0.5))
//! w_j     = tri((j - center + 0.5) / fscale)  for j in first..last,  tri(x) = max(0, 1 - |x|)
//! w_j    /= Σ w_j
//! ```
//!
//! The weights are then fixed point with 22 fraction bits (`PRECISION_BITS = 32 - 8 - 2`), each
//! rounded half away from zero; an output is `clamp((2²¹ + Σ p_j · k_j) >> 22, 0, 255)`. Doing the
//! same in the same order gives the same bytes, which the tests check against Pillow's output.

/// Fraction bits of the fixed-point weights.
const PRECISION_BITS: u32 = 22;

/// The taps of one output sample: the first input index and the fixed-point weights.
struct Taps {
    first: usize,
    weights: Vec<i32>,
}

/// The taps of every output sample of an axis resized from `n_in` to `n_out` (both ≥ 1).
fn taps(n_in: usize, n_out: usize) -> Vec<Taps> {
    let scale = n_in as f64 / n_out as f64;
    let filter_scale = scale.max(1.0);
    let support = filter_scale;
    (0..n_out)
        .map(|i| {
            let center = (i as f64 + 0.5) * scale;
            // `as` truncates toward zero, as C's `(int)` does.
            let first = ((center - support + 0.5) as i64).max(0) as usize;
            let last = ((center + support + 0.5) as i64).min(n_in as i64) as usize;
            let real: Vec<f64> = (first..last)
                .map(|j| triangle((j as f64 - center + 0.5) / filter_scale))
                .collect();
            let sum: f64 = real.iter().sum();
            let weights = real
                .iter()
                .map(|w| if sum != 0.0 { w / sum } else { *w })
                .map(fixed_point)
                .collect();
            Taps { first, weights }
        })
        .collect()
}

/// The bilinear (triangle) filter.
fn triangle(x: f64) -> f64 {
    (1.0 - x.abs()).max(0.0)
}

/// `w · 2²²` rounded half away from zero, then truncated like C's `(int)`.
fn fixed_point(w: f64) -> i32 {
    let scaled = w * f64::from(1u32 << PRECISION_BITS);
    (if w < 0.0 { scaled - 0.5 } else { scaled + 0.5 }) as i32
}

/// `Σ p_j · k_j` with the rounding offset, back to 8 bits.
fn weighted_sum(samples: impl Iterator<Item = u8>, weights: &[i32]) -> u8 {
    let acc = samples
        .zip(weights)
        .fold(1i32 << (PRECISION_BITS - 1), |acc, (p, k)| {
            acc + i32::from(p) * k
        });
    (acc >> PRECISION_BITS).clamp(0, 255) as u8
}

/// An interleaved 8-bit image: `height` rows of `width` pixels of `channels` bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pixels {
    /// Pixels per row.
    pub width: usize,
    /// Rows.
    pub height: usize,
    /// Bytes per pixel.
    pub channels: usize,
    /// `height · width · channels` bytes, row-major.
    pub data: Vec<u8>,
}

impl Pixels {
    /// Resizes to `width` × `height` as Pillow's `resize(…, BILINEAR)` does: rows first, then
    /// columns, each pass skipped when its size does not change. Both sizes must be ≥ 1, as must
    /// the image's.
    pub fn resize_bilinear(&self, width: usize, height: usize) -> Pixels {
        let rows_done = if width == self.width {
            self.clone()
        } else {
            self.resize_rows(width)
        };
        if height == rows_done.height {
            rows_done
        } else {
            rows_done.resize_columns(height)
        }
    }

    fn resize_rows(&self, width: usize) -> Pixels {
        let c = self.channels;
        let taps = taps(self.width, width);
        let mut data = Vec::with_capacity(self.height * width * c);
        for row in self.data.chunks_exact(self.width * c) {
            for t in &taps {
                for ch in 0..c {
                    let samples = (t.first..).map(|x| row[x * c + ch]);
                    data.push(weighted_sum(samples, &t.weights));
                }
            }
        }
        Pixels {
            width,
            height: self.height,
            channels: c,
            data,
        }
    }

    fn resize_columns(&self, height: usize) -> Pixels {
        let stride = self.width * self.channels;
        let taps = taps(self.height, height);
        let mut data = Vec::with_capacity(height * stride);
        for t in &taps {
            for i in 0..stride {
                let samples = (t.first..).map(|y| self.data[y * stride + i]);
                data.push(weighted_sum(samples, &t.weights));
            }
        }
        Pixels {
            width: self.width,
            height,
            channels: self.channels,
            data,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_of_each_output_sum_to_one_in_fixed_point() {
        for (n_in, n_out) in [(317, 256), (150, 256), (640, 341), (7, 3), (3, 7), (1, 5)] {
            for t in taps(n_in, n_out) {
                let sum: i32 = t.weights.iter().sum();
                // Each weight is rounded by at most half a unit.
                let slack = t.weights.len() as i32;
                assert!(
                    (sum - (1 << PRECISION_BITS)).abs() <= slack,
                    "{n_in}->{n_out}"
                );
                assert!(t.first + t.weights.len() <= n_in);
            }
        }
    }

    #[test]
    fn halving_averages_neighbour_pairs_with_their_neighbours() {
        // 4 -> 2: scale 2, support 2; output 0 centres on 1.0 and weighs inputs 0..3 by
        // tri((j - 0.5)/2) = 0.75, 0.75, 0.25 (input 3 falls outside: trunc(3.5) = 3).
        let row = Pixels {
            width: 4,
            height: 1,
            channels: 1,
            data: vec![0, 70, 140, 210],
        };
        let out = row.resize_bilinear(2, 1);
        // (0·0.75 + 70·0.75 + 140·0.25) / 1.75 = 50; (70·0.25 + 140·0.75 + 210·0.75) / 1.75 = 160.
        assert_eq!(out.data, [50, 160]);
    }

    #[test]
    fn same_size_is_the_identity_and_constant_images_stay_constant() {
        let img = Pixels {
            width: 5,
            height: 3,
            channels: 3,
            data: (0..45).map(|i| (i * 5) as u8).collect(),
        };
        assert_eq!(img.resize_bilinear(5, 3), img);
        let flat = Pixels {
            width: 9,
            height: 4,
            channels: 1,
            data: vec![200; 36],
        };
        for (w, h) in [(4, 2), (20, 11), (9, 1)] {
            assert!(flat.resize_bilinear(w, h).data.iter().all(|&p| p == 200));
        }
    }
}
