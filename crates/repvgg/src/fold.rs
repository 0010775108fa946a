//! Structural re-parameterization: fold each multi-branch block into one 3x3 conv + bias.
//!
//! # Equations (`docs/repvgg.md#fold-equations`)
//!
//! Notation for one block: `C_in`, `C_out`, groups `g`, input channels per group `d = C_in / g`.
//! Each branch `b ∈ {3, 1, id}` ends in a batch norm `(γ_b, β_b, μ_b, σ²_b, ε_b)`, which in
//! inference mode is the per-output-channel affine map `BN_b(z)[o] = t_b[o]·z[o] + s_b[o]` with
//!
//! ```text
//! t_b[o] = γ_b[o] / √(σ²_b[o] + ε_b)          (each BN's own ε)
//! s_b[o] = β_b[o] − μ_b[o]·t_b[o]
//! ```
//!
//! (both from [`BatchNorm::scale_shift`]). Convolution is linear in its kernel and all three
//! branches share the stride and the groups, so the block's pre-activation is one 3x3 conv
//! (padding 1) with
//!
//! ```text
//! K[o,i,u,v] = t_3[o]·W3[o,i,u,v] + t_1[o]·P(W1)[o,i,u,v] + t_id[o]·E[o,i,u,v]
//! b[o]       = s_3[o] + s_1[o] + s_id[o]
//! ```
//!
//! - `P(W1)` zero-pads the 1x1 kernel to 3x3: `P(W1)[o,i,1,1] = W1[o,i,0,0]`, zero elsewhere.
//!   A 1x1 conv with padding 0 and stride `s` reads input `(s·y, s·x)`, exactly the centre tap of
//!   a 3x3 conv with padding 1 and the same stride.
//! - `E` is the identity as a grouped 3x3 kernel: `E[o,i,u,v] = 1` iff `i = o mod d` and
//!   `(u,v) = (1,1)`. Output channel `o` lies in group `⌊o/d⌋` (identity blocks have
//!   `C_in = C_out`), whose local input `o mod d` is global input channel `o`; so this is the
//!   identity map for every group count, dense (`g = 1`) through depthwise (`d = 1`).
//! - An absent identity branch (stride 2 or `C_in ≠ C_out`) contributes 0 to `K` and `b`.
//!
//! The block is then `y = ReLU(conv3x3(x; K, stride, groups) + b)`, or `ReLU(SE(conv + b))` with
//! squeeze-excitation, whose weights are copied unchanged.
//!
//! # Precision
//! `t`, `s`, every product and both sums are evaluated in `f64` and rounded to `f32` once, so
//! each fused weight and bias is within half an `f32` ulp of the exact value (PyTorch folds in
//! `f32` and rounds after every step).

use crate::error::Error;
use crate::graph::validate;
use crate::net::{PlainBlock, PlainNet, TrainBlock, TrainNet};
use reparam_tensor::BatchNorm;
use reparam_tensor::Tensor;

/// Folds every block of `net` (equations in the [module docs](self)), in `f64`, rounded to `f32`
/// once. The head and the squeeze-excitation weights are copied.
///
/// Fails with a typed error naming the block and field when the net is malformed (a shape that
/// disagrees with its spec, blocks that disagree with the config) or holds a non-finite value,
/// and when a fused value overflows `f32`.
pub fn fuse(net: &TrainNet) -> Result<PlainNet, Error> {
    validate::train_net(net)?;
    let blocks = net
        .blocks
        .iter()
        .map(fold_block)
        .collect::<Result<_, _>>()?;
    Ok(PlainNet {
        config: net.config.clone(),
        blocks,
        head: net.head.clone(),
    })
}

/// Folds one block (equations in the [module docs](self)); checks the block against its own
/// spec first, like [`fuse`] does for a whole net.
pub fn fuse_block(block: &TrainBlock) -> Result<PlainBlock, Error> {
    validate::train_block(block)?;
    fold_block(block)
}

