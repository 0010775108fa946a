//! The one integration-test binary of the workspace: tests that span crates, fixtures produced
//! by the upstream PyTorch code (timm), and malformed inputs.

mod checkpoint;
mod cpu;
mod equivalence;
mod fixtures;
mod gpu;
mod images;
mod onnx;
mod pth;
