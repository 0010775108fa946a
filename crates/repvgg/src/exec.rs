//! Executors: prepare a [`Graph`] for a backend once, then run it many times.
//!
//! Every engine implements [`Engine`]: built from a graph with all its per-layer state prepared
//! eagerly (conv plans with packed or transformed weights, per-channel parameters), it runs an
//! NCHW input and returns a [`RunOutput`] with the logits and whatever else [`Outputs`] asked
//! for. Two kinds:
//!
//! - [`Cpu`]: reparam-winograd's kernels on NCHWc activations in one planned arena, no
//!   allocation per run after the first for an input shape.
//! - [`Executor`] over an op-by-op [`Backend`] that allocates a value per op:
//!   [`Reference`] (the f64 oracle) and, with the `wgsl` feature, `Gpu` (reparam-wgsl, the
//!   whole graph in one submission).
//!
//! Two engines built from graphs of the same architecture hold their own weights: nothing is
//! cached by geometry.

mod arena;
mod cpu;
#[cfg(feature = "wgsl")]
mod gpu;
mod reference;

pub use arena::{ArenaPlan, Lifetime, peak_live, plan as plan_arena};
pub use cpu::{Cpu, CpuOptions};
#[cfg(feature = "wgsl")]
pub use gpu::Gpu;
pub use reference::Reference;

use crate::error::Error;
use crate::graph::{ConvLayer, Graph, NodeId, Op, ValueId};
use crate::net::{Head, SeWeights};
use reparam_tensor::BatchNorm;
use reparam_tensor::{Tensor, TensorError};

/// The arithmetic of an executor: one method per op kind of [`Op`], over the backend's own
/// activation type. Methods get the operands by reference and return a new value; the executor
/// decides when values die.
pub trait Backend {
    /// An activation `[N, C, H, W]` in the backend's layout and memory.
    type Value;

    /// A short name for reports (`reference`, `cpu-avx2`, ...).
    fn name(&self) -> &str;

    /// Builds every per-node state of `graph` (plans, uploaded weights) eagerly, replacing any
    /// state of an earlier graph. [`Executor::new`] calls it once. The default keeps nothing.
    fn prepare(&mut self, _graph: &Graph) -> Result<(), Error> {
        Ok(())
    }

    /// Brings a network input into the backend.
    fn upload(&self, input: &Tensor) -> Result<Self::Value, Error>;

    /// Returns an output of the run as an NCHW tensor.
    fn download(&self, value: Self::Value) -> Result<Tensor, Error>;

    /// Bytes of activation memory `value` holds (for the peak-live accounting).
    fn value_bytes(&self, value: &Self::Value) -> usize;

    /// [`Op::Conv`]: `relu?(conv(input; layer.weight) + bias?)`.
    fn conv(
        &self,
        node: NodeId,
        input: &Self::Value,
        layer: &ConvLayer,
    ) -> Result<Self::Value, Error>;

    /// [`Op::BatchNorm`] in inference mode.
    fn batch_norm(
        &self,
        node: NodeId,
        input: &Self::Value,
        bn: &BatchNorm,
    ) -> Result<Self::Value, Error>;

    /// [`Op::Add`]: `lhs + rhs`.
    fn add(&self, node: NodeId, lhs: &Self::Value, rhs: &Self::Value)
    -> Result<Self::Value, Error>;

    /// [`Op::Relu`]: `max(input, 0)`.
    fn relu(&self, node: NodeId, input: &Self::Value) -> Result<Self::Value, Error>;

    /// [`Op::SqueezeExcite`]: pool, 1x1 down + bias, ReLU, 1x1 up + bias, sigmoid, scale.
    fn squeeze_excite(
        &self,
        node: NodeId,
        input: &Self::Value,
        se: &SeWeights,
    ) -> Result<Self::Value, Error>;

    /// [`Op::GlobalAvgPool`]: `[N, C, H, W] → [N, C, 1, 1]`.
    fn global_avg_pool(&self, node: NodeId, input: &Self::Value) -> Result<Self::Value, Error>;

    /// [`Op::Linear`]: the classifier on pooled features, `[N, F, 1, 1] → [N, M, 1, 1]`.
    fn linear(&self, node: NodeId, input: &Self::Value, head: &Head) -> Result<Self::Value, Error>;
}

