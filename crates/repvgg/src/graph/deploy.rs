//! Graph passes a deploying engine applies: [`Graph::fold_conv_batch_norms`] and the shape
//! inference [`Graph::value_shapes`].

use super::{ConvLayer, Graph, Node, Op, ValueId, last_uses};
use crate::error::Error;
use reparam_tensor::{Epilogue, Shape, Tensor, TensorError};

impl Graph {
    /// The graph a deploying engine runs for `form` of a training-time net: the plain form of its
    /// re-parameterization ([`crate::fuse`]), or the multi-branch form with each branch's BN
    /// folded into its conv ([`Graph::fold_conv_batch_norms`]).
    pub fn deployed(net: &crate::net::TrainNet, form: super::Form) -> Result<Graph, Error> {
        match form {
            super::Form::Plain => Graph::plain(&crate::fold::fuse(net)?),
            super::Form::MultiBranch => Graph::multi_branch(net)?.fold_conv_batch_norms(),
        }
    }

    /// The same network with every `conv → BN` pair whose conv output only that BN reads folded
    /// into one conv with bias, as an inference engine runs a trained network:
    ///
    /// `BN(conv(x; W) + b) = conv(x; t·W) + (t·b + s)` per output channel `o`, with
    /// `t = γ/√(σ² + ε)` and `s = β − μ·t` (computed in f64, rounded once).
    ///
    /// The multi-branch form then runs, per block, `conv3x3 + bias`, `conv1x1 + bias`, the
    /// identity BN as a per-channel affine, the adds and the ReLU, each still its own op. Other
    /// nodes are kept; values are renumbered. Fails when a BN's statistics are not finite.
    pub fn fold_conv_batch_norms(&self) -> Result<Graph, Error> {
        let mut readers = vec![0usize; self.num_values()];
        for node in &self.nodes {
            for v in node.op.inputs() {
                readers[v.0] += 1;
            }
        }
        // The node defining each value (`None` for the input).
        let mut defined_by = vec![None; self.num_values()];
        for (k, node) in self.nodes.iter().enumerate() {
            defined_by[node.output.0] = Some(k);
        }
        // absorbed_by[conv node] = the BN node it folds into.
        let mut absorbed_by = vec![None; self.nodes.len()];
        for (k, node) in self.nodes.iter().enumerate() {
            if let Op::BatchNorm { input, .. } = &node.op
                && let Some(d) = defined_by[input.0]
                && readers[input.0] == 1
                && !self.is_output(*input)
                && matches!(&self.nodes[d].op, Op::Conv { layer, .. } if !layer.epilogue.relu)
            {
                absorbed_by[d] = Some(k);
            }
        }
        let mut nodes: Vec<Node> = Vec::with_capacity(self.nodes.len());
        let mut renumber = vec![ValueId(0); self.num_values()];
        let mut folded_into: Vec<Option<usize>> = vec![None; self.nodes.len()];
        for (d, k) in absorbed_by.iter().enumerate() {
            if let Some(k) = *k {
                folded_into[k] = Some(d);
            }
        }
        for (k, node) in self.nodes.iter().enumerate() {
            if absorbed_by[k].is_some() {
                continue;
            }
            let (op, label) = match (&node.op, folded_into[k]) {
                (Op::BatchNorm { bn, .. }, Some(d)) => {
                    let Op::Conv { input, layer } = &self.nodes[d].op else {
                        unreachable!("only conv nodes are absorbed");
                    };
                    let op = Op::Conv {
                        input: renumber[input.0],
                        layer: fold_layer(layer, bn)?,
                    };
                    let label = folded_label(&node.label).unwrap_or_else(|| node.label.clone());
                    (op, label)
                }
                (op, _) => (renumber_op(op, &renumber), node.label.clone()),
            };
            let output = ValueId(nodes.len() + 1);
            nodes.push(Node { op, output, label });
            renumber[node.output.0] = output;
        }
        let mut graph = Graph {
            form: self.form,
            input_channels: self.input_channels,
            nodes,
            stage_outputs: self.stage_outputs.iter().map(|&v| renumber[v.0]).collect(),
            pooled: renumber[self.pooled.0],
            logits: renumber[self.logits.0],
            releases: Vec::new(),
        };
        graph.releases = last_uses(&graph);
        Ok(graph)
    }

