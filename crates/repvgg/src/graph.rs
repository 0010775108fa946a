//! Graphs of ops for both forms of the network: straight-line programs over numbered values.
//!
//! Value `v0` is the network input; every [`Node`] applies one [`Op`] to earlier values and
//! defines exactly one new value, so the node list is already in execution order. The graph
//! records which values are the outputs of a run (the stem and every stage, the pooled features,
//! the logits) and, for every node, which values die once it has run (their last use), so an
//! executor can free activations as early as possible.
//!
//! Both forms are built from the network data in [`crate::net`]:
//!
//! | form | per block | SE block |
//! |---|---|---|
//! | [`Graph::multi_branch`] | conv3x3, BN, conv1x1, BN, add, (BN_id, add), ReLU | … add, SE, ReLU |
//! | [`Graph::plain`] | conv3x3 + bias + ReLU (fused epilogue) | conv3x3 + bias, SE, ReLU |
//!
//! followed in both by global average pooling and the linear classifier. Squeeze-excitation is
//! applied before the block's ReLU (D2se order, `docs/repvgg.md#squeeze-excitation`).

mod deploy;
pub(crate) mod validate;

use crate::error::Error;
use crate::net::{Head, PlainBlock, PlainNet, SeWeights, TrainBlock, TrainNet};
use reparam_tensor::BatchNorm;
use reparam_tensor::{ConvSpec, Epilogue, Tensor};
use std::fmt;

/// A value of a graph: `v0` is the input, `vK` the output of the node that defines it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ValueId(pub usize);

impl fmt::Display for ValueId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}", self.0)
    }
}

/// Position of a node in [`Graph::nodes`] (execution order). Backends may key per-node state,
/// such as conv plans with pre-transformed weights, on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub usize);

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// A convolution with its weights and fused epilogue: `y = relu?(conv(x; weight) + bias?)`.
#[derive(Debug, Clone, PartialEq)]
pub struct ConvLayer {
    /// Geometry (kernel, stride, padding, groups).
    pub spec: ConvSpec,
    /// Weights `[C_out, C_in/g, k, k]`.
    pub weight: Tensor,
    /// Bias and ReLU applied to the accumulated sum.
    pub epilogue: Epilogue,
}

/// One operation. Shapes are `[N, C, H, W]`; every op reads the listed values and defines one.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// `y = relu?(conv(x; layer.weight) + bias?)` (see [`ConvLayer`]).
    Conv {
        /// `x`.
        input: ValueId,
        /// Weights, geometry and epilogue.
        layer: ConvLayer,
    },
    /// Inference-mode batch norm, the per-channel affine map `y = t·x + s` with
    /// `t = γ/√(σ² + ε)`, `s = β − μ·t`.
    BatchNorm {
        /// `x`.
        input: ValueId,
        /// The statistics and affine parameters.
        bn: BatchNorm,
    },
    /// `y = a + b` (same shapes).
    Add {
        /// `a`.
        lhs: ValueId,
        /// `b`.
        rhs: ValueId,
    },
    /// `y = max(x, 0)`.
    Relu {
        /// `x`.
        input: ValueId,
    },
    /// Squeeze-excitation: `p = mean_{h,w} x`, `z = ReLU(W_down·p + b_down)`,
    /// `s = sigmoid(W_up·z + b_up)`, `y[n,c,h,w] = x[n,c,h,w]·s[n,c]`.
    SqueezeExcite {
        /// `x`.
        input: ValueId,
        /// The two 1x1 layers.
        se: SeWeights,
    },
    /// `y[n,c,0,0] = mean_{h,w} x[n,c,h,w]`.
    GlobalAvgPool {
        /// `x`, `[N, C, H, W]`.
        input: ValueId,
    },
    /// The classifier on pooled features: `y[n,m,0,0] = b[m] + Σ_f W[m,f]·x[n,f,0,0]`.
    Linear {
        /// `x`, `[N, F, 1, 1]`.
        input: ValueId,
        /// `W` `[M, F, 1, 1]` and `b` `[M]`.
        head: Head,
    },
}