/// Which outputs a run keeps besides the logits (none by default, so timed runs read back
/// nothing nobody asked for).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Outputs {
    /// The output of the stem and of every stage ([`RunOutput::stages`]).
    pub stages: bool,
    /// The pooled features ([`RunOutput::pooled`]).
    pub pooled: bool,
}

impl Outputs {
    /// Logits only.
    pub const LOGITS: Self = Self {
        stages: false,
        pooled: false,
    };
    /// Logits, stage outputs and pooled features.
    pub const ALL: Self = Self {
        stages: true,
        pooled: true,
    };
}

/// What a run returns.
#[derive(Debug, Clone, PartialEq)]
pub struct RunOutput {
    /// `[N, classes, 1, 1]`.
    pub logits: Tensor,
    /// Output of the stem (index 0) and of every stage, when [`Outputs::stages`] asked for them
    /// (else empty).
    pub stages: Vec<Tensor>,
    /// Globally pooled features `[N, F, 1, 1]`, when [`Outputs::pooled`] asked for them.
    pub pooled: Option<Tensor>,
    /// Activation memory of the run in bytes. For an [`Executor`], the largest total size (as
    /// reported by [`Backend::value_bytes`]) of the activations alive at once: the operands and
    /// the result of the op running, every value a later op still reads, and the outputs
    /// collected so far (the input while it is read). For [`Cpu`], the size of its activation
    /// arena, which holds every value alive at once. Scratch memory is not counted.
    pub peak_live_bytes: usize,
}

impl RunOutput {
    /// An output with no data yet (engines fill it on their first run).
    pub(crate) fn empty() -> Self {
        Self {
            logits: Tensor::zeros([0, 0, 0, 0]).expect("an empty tensor is valid"),
            stages: Vec::new(),
            pooled: None,
            peak_live_bytes: 0,
        }
    }
}

/// One prepared step of an engine, for reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepInfo {
    /// Where it sits in the network (`stage1.0.rbr_reparam`).
    pub label: String,
    /// The op as [`Op`]'s `Display` prints it.
    pub op: String,
    /// [`Op::kind`].
    pub kind: &'static str,
    /// The kernel chosen for a conv (`winograd-f63-avx512f`), where the backend chooses one.
    pub algorithm: Option<String>,
}

/// A graph prepared for one backend (see the [module docs](self)).
pub trait Engine {
    /// A short name for reports (`cpu-avx512f`, `reference`, `gpu`).
    fn name(&self) -> String;

    /// The prepared steps in execution order, with the kernel each conv runs.
    fn steps(&self) -> Vec<StepInfo>;

    /// Runs the graph on `input` (`[N, C, H, W]`, NCHW).
    ///
    /// Fails with [`Error::Tensor`] when the input has the wrong channel count, an empty axis or
    /// a non-finite element, and when an op rejects its operands (e.g. a spatial size too small
    /// for the net); never panics on user input.
    fn run(&mut self, input: &Tensor) -> Result<&RunOutput, Error>;
}

/// A graph prepared for an op-by-op [`Backend`]; [`Executor::reference`] runs it on the oracle
/// ops of `reparam_tensor::reference`.
#[derive(Debug)]
pub struct Executor<B = Reference> {
    backend: B,
    graph: Graph,
    outputs: Outputs,
    last: Option<RunOutput>,
}

impl Executor<Reference> {
    /// `graph` on `reparam_tensor::reference` (f64 accumulation, f32 storage).
    pub fn reference(graph: &Graph) -> Result<Self, Error> {
        Self::new(Reference, graph)
    }
}

impl<B: Backend> Executor<B> {
    /// Prepares `graph` on `backend` ([`Backend::prepare`]); runs keep the logits only until
    /// [`Executor::with_outputs`] asks for more.
    pub fn new(mut backend: B, graph: &Graph) -> Result<Self, Error> {
        backend.prepare(graph)?;
        Ok(Self {
            backend,
            graph: graph.clone(),
            outputs: Outputs::LOGITS,
            last: None,
        })
    }

    /// Keeps `outputs` besides the logits in every run.
    pub fn with_outputs(mut self, outputs: Outputs) -> Self {
        self.outputs = outputs;
        self
    }