    /// The shape of every value for an input of shape `input` (index = [`ValueId`]), checking
    /// every op's operands; a typed error names the node whose operands do not fit.
    pub fn value_shapes(&self, input: Shape) -> Result<Vec<Shape>, Error> {
        let mut shapes = vec![[0; 4]; self.num_values()];
        shapes[0] = input;
        for node in &self.nodes {
            let x = shapes[node.op.inputs()[0].0];
            let [n, c, h, w] = x;
            let mismatch = |expected: Shape| -> Error {
                TensorError::ShapeMismatch {
                    operand: "input",
                    expected: expected.to_vec(),
                    actual: x.to_vec(),
                }
                .into()
            };
            let shape = match &node.op {
                Op::Conv { layer, .. } => layer.spec.output_shape(x)?,
                Op::BatchNorm { bn, .. } => {
                    if bn.channels()? != c {
                        return Err(mismatch([n, bn.channels()?, h, w]));
                    }
                    x
                }
                Op::Add { rhs, .. } => {
                    if shapes[rhs.0] != x {
                        return Err(mismatch(shapes[rhs.0]));
                    }
                    x
                }
                Op::Relu { .. } => x,
                Op::SqueezeExcite { se, .. } => {
                    let channels = se.down_weight.shape()[1];
                    if channels != c {
                        return Err(mismatch([n, channels, h, w]));
                    }
                    x
                }
                Op::GlobalAvgPool { .. } => [n, c, 1, 1],
                Op::Linear { head, .. } => {
                    let [m, features, _, _] = head.weight.shape();
                    if [c, h, w] != [features, 1, 1] {
                        return Err(mismatch([n, features, 1, 1]));
                    }
                    [n, m, 1, 1]
                }
            };
            shapes[node.output.0] = shape;
        }
        Ok(shapes)
    }
}

/// `stage1.0.rbr_dense.bn` → `stage1.0.rbr_dense` (the folded conv takes the branch's name).
fn folded_label(bn_label: &str) -> Option<String> {
    bn_label.strip_suffix(".bn").map(str::to_owned)
}

/// The op with its operands renumbered.
fn renumber_op(op: &Op, renumber: &[ValueId]) -> Op {
    let m = |v: &ValueId| renumber[v.0];
    match op {
        Op::Conv { input, layer } => Op::Conv {
            input: m(input),
            layer: layer.clone(),
        },
        Op::BatchNorm { input, bn } => Op::BatchNorm {
            input: m(input),
            bn: bn.clone(),
        },
        Op::Add { lhs, rhs } => Op::Add {
            lhs: m(lhs),
            rhs: m(rhs),
        },
        Op::Relu { input } => Op::Relu { input: m(input) },
        Op::SqueezeExcite { input, se } => Op::SqueezeExcite {
            input: m(input),
            se: se.clone(),
        },
        Op::GlobalAvgPool { input } => Op::GlobalAvgPool { input: m(input) },
        Op::Linear { input, head } => Op::Linear {
            input: m(input),
            head: head.clone(),
        },
    }
}

/// `conv(x; W) + b` followed by `BN` as one conv: `W' = t·W`, `b' = t·b + s` per output channel.
fn fold_layer(layer: &ConvLayer, bn: &reparam_tensor::BatchNorm) -> Result<ConvLayer, Error> {
    let (scale, shift) = bn.scale_shift()?;
    let out = layer.spec.out_channels;
    if scale.len() != out {
        return Err(TensorError::ShapeMismatch {
            operand: "bn",
            expected: vec![out],
            actual: vec![scale.len()],
        }
        .into());
    }
    let per_out = layer.weight.len() / out;
    let weight: Vec<f32> = layer
        .weight
        .data()
        .iter()
        .enumerate()
        .map(|(i, &w)| (f64::from(w) * scale[i / per_out]) as f32)
        .collect();
    let bias = (0..out)
        .map(|o| {
            let b = layer
                .epilogue
                .bias
                .as_ref()
                .map_or(0.0, |b| f64::from(b[o]));
            (scale[o] * b + shift[o]) as f32
        })
        .collect();
    Ok(ConvLayer {
        spec: layer.spec,
        weight: Tensor::new(layer.weight.shape(), weight)?,
        epilogue: Epilogue {
            bias: Some(bias),
            relu: false,
        },
    })
}
