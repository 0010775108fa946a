//! Executors: run a [`Graph`] on a backend.

use crate::error::Error;
use crate::graph::Graph;
use reparam_tensor::Tensor;

/// What a run returns.
#[derive(Debug, Clone, PartialEq)]
pub struct RunOutput {
    /// `[N, classes, 1, 1]`.
    pub logits: Tensor,
    /// Output of the stem (index 0) and of every stage.
    pub stages: Vec<Tensor>,
    /// Globally pooled features `[N, F, 1, 1]`.
    pub pooled: Tensor,
}

/// Runs graphs on the reference ops.
#[derive(Debug, Clone, Default)]
pub struct Executor {}

impl Executor {
    /// An executor over `reparam_tensor::reference`.
    pub fn reference() -> Self {
        Self {}
    }

    /// Runs `graph` on `input` (`[N, C, H, W]`).
    pub fn run(&self, graph: &Graph, input: &Tensor) -> Result<RunOutput, Error> {
        todo!("{graph:?} {input:?}")
    }
}