    /// The backend.
    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// The graph it runs.
    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// Runs the graph on `input` (`[N, C, H, W]`), returning an owned output (see
    /// [`Engine::run`] for the errors).
    pub fn run(&self, input: &Tensor) -> Result<RunOutput, Error> {
        let graph = &self.graph;
        check_input(graph.input_channels(), input)?;
        let mut slots = Slots {
            backend: &self.backend,
            values: (0..graph.num_values()).map(|_| None).collect(),
            live: 0,
            peak: 0,
        };
        slots.define(Graph::INPUT, self.backend.upload(input)?);
        for (k, node) in graph.nodes().iter().enumerate() {
            let id = NodeId(k);
            let b = &self.backend;
            let out = match &node.op {
                Op::Conv { input, layer } => b.conv(id, slots.get(*input)?, layer),
                Op::BatchNorm { input, bn } => b.batch_norm(id, slots.get(*input)?, bn),
                Op::Add { lhs, rhs } => b.add(id, slots.get(*lhs)?, slots.get(*rhs)?),
                Op::Relu { input } => b.relu(id, slots.get(*input)?),
                Op::SqueezeExcite { input, se } => b.squeeze_excite(id, slots.get(*input)?, se),
                Op::GlobalAvgPool { input } => b.global_avg_pool(id, slots.get(*input)?),
                Op::Linear { input, head } => b.linear(id, slots.get(*input)?, head),
            }?;
            slots.define(node.output, out);
            for &dead in graph.releases(id) {
                slots.release(dead);
            }
        }
        let stages = if self.outputs.stages {
            graph
                .stage_outputs()
                .iter()
                .map(|&v| slots.download(v))
                .collect::<Result<_, _>>()?
        } else {
            Vec::new()
        };
        let pooled = if self.outputs.pooled {
            Some(slots.download(graph.pooled())?)
        } else {
            None
        };
        Ok(RunOutput {
            logits: slots.download(graph.logits())?,
            pooled,
            stages,
            peak_live_bytes: slots.peak,
        })
    }
}

impl<B: Backend> Engine for Executor<B> {
    fn name(&self) -> String {
        self.backend.name().to_owned()
    }

    fn steps(&self) -> Vec<StepInfo> {
        self.graph
            .nodes()
            .iter()
            .map(|node| StepInfo {
                label: node.label.clone(),
                op: node.op.to_string(),
                kind: node.op.kind(),
                algorithm: None,
            })
            .collect()
    }

    fn run(&mut self, input: &Tensor) -> Result<&RunOutput, Error> {
        let out = Executor::run(self, input)?;
        Ok(self.last.insert(out))
    }
}

/// The input must be `[N ≥ 1, channels, H ≥ 1, W ≥ 1]` and finite.
pub(crate) fn check_input(channels: usize, input: &Tensor) -> Result<(), Error> {
    let [n, c, h, w] = input.shape();
    if c != channels {
        return Err(TensorError::ShapeMismatch {
            operand: "input",
            expected: vec![n, channels, h, w],
            actual: input.shape().to_vec(),
        }
        .into());
    }
    if input.is_empty() {
        return Err(TensorError::invalid(
            "input",
            format!("shape {:?} has an empty axis", input.shape()),
        )
        .into());
    }
    if let Some(i) = input.first_non_finite() {
        return Err(TensorError::invalid(
            "input",
            format!("element {i} is not finite ({})", input.data()[i]),
        )
        .into());
    }
    Ok(())
}

/// The value slots of one run, with live-byte accounting.
struct Slots<'b, B: Backend> {
    backend: &'b B,
    values: Vec<Option<B::Value>>,
    live: usize,
    peak: usize,
}

impl<B: Backend> Slots<'_, B> {
    fn define(&mut self, id: ValueId, value: B::Value) {
        self.live += self.backend.value_bytes(&value);
        self.peak = self.peak.max(self.live);
        if let Some(old) = self.values[id.0].replace(value) {
            self.live -= self.backend.value_bytes(&old);
        }
    }

    fn get(&self, id: ValueId) -> Result<&B::Value, Error> {
        self.values
            .get(id.0)
            .and_then(Option::as_ref)
            .ok_or_else(|| missing(id))
    }

    fn release(&mut self, id: ValueId) {
        if let Some(old) = self.values.get_mut(id.0).and_then(Option::take) {
            self.live -= self.backend.value_bytes(&old);
        }
    }

    fn download(&mut self, id: ValueId) -> Result<Tensor, Error> {
        let value = self
            .values
            .get_mut(id.0)
            .and_then(Option::take)
            .ok_or_else(|| missing(id))?;
        self.backend.download(value)
    }
}

