//! The two forms of a RepVGG network as data: [`TrainNet`] (multi-branch, as trained and as
//! released) and [`PlainNet`] (one 3x3 conv + bias per block, after re-parameterization).

use crate::config::{BlockSpec, Config};
use reparam_tensor::BatchNorm;
use reparam_tensor::Tensor;

/// A bias-free convolution followed by batch norm (`rbr_dense` / `rbr_1x1`, timm `conv_kxk` /
/// `conv_1x1`).
#[derive(Debug, Clone, PartialEq)]
pub struct ConvBn {
    /// Conv weight `[C_out, C_in/g, k, k]`.
    pub weight: Tensor,
    /// The batch norm after it (over `C_out`).
    pub bn: BatchNorm,
}

/// Squeeze-excitation weights: global average pool → 1x1 `down` (+bias) → ReLU → 1x1 `up` (+bias)
/// → sigmoid → scale the block's channels. Official keys `se.down/up`, timm `attn.fc1/fc2`.
#[derive(Debug, Clone, PartialEq)]
pub struct SeWeights {
    /// `[hidden, C, 1, 1]`.
    pub down_weight: Tensor,
    /// `[hidden]`.
    pub down_bias: Vec<f32>,
    /// `[C, hidden, 1, 1]`.
    pub up_weight: Tensor,
    /// `[C]`.
    pub up_bias: Vec<f32>,
}

/// One training-time block: `ReLU(SE?(BN₃(conv3x3 x) + BN₁(conv1x1 x) + [BN_id(x)]))`.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainBlock {
    /// Where the block sits and its geometry.
    pub spec: BlockSpec,
    /// The 3x3 branch.
    pub dense: ConvBn,
    /// The 1x1 branch.
    pub pointwise: ConvBn,
    /// The identity-BN branch, present iff `spec.identity`.
    pub identity: Option<BatchNorm>,
    /// The squeeze-excitation, present iff `spec.se_hidden` is set.
    pub se: Option<SeWeights>,
}

/// The classifier: global average pool, then `logits = W·features + b`.
#[derive(Debug, Clone, PartialEq)]
pub struct Head {
    /// `[classes, features, 1, 1]` (checkpoints store it as `[classes, features]`).
    pub weight: Tensor,
    /// `[classes]`.
    pub bias: Vec<f32>,
}

/// A multi-branch (training-form) network.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainNet {
    /// Its architecture.
    pub config: Config,
    /// Blocks in execution order, matching `config.blocks()`.
    pub blocks: Vec<TrainBlock>,
    /// The classifier.
    pub head: Head,
}

/// One deployed block: `ReLU(SE?(conv3x3(x; K) + b))`.
#[derive(Debug, Clone, PartialEq)]
pub struct PlainBlock {
    /// Where the block sits and its geometry (the `identity` flag records the training form).
    pub spec: BlockSpec,
    /// Fused kernel `K`, `[C_out, C_in/g, 3, 3]`.
    pub weight: Tensor,
    /// Fused bias `b`, `[C_out]`.
    pub bias: Vec<f32>,
    /// The squeeze-excitation, unchanged by the fold.
    pub se: Option<SeWeights>,
}

/// A re-parameterized (deploy-form) network.
#[derive(Debug, Clone, PartialEq)]
pub struct PlainNet {
    /// Its architecture.
    pub config: Config,
    /// Blocks in execution order, matching `config.blocks()`.
    pub blocks: Vec<PlainBlock>,
    /// The classifier.
    pub head: Head,
}
