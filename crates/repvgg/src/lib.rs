//! `repvgg`: RepVGG (Ding et al., CVPR 2021) models for reparam.
//!
//! - [`config`]: every official architecture (A0 … B3g4, D2se) and custom nets.
//! - [`net`]: the training-time multi-branch network and the deployed plain network as data.
//! - [`random`]: deterministic synthetic weights.
//! - [`checkpoint`]: safetensors I/O in official and timm naming.
//! - [`fold`]: the re-parameterization.
//! - [`graph`] and [`exec`]: ops for both forms and executors that run them.
//! - [`traffic`]: the analytic FLOP and memory-traffic model of a run, per op.
//! - [`stats`]: per-layer params, MACs and Winograd MULs of the deployed network (paper counts).

pub mod checkpoint;
pub mod config;
mod error;
pub mod exec;
pub mod fold;
pub mod graph;
pub mod images;
pub mod net;
pub mod onnx;
pub mod random;
pub mod stats;
pub mod sweep;
pub mod traffic;

pub use checkpoint::{Checkpoint, LoadOptions, Loaded, Naming};
pub use config::{BlockSpec, Config, ConfigError, StageConfig};
pub use error::{CheckpointError, Error, ImageError};
pub use exec::{Cpu, CpuOptions, Engine, Executor, Outputs, RunOutput};
pub use fold::fuse;
pub use graph::{Form, Graph};
pub use net::{ConvBn, Head, PlainBlock, PlainNet, SeWeights, TrainBlock, TrainNet};