/// A graph read a value that is not alive: a malformed graph, not bad user input.
fn missing(id: ValueId) -> Error {
    TensorError::invalid(
        "graph",
        format!("{id} is read but not alive (malformed graph)"),
    )
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, StageConfig};
    use crate::fold::fuse;
    use crate::net::TrainNet;
    use reparam_tensor::rng::SplitMix64;

    fn net() -> TrainNet {
        let config = Config::custom(
            4,
            vec![StageConfig::dense(8, 2), StageConfig::dense(12, 1)],
            5,
            Some(4),
        )
        .unwrap();
        TrainNet::random(&config, 9)
    }

    fn input(shape: [usize; 4]) -> Tensor {
        let mut rng = SplitMix64::new(1);
        Tensor::new(shape, rng.uniform_vec(shape.iter().product(), -1.0, 1.0)).unwrap()
    }

    #[test]
    fn outputs_have_the_documented_shapes() {
        let graph = Graph::multi_branch(&net()).unwrap();
        let out = Executor::reference(&graph)
            .unwrap()
            .with_outputs(Outputs::ALL)
            .run(&input([2, 3, 9, 11]))
            .unwrap();
        let pooled = out.pooled.as_ref().unwrap();
        assert_eq!(out.logits.shape(), [2, 5, 1, 1]);
        assert_eq!(pooled.shape(), [2, 12, 1, 1]);
        let shapes: Vec<_> = out.stages.iter().map(Tensor::shape).collect();
        assert_eq!(shapes, [[2, 4, 5, 6], [2, 8, 3, 3], [2, 12, 2, 2]]);
        // The pooled features are the mean of the last stage output.
        let last = &out.stages[2];
        let mean: f32 = (0..4).map(|i| last.data()[i]).sum::<f32>() / 4.0;
        assert!((pooled.data()[0] - mean).abs() < 1e-6);
        // Without asking, a run keeps the logits only.
        let lean = Executor::reference(&graph)
            .unwrap()
            .run(&input([2, 3, 9, 11]))
            .unwrap();
        assert!(lean.stages.is_empty() && lean.pooled.is_none());
        assert_eq!(lean.logits, out.logits);
        // At least the input and the first conv output were alive together.
        let bytes = |s: [usize; 4]| s.iter().product::<usize>() * 4;
        assert!(out.peak_live_bytes >= bytes([2, 3, 9, 11]) + bytes([2, 4, 5, 6]));
    }

    #[test]
    fn the_plain_graph_frees_more_eagerly() {
        let net = net();
        let x = input([1, 3, 17, 17]);
        let run = |graph: &Graph| Executor::reference(graph).unwrap().run(&x).unwrap();
        let multi = run(&Graph::multi_branch(&net).unwrap());
        let plain = run(&Graph::plain(&fuse(&net).unwrap()).unwrap());
        assert!(plain.peak_live_bytes < multi.peak_live_bytes);
    }

    #[test]
    fn bad_inputs_are_typed_errors() {
        let graph = Graph::plain(&fuse(&net()).unwrap()).unwrap();
        let exec = Executor::reference(&graph).unwrap();
        assert!(matches!(
            exec.run(&input([1, 4, 8, 8])),
            Err(Error::Tensor(TensorError::ShapeMismatch {
                operand: "input",
                ..
            }))
        ));
        assert!(matches!(
            exec.run(&Tensor::zeros([0, 3, 8, 8]).unwrap()),
            Err(Error::Tensor(TensorError::Invalid { field: "input", .. }))
        ));
        let mut nan = input([1, 3, 8, 8]);
        nan.data_mut()[7] = f32::NAN;
        assert!(matches!(
            exec.run(&nan),
            Err(Error::Tensor(TensorError::Invalid { field: "input", .. }))
        ));
        // A 1x1 image still runs: every stride-2 conv with padding 1 maps 1 to 1.
        assert!(exec.run(&input([1, 3, 1, 1])).is_ok());
    }
}
