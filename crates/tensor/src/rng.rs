//! A tiny deterministic pseudo-random generator (SplitMix64) for synthetic weights and test data.
//!
//! Chosen over a crate because the exact output sequence is part of reparam's contract: the same
//! seed must produce the same synthetic network on every platform and in every future version.

/// SplitMix64 (Steele, Lea & Flood, OOPSLA 2014): `state += 0x9E3779B97F4A7C15`, then a 64-bit
/// finalizer. Passes BigCrush; period 2⁶⁴.
#[derive(Debug, Clone)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)` with 53 random bits.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in `[lo, hi)`, rounded to `f32`.
    pub fn uniform(&mut self, lo: f32, hi: f32) -> f32 {
        (f64::from(lo) + (f64::from(hi) - f64::from(lo)) * self.next_f64()) as f32
    }

    /// `len` values uniform in `[lo, hi)`.
    pub fn uniform_vec(&mut self, len: usize, lo: f32, hi: f32) -> Vec<f32> {
        (0..len).map(|_| self.uniform(lo, hi)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_reference_sequence() {
        // First outputs of SplitMix64 seeded with 1234567 (reference C implementation by Vigna).
        let mut r = SplitMix64::new(1234567);
        assert_eq!(r.next_u64(), 6457827717110365317);
        assert_eq!(r.next_u64(), 3203168211198807973);
    }

    #[test]
    fn uniform_stays_in_range() {
        let mut r = SplitMix64::new(7);
        assert!(
            r.uniform_vec(1000, -0.5, 0.25)
                .iter()
                .all(|v| (-0.5..0.25).contains(v))
        );
    }
}
