//! Structural re-parameterization: fold each multi-branch block into one 3x3 conv + bias.

use crate::error::Error;
use crate::net::{PlainNet, TrainNet};

/// Folds every block of `net` (equations in `repvgg.md` §1.3), in f64, rounded to f32 once.
pub fn fuse(net: &TrainNet) -> Result<PlainNet, Error> {
    todo!("{net:?}")
}
