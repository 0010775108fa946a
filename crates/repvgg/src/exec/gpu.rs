//! [`Gpu`]: the [`Backend`] on reparam-wgsl. Values are device tensors; every op is recorded,
//! not run, and the whole recorded graph is encoded into **one** command submission when the
//! first output is read back ([`Backend::download`]). Per-node plans (packed weights, BN
//! parameters) are built on a node's first run and kept for later runs of the same graph.

use super::Backend;
use crate::error::Error;
use crate::graph::{ConvLayer, Graph, NodeId, Op};
use crate::net::{Head, SeWeights};
use reparam_tensor::reference::BatchNorm;
use reparam_tensor::{ConvSpec, Tensor, TensorError};
use reparam_wgsl::{
    Activation, AffinePlan, GpuContext, GpuConv2dPlan, GpuConvOptions, GpuOp, GpuTensor,
    GpuTimings, LinearPlan, SqueezeExcitePlan, ops,
};
use std::cell::RefCell;
use std::collections::HashMap;

/// What a node keeps between runs.
#[derive(Debug)]
enum NodePlan {
    Conv(GpuConv2dPlan),
    Affine(AffinePlan),
    SqueezeExcite(SqueezeExcitePlan),
    Linear(LinearPlan),
}

/// The structure of a graph: op kinds and conv geometries in node order. Plans are dropped
/// and rebuilt when a run's graph has another structure.
type Structure = Vec<(&'static str, Option<ConvSpec>)>;

fn structure(graph: &Graph) -> Structure {
    graph
        .nodes()
        .iter()
        .map(|node| match &node.op {
            Op::Conv { layer, .. } => (node.op.kind(), Some(layer.spec)),
            op => (op.kind(), None),
        })
        .collect()
}

/// The GPU backend. Plans are keyed by [`NodeId`] and kept while the executor runs graphs of
/// the same structure; a backend caches the weights of the graph it first ran, so build a new
/// backend (or call [`Gpu::clear`]) to run other weights of the same architecture.
#[derive(Debug)]
pub struct Gpu<'c> {
    ctx: &'c GpuContext,
    options: GpuConvOptions,
    structure: RefCell<Structure>,
    plans: RefCell<HashMap<NodeId, NodePlan>>,
    pending: RefCell<Vec<GpuOp>>,
    last: RefCell<Option<(Vec<String>, GpuTimings)>>,
}

impl<'c> Gpu<'c> {
    /// A backend on `ctx`; conv plans are built with `options` (kernel choice, autotuning).
    pub fn new(ctx: &'c GpuContext, options: GpuConvOptions) -> Self {
        Self {
            ctx,
            options,
            structure: RefCell::new(Vec::new()),
            plans: RefCell::new(HashMap::new()),
            pending: RefCell::new(Vec::new()),
            last: RefCell::new(None),
        }
    }

    /// Drops every per-node plan (weights are uploaded again on the next run).
    pub fn clear(&self) {
        self.plans.borrow_mut().clear();
        self.structure.borrow_mut().clear();
    }

    /// The labels of the ops of the last submitted graph and its timings (device time per op
    /// where the adapter has timestamps).
    pub fn last_run(&self) -> Option<(Vec<String>, GpuTimings)> {
        self.last.borrow().clone()
    }

    /// Submits every recorded op in one command buffer.
    fn flush(&self) -> Result<(), Error> {
        let ops = std::mem::take(&mut *self.pending.borrow_mut());
        if ops.is_empty() {
            return Ok(());
        }
        let refs: Vec<&GpuOp> = ops.iter().collect();
        let timings = self.ctx.run(&refs)?;
        let labels = ops.iter().map(|op| op.label().to_owned()).collect();
        *self.last.borrow_mut() = Some((labels, timings));
        Ok(())
    }

    /// The plan of `node`, built by `build` on first use.
    fn with_plan<T>(
        &self,
        node: NodeId,
        build: impl FnOnce() -> Result<NodePlan, Error>,
        use_plan: impl FnOnce(&NodePlan) -> Result<T, Error>,
    ) -> Result<T, Error> {
        if !self.plans.borrow().contains_key(&node) {
            let plan = build()?;
            self.plans.borrow_mut().insert(node, plan);
        }
        let plans = self.plans.borrow();
        use_plan(&plans[&node])
    }

    /// Records `op` and returns its output.
    fn record(&self, op: GpuOp, output: GpuTensor) -> GpuTensor {
        self.pending.borrow_mut().push(op);
        output
    }

    fn affine(
        &self,
        node: NodeId,
        build: impl FnOnce() -> Result<AffinePlan, Error>,
        input: &GpuTensor,
        other: Option<&GpuTensor>,
    ) -> Result<GpuTensor, Error> {
        self.with_plan(
            node,
            || Ok(NodePlan::Affine(build()?)),
            |plan| {
                let NodePlan::Affine(plan) = plan else {
                    return Err(wrong_plan(node));
                };
                let y = GpuTensor::zeros(self.ctx, input.shape())?;
                let op = plan.bind(self.ctx, input, other, &y)?;
                Ok(self.record(op, y))
            },
        )
    }
}

