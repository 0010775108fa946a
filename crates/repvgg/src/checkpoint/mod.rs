//! Checkpoint I/O (safetensors): training-time and deployed state dicts, official and timm names.

use crate::config::Config;
use crate::error::CheckpointError;
use crate::net::{PlainNet, TrainNet};
use std::path::Path;

/// The key naming scheme of a checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Naming {
    /// `DingXiaoH/RepVGG`: `stage0.rbr_dense.conv.weight`, `stage1.0.rbr_reparam.weight`, `linear.*`.
    Official,
    /// timm `byobnet`: `stem.conv_kxk.conv.weight`, `stages.0.0.reparam_conv.weight`, `head.fc.*`.
    Timm,
}

/// The network a checkpoint holds, in whichever form the file has.
#[derive(Debug, Clone, PartialEq)]
pub enum Checkpoint {
    /// A training-time (multi-branch) state dict.
    Train(TrainNet),
    /// A deployed (re-parameterized) state dict.
    Deploy(PlainNet),
}

/// A loaded checkpoint and the naming scheme it used.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded {
    /// The network.
    pub net: Checkpoint,
    /// The detected naming scheme.
    pub naming: Naming,
}

/// How to load a checkpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadOptions {
    /// Validate against this architecture; `None` infers it from the tensors.
    pub config: Option<Config>,
    /// Batch-norm ε (not stored in checkpoints); default 1e-5.
    pub bn_eps: f64,
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self {
            config: None,
            bn_eps: crate::random::DEFAULT_BN_EPS,
        }
    }
}

/// Loads a safetensors checkpoint from bytes.
pub fn load_bytes(bytes: &[u8], options: &LoadOptions) -> Result<Loaded, CheckpointError> {
    todo!("{} {options:?}", bytes.len())
}

/// Loads a safetensors checkpoint from a file.
pub fn load_file(path: &Path, options: &LoadOptions) -> Result<Loaded, CheckpointError> {
    todo!("{path:?} {options:?}")
}

/// Serializes a training-time net (f32) in `naming`.
pub fn train_to_bytes(net: &TrainNet, naming: Naming) -> Result<Vec<u8>, CheckpointError> {
    todo!("{net:?} {naming:?}")
}

/// Serializes a deployed net (f32) in `naming` (`rbr_reparam.*` or `reparam_conv.*`).
pub fn plain_to_bytes(net: &PlainNet, naming: Naming) -> Result<Vec<u8>, CheckpointError> {
    todo!("{net:?} {naming:?}")
}