impl Op {
    /// A short, stable name of the op kind (`conv3x3`, `conv1x1`, `batch_norm`, `add`, `relu`,
    /// `squeeze_excite`, `global_avg_pool`, `linear`), e.g. for grouping profiles.
    pub fn kind(&self) -> &'static str {
        match self {
            Op::Conv { layer, .. } if layer.spec.kernel == 1 => "conv1x1",
            Op::Conv { .. } => "conv3x3",
            Op::BatchNorm { .. } => "batch_norm",
            Op::Add { .. } => "add",
            Op::Relu { .. } => "relu",
            Op::SqueezeExcite { .. } => "squeeze_excite",
            Op::GlobalAvgPool { .. } => "global_avg_pool",
            Op::Linear { .. } => "linear",
        }
    }

    /// The values the op reads, in operand order.
    pub fn inputs(&self) -> Vec<ValueId> {
        match self {
            Op::Add { lhs, rhs } => vec![*lhs, *rhs],
            Op::Conv { input, .. }
            | Op::BatchNorm { input, .. }
            | Op::Relu { input }
            | Op::SqueezeExcite { input, .. }
            | Op::GlobalAvgPool { input }
            | Op::Linear { input, .. } => vec![*input],
        }
    }
}

impl fmt::Display for Op {
    /// E.g. `conv3x3 16→32 s2 g1 +bias+relu (v3)`, `add (v5, v7)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.kind())?;
        match self {
            Op::Conv { layer, .. } => {
                let s = &layer.spec;
                write!(
                    f,
                    " {}→{} s{} g{}",
                    s.in_channels, s.out_channels, s.stride, s.groups
                )?;
                if layer.epilogue.bias.is_some() {
                    f.write_str(" +bias")?;
                }
                if layer.epilogue.relu {
                    f.write_str(" +relu")?;
                }
            }
            Op::BatchNorm { bn, .. } => write!(f, " {}", bn.gamma.len())?,
            Op::SqueezeExcite { se, .. } => {
                let [hidden, c, _, _] = se.down_weight.shape();
                write!(f, " {c}→{hidden}→{c}")?;
            }
            Op::Linear { head, .. } => {
                let [m, features, _, _] = head.weight.shape();
                write!(f, " {features}→{m}")?;
            }
            Op::Add { .. } | Op::Relu { .. } | Op::GlobalAvgPool { .. } => {}
        }
        let inputs: Vec<String> = self.inputs().iter().map(ValueId::to_string).collect();
        write!(f, " ({})", inputs.join(", "))
    }
}

/// One step of a graph: `output = op(inputs)`, with a label saying where in the network it sits
/// (official key names: `stage1.0.rbr_dense.conv`, `stage2.3.rbr_reparam`, `linear`, ...).
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// What is computed.
    pub op: Op,
    /// The value it defines.
    pub output: ValueId,
    /// Where it sits in the network.
    pub label: String,
}

impl fmt::Display for Node {
    /// E.g. `v4 = conv3x3 16→32 s2 g1 +bias+relu (v3)  [stage2.0.rbr_reparam]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} = {}  [{}]", self.output, self.op, self.label)
    }
}

/// Which form of the network a graph computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Form {
    /// The training-time multi-branch form, every conv, BN and add a separate op.
    MultiBranch,
    /// The re-parameterized form, one fused conv per block.
    Plain,
}

impl Form {
    /// Both forms, the training-time one first.
    pub const ALL: [Self; 2] = [Self::MultiBranch, Self::Plain];

    /// `multi-branch` or `plain` (also its `Display`).
    pub fn name(self) -> &'static str {
        match self {
            Form::MultiBranch => "multi-branch",
            Form::Plain => "plain",
        }
    }

    /// What a checkpoint of this form is called: `training-time` or `deployed`.
    pub fn checkpoint_name(self) -> &'static str {
        match self {
            Form::MultiBranch => "training-time",
            Form::Plain => "deployed",
        }
    }

    /// Parses a [`Form::name`]; the error lists both.
    pub fn parse(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|f| f.name() == s.trim())
            .ok_or_else(|| format!("unknown form `{s}`; expected `multi-branch` or `plain`"))
    }
}

