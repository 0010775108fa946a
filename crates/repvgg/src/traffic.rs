//! The analytic cost model of a run: floating-point operations and memory traffic per op.
//!
//! Every op reads each of its operands once, reads its parameters once and writes its result
//! once; activations and parameters are `f32` (4 bytes) at their logical size `N·C·H·W` (the
//! padding lanes of a channel-blocked layout and the scratch of a Winograd transform are not
//! counted). So for a conv `x ∈ [N, C, H, W] → y ∈ [N, K, H', W']` with weights
//! `[K, C/g, k, k]` and bias: `read = 4·N·C·H·W`, `weights = 4·(K·C/g·k² + K)`,
//! `write = 4·N·K·H'·W'`. An add reads two operands; an inference BN reads its per-channel
//! scale and shift (`8·C`); ReLU and pooling have no parameters.
//!
//! This counts the traffic an op cannot avoid when its operands do not fit in cache and no two
//! ops are fused — the quantity the RepVGG paper's memory argument is about (a multi-branch block
//! keeps its input alive until the add and writes three branch outputs; a plain block writes one).
//! Checked against a cache simulator in `docs/memory-traffic.md`.
//!
//! FLOPs count a multiply-add as 2: a conv `2·N·K·H'·W'·(C/g)·k²` plus one add per output for
//! the bias; affine 2 per element, add and ReLU 1, pooling 1 per input element, the classifier
//! `2·N·M·F + N·M`, squeeze-excitation its two dense layers plus the pooling and scaling.

use crate::error::Error;
use crate::graph::{Graph, Op};
use reparam_tensor::Shape;

/// The cost of one op of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpCost {
    /// Where it sits in the network.
    pub label: String,
    /// [`Op::kind`].
    pub kind: &'static str,
    /// The shape it writes.
    pub output_shape: Shape,
    /// Floating-point operations (a multiply-add is 2).
    pub flops: u64,
    /// Bytes of activations it reads.
    pub read_bytes: u64,
    /// Bytes of parameters it reads.
    pub weight_bytes: u64,
    /// Bytes it writes.
    pub write_bytes: u64,
}

impl OpCost {
    /// Bytes moved: activations read and written plus parameters read.
    pub fn bytes_moved(&self) -> u64 {
        self.read_bytes + self.weight_bytes + self.write_bytes
    }
}

/// The per-op costs of running `graph` on an input of shape `input` (model of the
/// [module docs](self)).
pub fn op_costs(graph: &Graph, input: Shape) -> Result<Vec<OpCost>, Error> {
    let shapes = graph.value_shapes(input)?;
    let numel = |s: Shape| s.iter().map(|&d| d as u64).product::<u64>();
    Ok(graph
        .nodes()
        .iter()
        .map(|node| {
            let ins = node.op.inputs();
            let x = shapes[ins[0].0];
            let y = shapes[node.output.0];
            let (nx, ny) = (numel(x), numel(y));
            let read: u64 = ins.iter().map(|v| numel(shapes[v.0])).sum();
            let n = x[0] as u64;
            let (flops, params) = match &node.op {
                Op::Conv { layer, .. } => {
                    let weights = layer.weight.len() as u64;
                    let bias = layer.epilogue.bias.as_ref().map_or(0, |b| b.len() as u64);
                    let per_output = (weights / layer.spec.out_channels as u64) * 2;
                    let bias_flops = if bias > 0 { ny } else { 0 };
                    (ny * per_output + bias_flops, weights + bias)
                }
                Op::BatchNorm { bn, .. } => (2 * nx, 2 * bn.gamma.len() as u64),
                Op::Add { .. } | Op::Relu { .. } => (ny, 0),
                Op::GlobalAvgPool { .. } => (nx, 0),
                Op::SqueezeExcite { se, .. } => {
                    let down = se.down_weight.len() as u64;
                    let up = se.up_weight.len() as u64;
                    let biases = (se.down_bias.len() + se.up_bias.len()) as u64;
                    (nx + 2 * n * (down + up) + nx, down + up + biases)
                }
                Op::Linear { head, .. } => {
                    let w = head.weight.len() as u64;
                    (2 * n * w + ny, w + head.bias.len() as u64)
                }
            };
            OpCost {
                label: node.label.clone(),
                kind: node.op.kind(),
                output_shape: y,
                flops,
                read_bytes: 4 * read,
                weight_bytes: 4 * params,
                write_bytes: 4 * ny,
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, StageConfig};
    use crate::fold::fuse;
    use crate::net::TrainNet;

    #[test]
    fn a_plain_conv_costs_what_the_formula_says() {
        let config = Config::custom(4, vec![StageConfig::dense(8, 1)], 5, None).unwrap();
        let train = TrainNet::random(&config, 1);
        let graph = Graph::plain(&fuse(&train).unwrap()).unwrap();
        let costs = op_costs(&graph, [2, 3, 8, 8]).unwrap();
        let stem = &costs[0];
        // 3 → 4 channels, 8x8 → 4x4 (stride 2): 27 weights + 1 bias per output channel.
        assert_eq!(stem.output_shape, [2, 4, 4, 4]);
        assert_eq!(stem.read_bytes, 4 * 2 * 3 * 64);
        assert_eq!(stem.weight_bytes, 4 * (4 * 27 + 4));
        assert_eq!(stem.write_bytes, 4 * 2 * 4 * 16);
        assert_eq!(stem.flops, 2 * 4 * 16 * 27 * 2 + 2 * 4 * 16);
        let kinds: Vec<_> = costs.iter().map(|c| c.kind).collect();
        assert_eq!(kinds, ["conv3x3", "conv3x3", "global_avg_pool", "linear"]);
        assert_eq!(costs[3].weight_bytes, 4 * (5 * 8 + 5));
    }

    #[test]
    fn the_multi_branch_form_moves_more_bytes() {
        let config = Config::official("a0").unwrap();
        let train = TrainNet::random(&config, 1);
        let total = |g: &Graph| -> u64 {
            op_costs(g, [1, 3, 224, 224])
                .unwrap()
                .iter()
                .map(OpCost::bytes_moved)
                .sum()
        };
        let plain = total(&Graph::plain(&fuse(&train).unwrap()).unwrap());
        let multi = Graph::multi_branch(&train).unwrap();
        let folded = total(&multi.fold_conv_batch_norms().unwrap());
        assert!(folded > 2 * plain, "{folded} vs {plain}");
        assert!(total(&multi) > folded);
    }
}