/// The fold of one validated block.
fn fold_block(block: &TrainBlock) -> Result<PlainBlock, Error> {
    let spec = block.spec;
    let name = spec.official_prefix();
    let affine = |field: &'static str, bn: &BatchNorm| {
        bn.scale_shift()
            .map_err(|e| validate::block_error(&name, field, e.to_string()))
    };
    let (t3, s3) = affine("dense.bn", &block.dense.bn)?;
    let (t1, s1) = affine("pointwise.bn", &block.pointwise.bn)?;
    let identity = match &block.identity {
        Some(bn) => Some(affine("identity", bn)?),
        None => None,
    };

    let shape = spec.conv3x3().weight_shape();
    let mut kernel = vec![0.0f64; shape.iter().product()];
    add_dense(&mut kernel, block.dense.weight.data(), &t3);
    add_pointwise(&mut kernel, block.pointwise.weight.data(), &t1);
    let mut bias: Vec<f64> = s3.iter().zip(&s1).map(|(a, b)| a + b).collect();
    if let Some((t_id, s_id)) = &identity {
        add_identity(&mut kernel, spec.conv3x3().in_per_group(), t_id);
        bias.iter_mut().zip(s_id).for_each(|(b, s)| *b += s);
    }

    let weight = Tensor::new(shape, round(kernel))?;
    let bias = round(bias);
    validate::finite(
        &name,
        "weight",
        "the fused kernel (f32 overflow)",
        weight.data(),
    )?;
    validate::finite(&name, "bias", "the fused bias (f32 overflow)", &bias)?;
    Ok(PlainBlock {
        spec,
        weight,
        bias,
        se: block.se.clone(),
    })
}

/// Elements of one output channel of a 3x3 kernel, `d·9`, given the kernel's length and `C_out`.
fn per_out_channel(kernel_len: usize, out_channels: usize) -> usize {
    kernel_len / out_channels
}

/// `K[o,i,u,v] += t_3[o]·W3[o,i,u,v]`, with `W3` of shape `[C_out, d, 3, 3]` in NCHW order (the
/// same layout as `K`).
fn add_dense(kernel: &mut [f64], w3: &[f32], t3: &[f64]) {
    let per_o = per_out_channel(kernel.len(), t3.len());
    for (o, (k_o, w_o)) in kernel
        .chunks_exact_mut(per_o)
        .zip(w3.chunks_exact(per_o))
        .enumerate()
    {
        for (k, &w) in k_o.iter_mut().zip(w_o) {
            *k += t3[o] * f64::from(w);
        }
    }
}

/// `K[o,i,1,1] += t_1[o]·W1[o,i,0,0]`: the 1x1 kernel `[C_out, d, 1, 1]` zero-padded to 3x3, so
/// it lands on the centre tap (flat offset 4 of each 3x3 plane).
fn add_pointwise(kernel: &mut [f64], w1: &[f32], t1: &[f64]) {
    let d = w1.len() / t1.len();
    for (plane, (oi, &w)) in kernel.chunks_exact_mut(9).zip(w1.iter().enumerate()) {
        plane[4] += t1[oi / d] * f64::from(w);
    }
}

/// `K[o, o mod d, 1, 1] += t_id[o]`: the identity map as a grouped 3x3 kernel with `d` input
/// channels per group (`C_in = C_out = t_id.len()`).
fn add_identity(kernel: &mut [f64], d: usize, t_id: &[f64]) {
    for (o, &t) in t_id.iter().enumerate() {
        kernel[(o * d + o % d) * 9 + 4] += t;
    }
}