impl fmt::Display for Form {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A straight-line program of ops over numbered values (see the [module docs](self)).
#[derive(Debug, Clone, PartialEq)]
pub struct Graph {
    form: Form,
    input_channels: usize,
    nodes: Vec<Node>,
    stage_outputs: Vec<ValueId>,
    pooled: ValueId,
    logits: ValueId,
    /// Per node: the values whose last use it is (never an output of the run).
    releases: Vec<Vec<ValueId>>,
}

impl Graph {
    /// The input value.
    pub const INPUT: ValueId = ValueId(0);

    /// The multi-branch form: per block `conv3x3 → BN`, `conv1x1 → BN`, their sum, plus `BN(x)`
    /// when the block has an identity branch, then SE (if any), ReLU; then pool and linear.
    ///
    /// Fails with a typed error naming the block when the net is malformed (see [`crate::fold`]
    /// for the same checks).
    pub fn multi_branch(net: &TrainNet) -> Result<Self, Error> {
        validate::train_net(net)?;
        let mut b = Builder::default();
        let mut x = Self::INPUT;
        let mut stage_outputs = Vec::new();
        for (i, block) in net.blocks.iter().enumerate() {
            x = b.multi_branch_block(x, block);
            if is_stage_end(net.blocks.iter().map(|b| b.spec.stage), i) {
                stage_outputs.push(x);
            }
        }
        Ok(b.finish(Form::MultiBranch, net, x, stage_outputs))
    }

    /// The plain form: per block one conv3x3 with the fused bias and ReLU in its epilogue, or,
    /// for a block with squeeze-excitation, conv3x3 + bias, SE, ReLU; then pool and linear.
    ///
    /// Fails with a typed error naming the block when the net is malformed.
    pub fn plain(net: &PlainNet) -> Result<Self, Error> {
        validate::plain_net(net)?;
        let mut b = Builder::default();
        let mut x = Self::INPUT;
        let mut stage_outputs = Vec::new();
        for (i, block) in net.blocks.iter().enumerate() {
            x = b.plain_block(x, block);
            if is_stage_end(net.blocks.iter().map(|b| b.spec.stage), i) {
                stage_outputs.push(x);
            }
        }
        Ok(b.finish(Form::Plain, net, x, stage_outputs))
    }

    /// Block `index` of a training-time net on its own, deployed in `form` as [`Graph::deployed`]
    /// deploys the whole net: the graph's input is the block's input and its one stage output
    /// the block's output. Pool and an identity classifier (`C_out` features to `C_out` logits)
    /// follow, so every engine runs it as it runs a network; they cost `C_out·(H·W + C_out)`
    /// operations, under 2 % of any RepVGG block's multiply-adds.
    ///
    /// For benchmarks and tests of one block; fails when `index` is out of range or the block
    /// is malformed.
    pub fn block(net: &TrainNet, index: usize, form: Form) -> Result<Self, Error> {
        let block = net.blocks.get(index).ok_or_else(|| {
            Error::Tensor(reparam_tensor::TensorError::invalid(
                "index",
                format!("block {index} of a net with {} blocks", net.blocks.len()),
            ))
        })?;
        validate::train_block(block)?;
        let channels = block.spec.out_channels;
        let mut eye = vec![0.0; channels * channels];
        eye.iter_mut().step_by(channels + 1).for_each(|v| *v = 1.0);
        let parts = BlockParts {
            in_channels: block.spec.in_channels,
            head: Head {
                weight: Tensor::new([channels, channels, 1, 1], eye)?,
                bias: vec![0.0; channels],
            },
        };
        let mut b = Builder::default();
        let graph = match form {
            Form::MultiBranch => {
                let x = b.multi_branch_block(Self::INPUT, block);
                b.finish(form, &parts, x, vec![x]).fold_conv_batch_norms()?
            }
            Form::Plain => {
                let x = b.plain_block(Self::INPUT, &crate::fold::fuse_block(block)?);
                b.finish(form, &parts, x, vec![x])
            }
        };
        Ok(graph)
    }

    /// Which form this graph computes.
    pub fn form(&self) -> Form {
        self.form
    }

    /// Channels the input must have.
    pub fn input_channels(&self) -> usize {
        self.input_channels
    }

