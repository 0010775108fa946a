//! Graphs of ops for both forms of the network.

use crate::error::Error;
use crate::net::{PlainNet, TrainNet};

/// A straight-line program of ops over numbered values.
#[derive(Debug, Clone, PartialEq)]
pub struct Graph {}

impl Graph {
    /// The multi-branch form: every conv, BN, add, ReLU, SE, pool and linear a separate op.
    pub fn multi_branch(net: &TrainNet) -> Result<Self, Error> {
        todo!("{net:?}")
    }

    /// The plain form: one conv3x3 + bias + ReLU per block (SE before the ReLU), pool, linear.
    pub fn plain(net: &PlainNet) -> Result<Self, Error> {
        todo!("{net:?}")
    }
}
