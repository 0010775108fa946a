//! Checkpoint I/O: training-time and deployed state dicts, official and timm names, read from
//! safetensors or PyTorch `.pth` files (written as safetensors).
//!
//! Loading is strict, and every failure is a typed [`CheckpointError`] naming the key(s):
//! 1. the bytes must be a valid safetensors file ([`CheckpointError::Format`]) or, when they
//!    start like a zip archive, a `torch.save` file ([`CheckpointError::Torch`]; see `pth.rs`:
//!    a state dict at the top or nested under `state_dict` / `model`, f32/f16/bf16 storages,
//!    any strides); from here on both formats take the same steps and give the same errors;
//! 2. an optional `module.` prefix (PyTorch DDP) is stripped; it must be on every key or none;
//! 3. the naming scheme ([`Naming`]) and the form ([`Form`]) are detected from the keys;
//! 4. the architecture is inferred from the tensor shapes (see `infer.rs`) and, if
//!    [`LoadOptions::config`] is set, compared with it;
//! 5. the file must hold exactly the keys of that architecture (`num_batches_tracked` of an
//!    existing batch norm may be present, in any dtype, and is ignored);
//! 6. every tensor must be F32, F16 or BF16 (converted to f32), have the architecture's shape
//!    (the classifier weight is 2-D `[classes, features]` in files), hold only finite values, and
//!    running variances must be non-negative.
//!
//! Batch-norm ε is not stored in state dicts; it comes from [`LoadOptions::bn_eps`].
//!
//! Writing produces the key set timm or the official code would produce (f32, no
//! `num_batches_tracked`); loading a written file gives back the same net.

mod detect;
mod infer;
mod layout;
mod load;
mod naming;
mod pickle;
mod pth;
mod read;
mod write;

pub use read::to_f32;

use crate::config::Config;
use crate::error::CheckpointError;
use crate::graph::Form;
use crate::net::{PlainNet, TrainNet};
use std::fmt;
use std::path::Path;

/// The key naming scheme of a checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Naming {
    /// `DingXiaoH/RepVGG`: `stage0.rbr_dense.conv.weight`, `stage1.0.rbr_reparam.weight`, `linear.*`.
    Official,
    /// timm `byobnet`: `stem.conv_kxk.conv.weight`, `stages.0.0.reparam_conv.weight`, `head.fc.*`.
    Timm,
}

impl Naming {
    /// Both schemes.
    pub const ALL: [Self; 2] = [Self::Official, Self::Timm];

    /// `official` or `timm`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Official => "official",
            Self::Timm => "timm",
        }
    }
}

impl fmt::Display for Naming {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The network a checkpoint holds, in whichever form the file has.
#[derive(Debug, Clone, PartialEq)]
pub enum Checkpoint {
    /// A training-time (multi-branch) state dict.
    Train(TrainNet),
    /// A deployed (re-parameterized) state dict.
    Deploy(PlainNet),
}

impl Checkpoint {
    /// The form of the network.
    pub fn form(&self) -> Form {
        match self {
            Self::Train(_) => Form::MultiBranch,
            Self::Deploy(_) => Form::Plain,
        }
    }

    /// The architecture of the network.
    pub fn config(&self) -> &Config {
        match self {
            Self::Train(net) => &net.config,
            Self::Deploy(net) => &net.config,
        }
    }

    /// Serializes the network (f32) in `naming`.
    pub fn to_bytes(&self, naming: Naming) -> Result<Vec<u8>, CheckpointError> {
        match self {
            Self::Train(net) => train_to_bytes(net, naming),
            Self::Deploy(net) => plain_to_bytes(net, naming),
        }
    }
}

/// A loaded checkpoint and the naming scheme it used.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded {
    /// The network.
    pub net: Checkpoint,
    /// The detected naming scheme.
    pub naming: Naming,
}

impl Loaded {
    /// The training-time net, or [`CheckpointError::WrongForm`] for a deployed checkpoint.
    pub fn into_train(self) -> Result<TrainNet, CheckpointError> {
        match self.net {
            Checkpoint::Train(net) => Ok(net),
            Checkpoint::Deploy(_) => Err(wrong_form(Form::MultiBranch, Form::Plain)),
        }
    }

    /// The deployed net, or [`CheckpointError::WrongForm`] for a training-time checkpoint.
    pub fn into_plain(self) -> Result<PlainNet, CheckpointError> {
        match self.net {
            Checkpoint::Deploy(net) => Ok(net),
            Checkpoint::Train(_) => Err(wrong_form(Form::Plain, Form::MultiBranch)),
        }
    }
}

fn wrong_form(expected: Form, found: Form) -> CheckpointError {
    CheckpointError::WrongForm {
        expected: expected.checkpoint_name(),
        found: found.checkpoint_name(),
    }
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
    load::load(bytes, options)
}

/// Loads a safetensors checkpoint from a file.
pub fn load_file(path: &Path, options: &LoadOptions) -> Result<Loaded, CheckpointError> {
    let bytes = std::fs::read(path).map_err(|source| io_error(path, source))?;
    load_bytes(&bytes, options)
}

/// Serializes a training-time net (f32) in `naming`.
pub fn train_to_bytes(net: &TrainNet, naming: Naming) -> Result<Vec<u8>, CheckpointError> {
    write::train_bytes(net, naming)
}

/// Serializes a deployed net (f32) in `naming` (`rbr_reparam.*` or `reparam_conv.*`).
pub fn plain_to_bytes(net: &PlainNet, naming: Naming) -> Result<Vec<u8>, CheckpointError> {
    write::plain_bytes(net, naming)
}

/// Writes a training-time net (f32) in `naming` to `path`.
pub fn write_train_file(
    path: &Path,
    net: &TrainNet,
    naming: Naming,
) -> Result<(), CheckpointError> {
    let bytes = train_to_bytes(net, naming)?;
    std::fs::write(path, bytes).map_err(|source| io_error(path, source))
}

/// Writes a deployed net (f32) in `naming` to `path`.
pub fn write_plain_file(
    path: &Path,
    net: &PlainNet,
    naming: Naming,
) -> Result<(), CheckpointError> {
    let bytes = plain_to_bytes(net, naming)?;
    std::fs::write(path, bytes).map_err(|source| io_error(path, source))
}

fn io_error(path: &Path, source: std::io::Error) -> CheckpointError {
    CheckpointError::Io {
        path: path.display().to_string(),
        source,
    }
}