    /// The nodes in execution order; node `k` has [`NodeId`]`(k)`.
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// The tolerance of this network against the f64 oracle for an engine whose least accurate
    /// algorithm has error factor `algorithm_factor`:
    /// [`Tolerance::for_network`](reparam_tensor::tolerance::Tolerance::for_network) with `K`
    /// the longest reduction (a 3x3 conv's `9·C_in/g` or the classifier's features) and `depth`
    /// the number of 3x3 convs plus the classifier.
    pub fn tolerance(&self, algorithm_factor: f64) -> reparam_tensor::tolerance::Tolerance {
        let (mut depth, mut k) = (1, 0);
        for node in &self.nodes {
            match &node.op {
                Op::Conv { layer, .. } if layer.spec.kernel == 3 => {
                    depth += 1;
                    k = k.max(layer.spec.reduction_len());
                }
                Op::Linear { head, .. } => k = k.max(head.weight.shape()[1]),
                _ => {}
            }
        }
        reparam_tensor::tolerance::Tolerance::for_network(k, algorithm_factor, depth)
    }

    /// Number of values, the input included.
    pub fn num_values(&self) -> usize {
        self.nodes.len() + 1
    }

    /// The output of the stem (index 0) and of the last block of every stage.
    pub fn stage_outputs(&self) -> &[ValueId] {
        &self.stage_outputs
    }

    /// The globally pooled features `[N, F, 1, 1]`.
    pub fn pooled(&self) -> ValueId {
        self.pooled
    }

    /// The logits `[N, classes, 1, 1]`.
    pub fn logits(&self) -> ValueId {
        self.logits
    }

    /// The values that are dead once `node` has run: it is their last reader and they are not
    /// an output of the run. Empty for an out-of-range node.
    pub fn releases(&self, node: NodeId) -> &[ValueId] {
        self.releases.get(node.0).map_or(&[], Vec::as_slice)
    }

    /// True when `value` is returned by a run (a stage output, the pooled features or the
    /// logits) and so is never released.
    pub fn is_output(&self, value: ValueId) -> bool {
        value == self.pooled || value == self.logits || self.stage_outputs.contains(&value)
    }
}

impl fmt::Display for Graph {
    /// A header line, then one line per node (see [`Node`]'s `Display`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} graph: {} nodes, input {} ({} channels), stages [{}], pooled {}, logits {}",
            self.form,
            self.nodes.len(),
            Self::INPUT,
            self.input_channels,
            self.stage_outputs
                .iter()
                .map(ValueId::to_string)
                .collect::<Vec<_>>()
                .join(", "),
            self.pooled,
            self.logits
        )?;
        for node in &self.nodes {
            writeln!(f, "{node}")?;
        }
        Ok(())
    }
}

/// True when block `i` of the sequence of stage numbers is the last of its stage.
fn is_stage_end(mut stages: impl Iterator<Item = usize>, i: usize) -> bool {
    let here = stages.nth(i);
    let next = stages.next();
    here.is_some() && next != here
}

/// What [`Builder::finish`] needs from either form of the net.
trait NetParts {
    fn in_channels(&self) -> usize;
    fn head(&self) -> &Head;
}

impl NetParts for TrainNet {
    fn in_channels(&self) -> usize {
        self.config.in_channels
    }
    fn head(&self) -> &Head {
        &self.head
    }
}

impl NetParts for PlainNet {
    fn in_channels(&self) -> usize {
        self.config.in_channels
    }
    fn head(&self) -> &Head {
        &self.head
    }
}

/// The input width and classifier of a one-block graph ([`Graph::block`]).
struct BlockParts {
    in_channels: usize,
    head: Head,
}

impl NetParts for BlockParts {
    fn in_channels(&self) -> usize {
        self.in_channels
    }
    fn head(&self) -> &Head {
        &self.head
    }
}

/// Appends nodes, numbering their outputs `v1, v2, …`.
#[derive(Default)]
struct Builder {
    nodes: Vec<Node>,
}

impl Builder {
    fn push(&mut self, label: String, op: Op) -> ValueId {
        let output = ValueId(self.nodes.len() + 1);
        self.nodes.push(Node { op, output, label });
        output
    }