/// A node's cached plan is of another kind than its op (cannot happen after [`Backend::begin`]
/// checked the structure; reported instead of panicking).
fn wrong_plan(node: NodeId) -> Error {
    TensorError::invalid(
        "graph",
        format!(
            "node {} does not match the plan cached for it; call Gpu::clear",
            node.0
        ),
    )
    .into()
}

impl Backend for Gpu<'_> {
    type Value = GpuTensor;

    fn name(&self) -> &str {
        "gpu"
    }

    fn begin(&self, graph: &Graph) -> Result<(), Error> {
        let current = structure(graph);
        if *self.structure.borrow() != current {
            self.plans.borrow_mut().clear();
            *self.structure.borrow_mut() = current;
        }
        self.pending.borrow_mut().clear();
        Ok(())
    }

    fn upload(&self, input: &Tensor) -> Result<GpuTensor, Error> {
        Ok(GpuTensor::upload(self.ctx, input)?)
    }

    fn download(&self, value: GpuTensor) -> Result<Tensor, Error> {
        self.flush()?;
        Ok(value.download(self.ctx)?)
    }

    fn value_bytes(&self, value: &GpuTensor) -> usize {
        usize::try_from(value.bytes()).unwrap_or(usize::MAX)
    }

    fn conv(&self, node: NodeId, input: &GpuTensor, layer: &ConvLayer) -> Result<GpuTensor, Error> {
        self.with_plan(
            node,
            || {
                let plan = GpuConv2dPlan::new(
                    self.ctx,
                    &layer.spec,
                    &layer.weight,
                    &layer.epilogue,
                    &self.options,
                )?;
                Ok(NodePlan::Conv(plan))
            },
            |plan| {
                let NodePlan::Conv(plan) = plan else {
                    return Err(wrong_plan(node));
                };
                let y = GpuTensor::zeros(self.ctx, layer.spec.output_shape(input.shape())?)?;
                let op = plan.bind(self.ctx, input, &y)?;
                Ok(self.record(op, y))
            },
        )
    }

    fn batch_norm(
        &self,
        node: NodeId,
        input: &GpuTensor,
        bn: &BatchNorm,
    ) -> Result<GpuTensor, Error> {
        self.affine(
            node,
            || Ok(AffinePlan::batch_norm(self.ctx, bn, false)?),
            input,
            None,
        )
    }

    fn add(&self, node: NodeId, lhs: &GpuTensor, rhs: &GpuTensor) -> Result<GpuTensor, Error> {
        let channels = lhs.shape()[1];
        self.affine(
            node,
            || Ok(AffinePlan::identity(self.ctx, channels, false)?),
            lhs,
            Some(rhs),
        )
    }

    fn relu(&self, node: NodeId, input: &GpuTensor) -> Result<GpuTensor, Error> {
        let channels = input.shape()[1];
        self.affine(
            node,
            || Ok(AffinePlan::identity(self.ctx, channels, true)?),
            input,
            None,
        )
    }

    fn squeeze_excite(
        &self,
        node: NodeId,
        input: &GpuTensor,
        se: &SeWeights,
    ) -> Result<GpuTensor, Error> {
        self.with_plan(
            node,
            || {
                let plan = SqueezeExcitePlan::new(
                    self.ctx,
                    (&se.down_weight, &se.down_bias),
                    (&se.up_weight, &se.up_bias),
                )?;
                Ok(NodePlan::SqueezeExcite(plan))
            },
            |plan| {
                let NodePlan::SqueezeExcite(plan) = plan else {
                    return Err(wrong_plan(node));
                };
                let y = GpuTensor::zeros(self.ctx, input.shape())?;
                let op = plan.bind(self.ctx, input, &y)?;
                Ok(self.record(op, y))
            },
        )
    }

    fn global_avg_pool(&self, _node: NodeId, input: &GpuTensor) -> Result<GpuTensor, Error> {
        let [n, c, _, _] = input.shape();
        let y = GpuTensor::zeros(self.ctx, [n, c, 1, 1])?;
        let op = ops::global_avg_pool(self.ctx, input, &y)?;
        Ok(self.record(op, y))
    }

    fn linear(&self, node: NodeId, input: &GpuTensor, head: &Head) -> Result<GpuTensor, Error> {
        self.with_plan(
            node,
            || {
                let plan =
                    LinearPlan::new(self.ctx, &head.weight, &head.bias, Activation::Identity)?;
                Ok(NodePlan::Linear(plan))
            },
            |plan| {
                let NodePlan::Linear(plan) = plan else {
                    return Err(wrong_plan(node));
                };
                let classes = head.weight.shape()[0];
                let y = GpuTensor::zeros(self.ctx, [input.shape()[0], classes, 1, 1])?;
                let op = plan.bind(self.ctx, input, &y)?;
                Ok(self.record(op, y))
            },
        )
    }
}
