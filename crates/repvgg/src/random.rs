//! Deterministic synthetic weights, so every command and test works without a download.

use crate::config::{BlockSpec, Config};
use crate::net::{ConvBn, Head, SeWeights, TrainBlock, TrainNet};
use reparam_tensor::BatchNorm;
use reparam_tensor::rng::SplitMix64;
use reparam_tensor::{Shape, Tensor};

/// PyTorch's default batch-norm ε.
pub const DEFAULT_BN_EPS: f64 = 1e-5;

impl TrainNet {
    /// A training-form net with deterministic pseudo-random weights from `seed` (SplitMix64, so the
    /// same seed gives the same net everywhere).
    ///
    /// Conv weights are uniform with the He variance `2 / fan_in`, scaled by `1/√branches` so the
    /// summed block output keeps the input's scale through deep stacks. Every batch norm has
    /// non-trivial statistics — γ ∈ ±[0.4, 0.9] (20 % negative), β ∈ [−0.2, 0.2],
    /// μ ∈ [−0.3, 0.3], σ² ∈ [0.5, 2] — so the fold is exercised, not the identity.
    pub fn random(config: &Config, seed: u64) -> Self {
        let mut rng = SplitMix64::new(seed);
        let blocks = config
            .blocks()
            .into_iter()
            .map(|spec| random_block(&mut rng, spec))
            .collect();
        let features = config.feature_width();
        let bound = 1.0 / (features as f32).sqrt();
        let head = Head {
            weight: uniform(&mut rng, [config.num_classes, features, 1, 1], bound),
            bias: rng.uniform_vec(config.num_classes, -bound, bound),
        };
        Self {
            config: config.clone(),
            blocks,
            head,
        }
    }
}

fn random_block(rng: &mut SplitMix64, spec: BlockSpec) -> TrainBlock {
    let branches = if spec.identity { 3.0 } else { 2.0 };
    let conv_bn = |rng: &mut SplitMix64, kernel: usize| {
        let shape = [
            spec.out_channels,
            spec.in_channels / spec.groups,
            kernel,
            kernel,
        ];
        let fan_in = (shape[1] * kernel * kernel) as f32;
        // Uniform(−a, a) has variance a²/3; a = √(6 / (fan_in · branches)) gives 2/(fan_in·branches).
        let bound = (6.0 / (fan_in * branches)).sqrt();
        ConvBn {
            weight: uniform(rng, shape, bound),
            bn: random_bn(rng, spec.out_channels),
        }
    };
    let dense = conv_bn(rng, 3);
    let pointwise = conv_bn(rng, 1);
    let identity = spec.identity.then(|| random_bn(rng, spec.out_channels));
    let se = spec.se_hidden.map(|hidden| {
        let c = spec.out_channels;
        let (down, up) = (1.0 / (c as f32).sqrt(), 1.0 / (hidden as f32).sqrt());
        SeWeights {
            down_weight: uniform(rng, [hidden, c, 1, 1], down),
            down_bias: rng.uniform_vec(hidden, -down, down),
            up_weight: uniform(rng, [c, hidden, 1, 1], up),
            up_bias: rng.uniform_vec(c, -up, up),
        }
    });
    TrainBlock {
        spec,
        dense,
        pointwise,
        identity,
        se,
    }
}

fn random_bn(rng: &mut SplitMix64, c: usize) -> BatchNorm {
    let gamma = (0..c)
        .map(|_| {
            let magnitude = rng.uniform(0.4, 0.9);
            if rng.next_f64() < 0.2 {
                -magnitude
            } else {
                magnitude
            }
        })
        .collect();
    BatchNorm {
        gamma,
        beta: rng.uniform_vec(c, -0.2, 0.2),
        mean: rng.uniform_vec(c, -0.3, 0.3),
        var: rng.uniform_vec(c, 0.5, 2.0),
        eps: DEFAULT_BN_EPS,
    }
}

fn uniform(rng: &mut SplitMix64, shape: Shape, bound: f32) -> Tensor {
    let len = shape.iter().product();
    Tensor::new(shape, rng.uniform_vec(len, -bound, bound)).expect("length from the same shape")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_shaped_by_the_config() {
        let config = Config::official("A0").unwrap();
        let a = TrainNet::random(&config, 3);
        assert_eq!(a, TrainNet::random(&config, 3));
        assert_ne!(
            a.blocks[0].dense.weight,
            TrainNet::random(&config, 4).blocks[0].dense.weight
        );
        for block in &a.blocks {
            assert_eq!(
                block.dense.weight.shape(),
                block.spec.conv3x3().weight_shape()
            );
            assert_eq!(
                block.pointwise.weight.shape(),
                block.spec.conv1x1().weight_shape()
            );
            assert_eq!(block.identity.is_some(), block.spec.identity);
        }
        assert_eq!(a.head.weight.shape(), [1000, 1280, 1, 1]);
    }
}