    /// One multi-branch block on `x`: `conv3x3 → BN`, `conv1x1 → BN`, their sum, `+ BN(x)` when
    /// the block has an identity branch, then `[SE →] ReLU`. Returns the block's output.
    fn multi_branch_block(&mut self, x: ValueId, block: &TrainBlock) -> ValueId {
        let spec = block.spec;
        let name = spec.official_prefix();
        let conv = |b: &mut Builder, label: &str, spec: ConvSpec, weight: &Tensor| {
            let layer = ConvLayer {
                spec,
                weight: weight.clone(),
                epilogue: Epilogue::none(),
            };
            b.push(format!("{name}.{label}"), Op::Conv { input: x, layer })
        };
        let bn = |b: &mut Builder, label: &str, input: ValueId, bn: &BatchNorm| {
            let op = Op::BatchNorm {
                input,
                bn: bn.clone(),
            };
            b.push(format!("{name}.{label}"), op)
        };
        let dense = conv(self, "rbr_dense.conv", spec.conv3x3(), &block.dense.weight);
        let dense = bn(self, "rbr_dense.bn", dense, &block.dense.bn);
        let point = conv(
            self,
            "rbr_1x1.conv",
            spec.conv1x1(),
            &block.pointwise.weight,
        );
        let point = bn(self, "rbr_1x1.bn", point, &block.pointwise.bn);
        let mut sum = self.push(
            format!("{name}.add"),
            Op::Add {
                lhs: dense,
                rhs: point,
            },
        );
        if let Some(id_bn) = &block.identity {
            let id = bn(self, "rbr_identity", x, id_bn);
            sum = self.push(format!("{name}.add"), Op::Add { lhs: sum, rhs: id });
        }
        self.block_tail(&name, sum, block.se.as_ref())
    }

    /// One deployed block on `x`: conv3x3 with the fused bias (and ReLU in its epilogue), or,
    /// with squeeze-excitation, conv3x3 + bias, SE, ReLU. Returns the block's output.
    fn plain_block(&mut self, x: ValueId, block: &PlainBlock) -> ValueId {
        let name = block.spec.official_prefix();
        let layer = ConvLayer {
            spec: block.spec.conv3x3(),
            weight: block.weight.clone(),
            epilogue: Epilogue {
                bias: Some(block.bias.clone()),
                relu: block.se.is_none(),
            },
        };
        let conv = self.push(format!("{name}.rbr_reparam"), Op::Conv { input: x, layer });
        match &block.se {
            Some(se) => self.block_tail(&name, conv, Some(se)),
            None => conv,
        }
    }

    /// `[SE →] ReLU` on a block's pre-activation.
    fn block_tail(&mut self, name: &str, pre: ValueId, se: Option<&SeWeights>) -> ValueId {
        let pre = match se {
            Some(se) => self.push(
                format!("{name}.se"),
                Op::SqueezeExcite {
                    input: pre,
                    se: se.clone(),
                },
            ),
            None => pre,
        };
        self.push(format!("{name}.relu"), Op::Relu { input: pre })
    }

    /// Appends pool and linear on `features` and computes the release lists.
    fn finish(
        mut self,
        form: Form,
        net: &impl NetParts,
        features: ValueId,
        stage_outputs: Vec<ValueId>,
    ) -> Graph {
        let pooled = self.push("gap".into(), Op::GlobalAvgPool { input: features });
        let head = net.head().clone();
        let logits = self.push(
            "linear".into(),
            Op::Linear {
                input: pooled,
                head,
            },
        );
        let mut graph = Graph {
            form,
            input_channels: net.in_channels(),
            nodes: self.nodes,
            stage_outputs,
            pooled,
            logits,
            releases: Vec::new(),
        };
        graph.releases = last_uses(&graph);
        graph
    }
}

