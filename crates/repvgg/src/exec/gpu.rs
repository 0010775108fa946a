//! [`Gpu`]: the [`Backend`] on reparam-wgsl. Values are device tensors; every op is recorded,
//! not run, and the whole recorded graph is encoded into **one** command submission when the
//! first output is read back ([`Backend::download`]). Every node's plan (packed weights, BN
//! parameters) is built and uploaded by [`Backend::prepare`], before the first run.

use super::Backend;
use crate::error::Error;
use crate::graph::{ConvLayer, Graph, NodeId, Op};
use crate::net::{Head, SeWeights};
use reparam_tensor::BatchNorm;
use reparam_tensor::{Tensor, TensorError};
use reparam_wgsl::{
    Activation, AffinePlan, GpuContext, GpuConv2dPlan, GpuConvOptions, GpuOp, GpuTensor,
    GpuTimings, LinearPlan, SqueezeExcitePlan, ops,
};
use std::cell::RefCell;

/// What a node keeps between runs.
#[derive(Debug)]
enum NodePlan {
    Conv(GpuConv2dPlan),
    Affine(AffinePlan),
    SqueezeExcite(SqueezeExcitePlan),
    Linear(LinearPlan),
}

/// The GPU backend: an [`crate::Executor`] over it holds one plan per node of its graph, built
/// when the executor is (each executor uploads its own graph's weights).
#[derive(Debug)]
pub struct Gpu<'c> {
    ctx: &'c GpuContext,
    options: GpuConvOptions,
    /// Per node (index = [`NodeId`]), its plan; `None` for ops without parameters.
    plans: Vec<Option<NodePlan>>,
    pending: RefCell<Vec<GpuOp>>,
    last: RefCell<Option<(Vec<String>, GpuTimings)>>,
}

impl<'c> Gpu<'c> {
    /// A backend on `ctx`; conv plans are built with `options` (kernel choice, autotuning).
    pub fn new(ctx: &'c GpuContext, options: GpuConvOptions) -> Self {
        Self {
            ctx,
            options,
            plans: Vec::new(),
            pending: RefCell::new(Vec::new()),
            last: RefCell::new(None),
        }
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

    /// The prepared plan of `node`.
    fn plan(&self, node: NodeId) -> Result<&NodePlan, Error> {
        self.plans
            .get(node.0)
            .and_then(Option::as_ref)
            .ok_or_else(|| wrong_plan(node))
    }

    /// Records `op` and returns its output.
    fn record(&self, op: GpuOp, output: GpuTensor) -> GpuTensor {
        self.pending.borrow_mut().push(op);
        output
    }

    fn affine(
        &self,
        node: NodeId,
        input: &GpuTensor,
        other: Option<&GpuTensor>,
    ) -> Result<GpuTensor, Error> {
        let NodePlan::Affine(plan) = self.plan(node)? else {
            return Err(wrong_plan(node));
        };
        let y = GpuTensor::zeros(self.ctx, input.shape())?;
        let op = plan.bind(self.ctx, input, other, &y)?;
        Ok(self.record(op, y))
    }

    /// The plan of one node (`None` for an op without parameters).
    fn build_plan(&self, op: &Op, channels: usize) -> Result<Option<NodePlan>, Error> {
        let ctx = self.ctx;
        Ok(Some(match op {
            Op::Conv { layer, .. } => NodePlan::Conv(GpuConv2dPlan::new(
                ctx,
                &layer.spec,
                &layer.weight,
                &layer.epilogue,
                &self.options,
            )?),
            Op::BatchNorm { bn, .. } => NodePlan::Affine(AffinePlan::batch_norm(ctx, bn, false)?),
            Op::Add { .. } => NodePlan::Affine(AffinePlan::identity(ctx, channels, false)?),
            Op::Relu { .. } => NodePlan::Affine(AffinePlan::identity(ctx, channels, true)?),
            Op::SqueezeExcite { se, .. } => NodePlan::SqueezeExcite(SqueezeExcitePlan::new(
                ctx,
                (&se.down_weight, &se.down_bias),
                (&se.up_weight, &se.up_bias),
            )?),
            Op::GlobalAvgPool { .. } => return Ok(None),
            Op::Linear { head, .. } => NodePlan::Linear(LinearPlan::new(
                ctx,
                &head.weight,
                &head.bias,
                Activation::Identity,
            )?),
        }))
    }
}

/// A node has no plan of its op's kind (cannot happen for the graph [`Backend::prepare`] saw;
/// reported instead of panicking).
fn wrong_plan(node: NodeId) -> Error {
    TensorError::invalid(
        "graph",
        format!(
            "node {} has no prepared plan of its kind (not the prepared graph)",
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

    fn prepare(&mut self, graph: &Graph) -> Result<(), Error> {
        // Channel counts do not depend on the image size; any valid size gives them.
        let shapes = graph.value_shapes([1, graph.input_channels(), 8, 8])?;
        self.plans = graph
            .nodes()
            .iter()
            .map(|node| self.build_plan(&node.op, shapes[node.output.0][1]))
            .collect::<Result<_, _>>()?;
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
        let NodePlan::Conv(plan) = self.plan(node)? else {
            return Err(wrong_plan(node));
        };
        let y = GpuTensor::zeros(self.ctx, layer.spec.output_shape(input.shape())?)?;
        let op = plan.bind(self.ctx, input, &y)?;
        Ok(self.record(op, y))
    }

    fn batch_norm(
        &self,
        node: NodeId,
        input: &GpuTensor,
        _bn: &BatchNorm,
    ) -> Result<GpuTensor, Error> {
        self.affine(node, input, None)
    }

    fn add(&self, node: NodeId, lhs: &GpuTensor, rhs: &GpuTensor) -> Result<GpuTensor, Error> {
        self.affine(node, lhs, Some(rhs))
    }

    fn relu(&self, node: NodeId, input: &GpuTensor) -> Result<GpuTensor, Error> {
        self.affine(node, input, None)
    }

    fn squeeze_excite(
        &self,
        node: NodeId,
        input: &GpuTensor,
        _se: &SeWeights,
    ) -> Result<GpuTensor, Error> {
        let NodePlan::SqueezeExcite(plan) = self.plan(node)? else {
            return Err(wrong_plan(node));
        };
        let y = GpuTensor::zeros(self.ctx, input.shape())?;
        let op = plan.bind(self.ctx, input, &y)?;
        Ok(self.record(op, y))
    }

    fn global_avg_pool(&self, _node: NodeId, input: &GpuTensor) -> Result<GpuTensor, Error> {
        let [n, c, _, _] = input.shape();
        let y = GpuTensor::zeros(self.ctx, [n, c, 1, 1])?;
        let op = ops::global_avg_pool(self.ctx, input, &y)?;
        Ok(self.record(op, y))
    }

    fn linear(&self, node: NodeId, input: &GpuTensor, head: &Head) -> Result<GpuTensor, Error> {
        let NodePlan::Linear(plan) = self.plan(node)? else {
            return Err(wrong_plan(node));
        };
        let classes = head.weight.shape()[0];
        let y = GpuTensor::zeros(self.ctx, [input.shape()[0], classes, 1, 1])?;
        let op = plan.bind(self.ctx, input, &y)?;
        Ok(self.record(op, y))
    }
}
