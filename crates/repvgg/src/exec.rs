//! Executors: run a [`Graph`] on a [`Backend`].
//!
//! The [`Executor`] owns the interpretation of a graph (value slots, freeing each activation
//! right after its last use, peak-memory accounting, collecting the outputs); a [`Backend`]
//! owns the arithmetic, with one method per [`Op`] kind. Backends choose their own activation
//! representation ([`Backend::Value`]: an NCHW [`Tensor`] for [`Reference`], channel-blocked
//! buffers for a SIMD backend, device buffers for a GPU) and convert only at the edges
//! ([`Backend::upload`], [`Backend::download`]). Every op call carries its [`NodeId`], so a
//! backend built for a graph can look up per-node state such as conv plans with pre-transformed
//! weights.

#[cfg(feature = "wgsl")]
mod gpu;
mod reference;

#[cfg(feature = "wgsl")]
pub use gpu::Gpu;
pub use reference::Reference;

use crate::error::Error;
use crate::graph::{ConvLayer, Graph, NodeId, Op, ValueId};
use crate::net::{Head, SeWeights};
use reparam_tensor::reference::BatchNorm;
use reparam_tensor::{Tensor, TensorError};

/// The arithmetic of an executor: one method per op kind of [`Op`], over the backend's own
/// activation type. Methods get the operands by reference and return a new value; the executor
/// decides when values die.
pub trait Backend {
    /// An activation `[N, C, H, W]` in the backend's layout and memory.
    type Value;

    /// A short name for reports (`reference`, `cpu-avx2`, ...).
    fn name(&self) -> &str;

    /// Called by [`Executor::run`] before the first op of `graph`, so a backend that keeps
    /// per-node state can tell whether it still belongs to this graph. The default does nothing.
    fn begin(&self, _graph: &Graph) -> Result<(), Error> {
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

/// What a run returns.
#[derive(Debug, Clone, PartialEq)]
pub struct RunOutput {
    /// `[N, classes, 1, 1]`.
    pub logits: Tensor,
    /// Output of the stem (index 0) and of every stage.
    pub stages: Vec<Tensor>,
    /// Globally pooled features `[N, F, 1, 1]`.
    pub pooled: Tensor,
    /// The largest total size, in bytes as reported by [`Backend::value_bytes`], of the
    /// activations alive at once: the operands and the result of the op running, every value a
    /// later op still reads, and the outputs collected so far (the input included while it is
    /// read). Backend scratch memory is not counted.
    pub peak_live_bytes: usize,
}

/// Runs graphs on a [`Backend`]; [`Executor::reference`] runs them on the oracle ops of
/// `reparam_tensor::reference`.
#[derive(Debug, Clone, Default)]
pub struct Executor<B = Reference> {
    backend: B,
}

impl Executor<Reference> {
    /// An executor over `reparam_tensor::reference` (f64 accumulation, f32 storage).
    pub fn reference() -> Self {
        Self::new(Reference)
    }
}

impl<B: Backend> Executor<B> {
    /// An executor over `backend`.
    pub fn new(backend: B) -> Self {
        Self { backend }
    }

    /// The backend.
    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// Runs `graph` on `input` (`[N, C, H, W]`).
    ///
    /// Fails with [`Error::Tensor`] when the input has the wrong channel count, an empty axis or
    /// a non-finite element, and when an op rejects its operands (e.g. a spatial size too small
    /// for the net); never panics on user input.
    pub fn run(&self, graph: &Graph, input: &Tensor) -> Result<RunOutput, Error> {
        check_input(graph, input)?;
        self.backend.begin(graph)?;
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
        let stages = graph
            .stage_outputs()
            .iter()
            .map(|&v| slots.download(v))
            .collect::<Result<_, _>>()?;
        Ok(RunOutput {
            logits: slots.download(graph.logits())?,
            pooled: slots.download(graph.pooled())?,
            stages,
            peak_live_bytes: slots.peak,
        })
    }
}

/// The input must be `[N ≥ 1, graph.input_channels(), H ≥ 1, W ≥ 1]` and finite.
fn check_input(graph: &Graph, input: &Tensor) -> Result<(), Error> {
    let [n, c, h, w] = input.shape();
    if c != graph.input_channels() {
        return Err(TensorError::ShapeMismatch {
            operand: "input",
            expected: vec![n, graph.input_channels(), h, w],
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
        let out = Executor::reference()
            .run(&graph, &input([2, 3, 9, 11]))
            .unwrap();
        assert_eq!(out.logits.shape(), [2, 5, 1, 1]);
        assert_eq!(out.pooled.shape(), [2, 12, 1, 1]);
        let shapes: Vec<_> = out.stages.iter().map(Tensor::shape).collect();
        assert_eq!(shapes, [[2, 4, 5, 6], [2, 8, 3, 3], [2, 12, 2, 2]]);
        // The pooled features are the mean of the last stage output.
        let last = &out.stages[2];
        let mean: f32 = (0..4).map(|i| last.data()[i]).sum::<f32>() / 4.0;
        assert!((out.pooled.data()[0] - mean).abs() < 1e-6);
        // At least the input and the first conv output were alive together.
        let bytes = |s: [usize; 4]| s.iter().product::<usize>() * 4;
        assert!(out.peak_live_bytes >= bytes([2, 3, 9, 11]) + bytes([2, 4, 5, 6]));
    }

    #[test]
    fn the_plain_graph_frees_more_eagerly() {
        let net = net();
        let x = input([1, 3, 17, 17]);
        let exec = Executor::reference();
        let multi = exec.run(&Graph::multi_branch(&net).unwrap(), &x).unwrap();
        let plain = exec
            .run(&Graph::plain(&fuse(&net).unwrap()).unwrap(), &x)
            .unwrap();
        assert!(plain.peak_live_bytes < multi.peak_live_bytes);
    }

    #[test]
    fn bad_inputs_are_typed_errors() {
        let graph = Graph::plain(&fuse(&net()).unwrap()).unwrap();
        let exec = Executor::reference();
        assert!(matches!(
            exec.run(&graph, &input([1, 4, 8, 8])),
            Err(Error::Tensor(TensorError::ShapeMismatch {
                operand: "input",
                ..
            }))
        ));
        assert!(matches!(
            exec.run(&graph, &Tensor::zeros([0, 3, 8, 8]).unwrap()),
            Err(Error::Tensor(TensorError::Invalid { field: "input", .. }))
        ));
        let mut nan = input([1, 3, 8, 8]);
        nan.data_mut()[7] = f32::NAN;
        assert!(matches!(
            exec.run(&graph, &nan),
            Err(Error::Tensor(TensorError::Invalid { field: "input", .. }))
        ));
        // A 1x1 image still runs: every stride-2 conv with padding 1 maps 1 to 1.
        assert!(exec.run(&graph, &input([1, 3, 1, 1])).is_ok());
    }
}