/// Per node, the non-output values whose last reader it is. A value nobody reads (none in the
/// graphs built here) is released right after the node that defines it.
fn last_uses(graph: &Graph) -> Vec<Vec<ValueId>> {
    // last[v] = index of the last node that reads or defines v (the input counts as defined
    // "before" node 0).
    let mut last = vec![0usize; graph.num_values()];
    for (k, node) in graph.nodes.iter().enumerate() {
        last[node.output.0] = k;
        for v in node.op.inputs() {
            last[v.0] = k;
        }
    }
    let mut releases = vec![Vec::new(); graph.nodes.len()];
    for (v, &k) in last.iter().enumerate() {
        let value = ValueId(v);
        if !graph.is_output(value)
            && let Some(list) = releases.get_mut(k)
        {
            list.push(value);
        }
    }
    releases
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, StageConfig};
    use crate::fold::fuse;

    fn tiny(se: Option<usize>) -> TrainNet {
        let config = Config::custom(
            4,
            vec![
                StageConfig::dense(8, 2),
                StageConfig {
                    width: 8,
                    groups: vec![1, 2, 8],
                },
            ],
            3,
            se,
        )
        .unwrap();
        TrainNet::random(&config, 3)
    }

    fn kinds(graph: &Graph) -> Vec<&'static str> {
        graph.nodes().iter().map(|n| n.op.kind()).collect()
    }

    #[test]
    fn multi_branch_ops_per_block() {
        let g = Graph::multi_branch(&tiny(None)).unwrap();
        let no_id = [
            "conv3x3",
            "batch_norm",
            "conv1x1",
            "batch_norm",
            "add",
            "relu",
        ];
        let id = [
            "conv3x3",
            "batch_norm",
            "conv1x1",
            "batch_norm",
            "add",
            "batch_norm",
            "add",
            "relu",
        ];
        // stem, stage1.0 (stride 2), stage1.1 (id), stage2.0 (stride 2), stage2.1, stage2.2 (id)
        let mut want: Vec<&str> = Vec::new();
        for block in [&no_id[..], &no_id, &id, &no_id, &id, &id] {
            want.extend(block);
        }
        want.extend(["global_avg_pool", "linear"]);
        assert_eq!(kinds(&g), want);
        assert_eq!(g.form(), Form::MultiBranch);
        assert_eq!(g.input_channels(), 3);
        assert_eq!(g.stage_outputs().len(), 3);
        // Stage outputs are the ReLUs ending the stem, stage1.1 and stage2.2.
        for (&v, label) in
            g.stage_outputs()
                .iter()
                .zip(["stage0.relu", "stage1.1.relu", "stage2.2.relu"])
        {
            assert_eq!(g.nodes()[v.0 - 1].label, label);
        }
        assert_eq!(g.logits(), ValueId(g.num_values() - 1));
        assert_eq!(g.pooled(), ValueId(g.num_values() - 2));
    }

    #[test]
    fn plain_ops_per_block_with_and_without_se() {
        let g = Graph::plain(&fuse(&tiny(None)).unwrap()).unwrap();
        let mut want = vec!["conv3x3"; 6];
        want.extend(["global_avg_pool", "linear"]);
        assert_eq!(kinds(&g), want);
        let Op::Conv { layer, .. } = &g.nodes()[0].op else {
            panic!("first op is a conv");
        };
        assert!(layer.epilogue.relu && layer.epilogue.bias.is_some());
        assert_eq!(g.nodes()[5].label, "stage2.2.rbr_reparam");

        let g = Graph::plain(&fuse(&tiny(Some(4))).unwrap()).unwrap();
        let mut want = Vec::new();
        for _ in 0..6 {
            want.extend(["conv3x3", "squeeze_excite", "relu"]);
        }
        want.extend(["global_avg_pool", "linear"]);
        assert_eq!(kinds(&g), want);
        let Op::Conv { layer, .. } = &g.nodes()[0].op else {
            panic!("first op is a conv");
        };
        assert!(!layer.epilogue.relu && layer.epilogue.bias.is_some());

        let g = Graph::multi_branch(&tiny(Some(4))).unwrap();
        let tail: Vec<_> = kinds(&g)[4..7].to_vec();
        assert_eq!(tail, ["add", "squeeze_excite", "relu"]);
    }

    #[test]
    fn one_block_graphs_compute_the_block_in_both_forms() {
        use crate::exec::{Executor, Outputs};
        use reparam_tensor::rng::SplitMix64;
        let net = tiny(None);
        // stage2.2: 8→8, stride 1, groups 8, with an identity branch.
        let index = 5;
        let spec = net.blocks[index].spec;
        let mut rng = SplitMix64::new(7);
        let input = Tensor::new([2, 8, 5, 6], rng.uniform_vec(2 * 8 * 30, -1.0, 1.0)).unwrap();
        let mut outputs = Vec::new();
        for form in [Form::MultiBranch, Form::Plain] {
            let g = Graph::block(&net, index, form).unwrap();
            assert_eq!((g.form(), g.input_channels()), (form, spec.in_channels));
            assert_eq!(g.stage_outputs().len(), 1);
            let out = Executor::reference(&g)
                .unwrap()
                .with_outputs(Outputs::ALL)
                .run(&input)
                .unwrap();
            // The identity classifier returns the pooled features.
            assert_eq!(Some(&out.logits), out.pooled.as_ref());
            outputs.push(out.stages[0].clone());
        }
        assert_eq!(outputs[0].shape(), [2, 8, 5, 6]);
        let cmp = reparam_tensor::tolerance::compare(&outputs[1], &outputs[0]).unwrap();
        assert!(cmp.rel_l2 < 1e-5, "plain vs multi-branch block: {cmp}");
        // The multi-branch block as a deploying engine runs it: BN folded into both convs.
        let kinds = kinds(&Graph::block(&net, index, Form::MultiBranch).unwrap());
        assert_eq!(
            kinds,
            [
                "conv3x3",
                "conv1x1",
                "add",
                "batch_norm",
                "add",
                "relu",
                "global_avg_pool",
                "linear"
            ]
        );
        let err = Graph::block(&net, 6, Form::Plain).unwrap_err().to_string();
        assert!(err.contains("block 6 of a net with 6 blocks"), "{err}");
    }

    #[test]
    fn every_value_is_defined_before_use_and_released_once() {
        for g in [
            Graph::multi_branch(&tiny(Some(4))).unwrap(),
            Graph::plain(&fuse(&tiny(None)).unwrap()).unwrap(),
        ] {
            let mut released = vec![false; g.num_values()];
            for (k, node) in g.nodes().iter().enumerate() {
                assert_eq!(node.output, ValueId(k + 1));
                for v in node.op.inputs() {
                    assert!(v.0 <= k, "{node} reads a later value");
                    assert!(!released[v.0], "{node} reads released {v}");
                }
                for &v in g.releases(NodeId(k)) {
                    assert!(!released[v.0] && !g.is_output(v));
                    released[v.0] = true;
                }
            }
            // Everything but the outputs is released, the input included.
            for (v, &r) in released.iter().enumerate() {
                assert_eq!(r, !g.is_output(ValueId(v)), "v{v}");
            }
        }
    }

    #[test]
    fn display_describes_every_node() {
        let g = Graph::plain(&fuse(&tiny(Some(4))).unwrap()).unwrap();
        let text = g.to_string();
        assert!(text.starts_with("plain graph: 20 nodes"), "{text}");
        assert!(
            text.contains("v1 = conv3x3 3→4 s2 g1 +bias (v0)  [stage0.rbr_reparam]"),
            "{text}"
        );
        assert!(text.contains("squeeze_excite 8→2→8 (v"), "{text}");
        assert!(text.contains("linear 8→3 (v19)  [linear]"), "{text}");
    }

    #[test]
    fn malformed_nets_are_rejected() {
        let mut net = tiny(None);
        net.blocks[4].identity = None;
        let err = Graph::multi_branch(&net).unwrap_err().to_string();
        assert!(
            err.contains("stage2.1") && err.contains("identity"),
            "{err}"
        );
        let mut plain = fuse(&tiny(None)).unwrap();
        plain.blocks[2].bias.pop();
        let err = Graph::plain(&plain).unwrap_err().to_string();
        assert!(err.contains("stage1.1") && err.contains("bias"), "{err}");
        let mut plain = fuse(&tiny(None)).unwrap();
        plain.head.bias.push(0.0);
        assert!(Graph::plain(&plain).is_err());
    }
}
