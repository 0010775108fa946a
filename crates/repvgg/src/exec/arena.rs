//! The activation arena: every value of a run gets an offset into one buffer, planned once from
//! the values' lifetimes so that values alive at the same time never share memory and values
//! that are never alive together may.
//!
//! Planning is greedy by size (largest first): each value takes the lowest offset, aligned to a
//! cache line, that does not overlap any already placed value whose lifetime intersects its
//! own. A value is alive from the step that writes it through the last step that reads it, both
//! ends included, so an op's output never aliases its operands.

use reparam_tensor::ALIGN_FLOATS;

/// When a value is alive and how many floats it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifetime {
    /// Floats the value holds (0: the value takes no memory).
    pub len: usize,
    /// The step that writes it.
    pub first: usize,
    /// The last step that reads it (`>= first`).
    pub last: usize,
}

impl Lifetime {
    /// True when both values are alive during some step.
    pub fn overlaps(&self, other: &Lifetime) -> bool {
        self.first <= other.last && other.first <= self.last
    }
}

/// Offsets (in floats, multiples of [`ALIGN_FLOATS`]) of each value and the arena length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArenaPlan {
    /// `offsets[i]` is where value `i` starts.
    pub offsets: Vec<usize>,
    /// Floats the arena needs.
    pub len: usize,
}

/// Plans offsets for `lifetimes` (see the [module docs](self)).
pub fn plan(lifetimes: &[Lifetime]) -> ArenaPlan {
    let mut order: Vec<usize> = (0..lifetimes.len()).collect();
    order.sort_by_key(|&i| (std::cmp::Reverse(lifetimes[i].len), i));
    let mut offsets = vec![0; lifetimes.len()];
    // Values placed so far, as (offset, end) with their lifetime, kept sorted by offset.
    let mut placed: Vec<(usize, usize, Lifetime)> = Vec::with_capacity(lifetimes.len());
    let mut len = 0;
    for i in order {
        let life = lifetimes[i];
        if life.len == 0 {
            continue;
        }
        let mut offset = 0;
        for &(start, end, other) in &placed {
            if !other.overlaps(&life) {
                continue;
            }
            if start >= offset + life.len {
                break;
            }
            offset = offset.max(end.next_multiple_of(ALIGN_FLOATS));
        }
        offsets[i] = offset;
        let end = offset + life.len;
        len = len.max(end);
        let at = placed.partition_point(|&(s, _, _)| s <= offset);
        placed.insert(at, (offset, end, life));
    }
    ArenaPlan {
        offsets,
        len: len.next_multiple_of(ALIGN_FLOATS),
    }
}

/// The largest total of floats alive during one step: the lower bound of any plan's length.
pub fn peak_live(lifetimes: &[Lifetime]) -> usize {
    let steps = lifetimes.iter().map(|l| l.last + 1).max().unwrap_or(0);
    (0..steps)
        .map(|s| {
            lifetimes
                .iter()
                .filter(|l| l.first <= s && s <= l.last)
                .map(|l| l.len)
                .sum::<usize>()
        })
        .max()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// No two values alive together share a float, and every value fits in the arena.
    pub(crate) fn assert_disjoint(lifetimes: &[Lifetime], plan: &ArenaPlan) {
        for (i, a) in lifetimes.iter().enumerate() {
            assert_eq!(
                plan.offsets[i] % ALIGN_FLOATS,
                0,
                "value {i} is not aligned"
            );
            assert!(
                plan.offsets[i] + a.len <= plan.len,
                "value {i} is outside the arena"
            );
            for (j, b) in lifetimes.iter().enumerate().skip(i + 1) {
                if a.len == 0 || b.len == 0 || !a.overlaps(b) {
                    continue;
                }
                let (sa, sb) = (plan.offsets[i], plan.offsets[j]);
                assert!(
                    sa + a.len <= sb || sb + b.len <= sa,
                    "values {i} {a:?} at {sa} and {j} {b:?} at {sb} overlap"
                );
            }
        }
    }

    #[test]
    fn a_chain_reuses_two_buffers() {
        // v0 → v1 → v2 → v3, each read only by the next step.
        let lives: Vec<Lifetime> = (0..4)
            .map(|i| Lifetime {
                len: 100,
                first: i,
                last: i + 1,
            })
            .collect();
        let plan = plan(&lives);
        assert_disjoint(&lives, &plan);
        assert_eq!(plan.len, 2 * 112);
        assert_eq!(peak_live(&lives), 200);
    }

    proptest! {
        #[test]
        fn values_alive_together_never_overlap(
            raw in proptest::collection::vec((0usize..5000, 0usize..40, 0usize..10), 1..40)
        ) {
            let lives: Vec<Lifetime> = raw
                .iter()
                .map(|&(len, first, span)| Lifetime { len, first, last: first + span })
                .collect();
            let plan = plan(&lives);
            assert_disjoint(&lives, &plan);
            prop_assert!(plan.len >= peak_live(&lives));
        }
    }
}