/// Rounds each value to the nearest `f32` (the one rounding of the fold).
fn round(values: Vec<f64>) -> Vec<f32> {
    values.into_iter().map(|v| v as f32).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{BlockSpec, Config, StageConfig};
    use crate::net::ConvBn;
    use reparam_tensor::BatchNorm;
    use reparam_tensor::reference;
    use reparam_tensor::rng::SplitMix64;
    use reparam_tensor::tolerance::{Tolerance, assert_close};
    use reparam_tensor::{ConvSpec, Epilogue, TensorError};

    /// One channel, stride 1: every branch present, every BN with its own ε chosen so that
    /// `σ² + ε` is a perfect square and every number below is exact in binary.
    fn hand_block() -> TrainBlock {
        let bn = |gamma: f32, beta: f32, mean: f32, var: f32, eps: f64| BatchNorm {
            gamma: vec![gamma],
            beta: vec![beta],
            mean: vec![mean],
            var: vec![var],
            eps,
        };
        TrainBlock {
            spec: BlockSpec {
                stage: 1,
                index: 1,
                in_channels: 1,
                out_channels: 1,
                stride: 1,
                groups: 1,
                identity: true,
                se_hidden: None,
            },
            dense: ConvBn {
                weight: Tensor::new([1, 1, 3, 3], (1..=9).map(|v| v as f32 / 8.0).collect())
                    .unwrap(),
                // t3 = 3 / √(3.5 + 0.5) = 1.5, s3 = 0.5 − 1·1.5 = −1
                bn: bn(3.0, 0.5, 1.0, 3.5, 0.5),
            },
            pointwise: ConvBn {
                weight: Tensor::new([1, 1, 1, 1], vec![3.0]).unwrap(),
                // t1 = 1 / √(0.125 + 0.125) = 2, s1 = 0.25 − 0.5·2 = −0.75
                bn: bn(1.0, 0.25, 0.5, 0.125, 0.125),
            },
            // t_id = 1.5 / √(8 + 1) = 0.5, s_id = 1 − (−2)·0.5 = 2
            identity: Some(bn(1.5, 1.0, -2.0, 8.0, 1.0)),
            se: None,
        }
    }

    #[test]
    fn hand_checked_block() {
        let plain = fuse_block(&hand_block()).unwrap();
        // K = 1.5·W3 + centre (2·3 + 0.5); W3 = (1..9)/8 so the centre W3 tap is 5/8.
        let mut expect: Vec<f32> = (1..=9).map(|v| 1.5 * v as f32 / 8.0).collect();
        expect[4] = 1.5 * 5.0 / 8.0 + 6.0 + 0.5;
        assert_eq!(plain.weight.shape(), [1, 1, 3, 3]);
        assert_eq!(plain.weight.data(), expect.as_slice());
        // b = −1 − 0.75 + 2
        assert_eq!(plain.bias, vec![0.25]);

        // Without the identity branch (as if stride 2): no 0.5 on the centre, no +2 on the bias.
        let mut no_id = hand_block();
        no_id.spec.stride = 2;
        no_id.spec.identity = false;
        no_id.identity = None;
        let plain = fuse_block(&no_id).unwrap();
        expect[4] -= 0.5;
        assert_eq!(plain.weight.data(), expect.as_slice());
        assert_eq!(plain.bias, vec![-1.75]);
    }

    #[test]
    fn identity_kernel_for_every_group_count() {
        let c = 8;
        let mut rng = SplitMix64::new(5);
        let x = Tensor::new([2, c, 5, 4], rng.uniform_vec(2 * c * 20, -2.0, 2.0)).unwrap();
        let t: Vec<f64> = (0..c).map(|o| 0.25 * (o + 1) as f64).collect();
        for groups in [1, 2, 4, c] {
            let spec = ConvSpec::conv3x3(c, c, 1, groups);
            let d = spec.in_per_group();
            let mut kernel = vec![0.0; c * d * 9];
            add_identity(&mut kernel, d, &t);
            // Exactly one non-zero per output channel, at [o, o mod d, 1, 1].
            for (idx, &k) in kernel.iter().enumerate() {
                let (o, i, tap) = (idx / (d * 9), (idx / 9) % d, idx % 9);
                let want = if i == o % d && tap == 4 { t[o] } else { 0.0 };
                assert_eq!(k, want, "groups {groups}, [{o}, {i}, tap {tap}]");
            }
            // As a grouped conv it maps x[n, o] to t[o]·x[n, o] exactly (a single product).
            let weight = Tensor::new(spec.weight_shape(), round(kernel)).unwrap();
            let y = reference::conv2d(&x, &spec, &weight, &Epilogue::none()).unwrap();
            let want = Tensor::from_fn(x.shape(), |n, o, h, w| {
                (t[o] * f64::from(x.at(n, o, h, w))) as f32
            })
            .unwrap();
            assert_eq!(y, want, "groups {groups}");
        }
    }

    /// The multi-branch block on the reference ops: `ReLU(BN₃(conv3x3 x) + BN₁(conv1x1 x) + BN_id(x))`.
    fn multi_branch_block(block: &TrainBlock, x: &Tensor) -> Tensor {
        let spec = block.spec;
        let none = Epilogue::none();
        let dense = reference::conv2d(x, &spec.conv3x3(), &block.dense.weight, &none).unwrap();
        let dense = reference::batch_norm(&dense, &block.dense.bn).unwrap();
        let point = reference::conv2d(x, &spec.conv1x1(), &block.pointwise.weight, &none).unwrap();
        let point = reference::batch_norm(&point, &block.pointwise.bn).unwrap();
        let mut sum = reference::add(&dense, &point).unwrap();
        if let Some(bn) = &block.identity {
            sum = reference::add(&sum, &reference::batch_norm(x, bn).unwrap()).unwrap();
        }
        reference::relu(&sum)
    }

    #[test]
    fn fold_of_each_block_equals_its_multi_branch_computation() {
        // Stem, a stride-2 block, then dense, g2, g4 and depthwise identity blocks.
        let config = Config::custom(
            8,
            vec![
                StageConfig {
                    width: 8,
                    groups: vec![2, 1, 2, 4, 8],
                },
                StageConfig {
                    width: 12,
                    groups: vec![4, 3, 12],
                },
            ],
            5,
            None,
        )
        .unwrap();
        let net = TrainNet::random(&config, 17);
        let plain = fuse(&net).unwrap();
        let mut rng = SplitMix64::new(99);
        for (train, fused) in net.blocks.iter().zip(&plain.blocks) {
            let spec = train.spec;
            let shape = [2, spec.in_channels, 7, 6];
            let x = Tensor::new(shape, rng.uniform_vec(shape.iter().product(), -1.5, 1.5)).unwrap();
            let expect = multi_branch_block(train, &x);
            let epilogue = Epilogue::bias_relu(fused.bias.clone());
            let got = reference::conv2d(&x, &spec.conv3x3(), &fused.weight, &epilogue).unwrap();
            // The multi-branch side rounds each branch to f32 before the sum, the fold rounds
            // each fused weight once: a few ulps of the branch magnitudes, well inside the
            // single-reduction bound.
            let tol = Tolerance::for_reduction(spec.conv3x3().reduction_len(), 1.0);
            assert_close(&got, &expect, &tol, &spec.official_prefix());
        }
    }

    #[test]
    fn rejects_non_finite_values_naming_the_block() {
        let config = Config::custom(4, vec![StageConfig::dense(8, 3)], 3, None).unwrap();
        let net = TrainNet::random(&config, 1);
        let mut bad = net.clone();
        bad.blocks[3].identity.as_mut().unwrap().gamma[3] = f32::NAN;
        let err = fuse(&bad).unwrap_err().to_string();
        assert!(
            err.contains("stage1.2") && err.contains("identity") && err.contains("gamma"),
            "{err}"
        );
        let mut bad = net.clone();
        bad.blocks[1].pointwise.weight.data_mut()[0] = f32::INFINITY;
        let err = fuse(&bad).unwrap_err().to_string();
        assert!(
            err.contains("stage1.0") && err.contains("pointwise.weight"),
            "{err}"
        );
        // A variance that makes σ² + ε ≤ 0 is reported with the block too.
        let mut bad = net.clone();
        bad.blocks[0].dense.bn.var[0] = -1.0;
        let err = fuse(&bad).unwrap_err();
        assert!(matches!(
            err,
            Error::Tensor(TensorError::Invalid {
                field: "dense.bn",
                ..
            })
        ));
        assert!(err.to_string().contains("stage0"), "{err}");
        // Overflowing f32 in the fold is an error, not an infinite weight.
        let mut bad = net;
        bad.blocks[0].dense.bn.var[0] = 0.0;
        bad.blocks[0].dense.bn.eps = 1e-300;
        let err = fuse(&bad).unwrap_err().to_string();
        assert!(err.contains("stage0") && err.contains("overflow"), "{err}");
    }

    #[test]
    fn rejects_shapes_that_disagree_with_the_spec() {
        let config = Config::custom(4, vec![StageConfig::dense(8, 2)], 3, None).unwrap();
        let mut net = TrainNet::random(&config, 2);
        net.blocks[2].dense.weight = Tensor::zeros([8, 4, 3, 3]).unwrap();
        let err = fuse(&net).unwrap_err().to_string();
        assert!(
            err.contains("stage1.1") && err.contains("dense.weight"),
            "{err}"
        );
        let mut net = TrainNet::random(&config, 2);
        net.blocks.pop();
        assert!(fuse(&net).is_err());
    }
}
