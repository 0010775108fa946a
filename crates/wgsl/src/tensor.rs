//! [`GpuTensor`]: an activation in device memory, in the GPU layout.
//!
//! Layout ("NHWC4"): `[N, H, W, Cs]` f32 with the channel stride `Cs = ⌈C/4⌉·4`; lanes
//! `c ∈ [C, Cs)` hold zero (every kernel writes them). Channels innermost is what every fast
//! GPU conv surveyed uses (vector loads over channels, coalesced across neighbouring
//! invocations); the stride of 4 keeps rows 16-byte aligned for `vec4` access.

use crate::context::GpuContext;
use crate::error::GpuError;
use crate::op::{Dispatch, GpuOp};
use crate::shader::{Shader, Specialization};
use crate::window::split;
use bytemuck::{Pod, Zeroable};
use reparam_tensor::{Shape, Tensor, TensorError};
use wgpu::util::DeviceExt;

/// The channel stride of the GPU layout for `channels` channels: rounded up to 4.
pub fn channel_stride(channels: usize) -> usize {
    channels.div_ceil(4) * 4
}

/// An activation `[N, C, H, W]` stored on the device as NHWC with channel stride
/// [`channel_stride`]`(C)`.
#[derive(Debug, Clone)]
pub struct GpuTensor {
    buffer: wgpu::Buffer,
    shape: Shape,
}

impl GpuTensor {
    /// A zero-filled tensor of `shape` (`[N, C, H, W]`, every axis ≥ 1).
    pub fn zeros(ctx: &GpuContext, shape: Shape) -> Result<Self, GpuError> {
        let bytes = layout_bytes(shape)?;
        let max = ctx.summary().max_buffer;
        if bytes > max {
            return Err(GpuError::TooLarge {
                operand: "tensor",
                needed: bytes,
                max,
            });
        }
        let buffer = ctx.device().create_buffer(&wgpu::BufferDescriptor {
            label: Some("activation"),
            size: bytes,
            usage: wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_SRC
                | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        ctx.check()?;
        Ok(Self { buffer, shape })
    }

    /// Uploads an NCHW tensor: the data is written as is and converted to the GPU layout by
    /// `layout_nchw_to_nhwc.wgsl` (one submission).
    pub fn upload(ctx: &GpuContext, tensor: &Tensor) -> Result<Self, GpuError> {
        let out = Self::zeros(ctx, tensor.shape())?;
        let staging = ctx
            .device()
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some("nchw upload"),
                contents: bytemuck::cast_slice(tensor.data()),
                usage: wgpu::BufferUsages::STORAGE,
            });
        let op = convert(ctx, Direction::ToGpu, &staging, &out.buffer, tensor.shape())?;
        ctx.run(&[&op])?;
        Ok(out)
    }

    /// Reads the tensor back as NCHW (conversion by `layout_nhwc_to_nchw.wgsl`, then a copy to
    /// a mappable buffer; one submission, waits for the device).
    pub fn download(&self, ctx: &GpuContext) -> Result<Tensor, GpuError> {
        let [n, c, h, w] = self.shape;
        let len = n * c * h * w;
        let nchw = ctx.device().create_buffer(&wgpu::BufferDescriptor {
            label: Some("nchw download"),
            size: (len * 4) as u64,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        let op = convert(ctx, Direction::ToHost, &self.buffer, &nchw, self.shape)?;
        ctx.run(&[&op])?;
        let data: Vec<f32> = read_buffer(ctx, &nchw, "tensor")?;
        Ok(Tensor::new(self.shape, data)?)
    }

    /// Overwrites every element, padding lanes included, with `value` (tests poison outputs
    /// with NaN before a kernel runs).
    pub fn fill(&self, ctx: &GpuContext, value: f32) -> Result<(), GpuError> {
        let len = (self.buffer.size() / 4) as usize;
        ctx.queue()
            .write_buffer(&self.buffer, 0, bytemuck::cast_slice(&vec![value; len]));
        let submission = ctx.queue().submit([]);
        ctx.wait(submission)
    }

    /// `[N, C, H, W]`.
    pub fn shape(&self) -> Shape {
        self.shape
    }

    /// The channel stride of the layout, `⌈C/4⌉·4`.
    pub fn channel_stride(&self) -> usize {
        channel_stride(self.shape[1])
    }

    /// Bytes of device memory.
    pub fn bytes(&self) -> u64 {
        self.buffer.size()
    }

    /// The device buffer.
    pub fn buffer(&self) -> &wgpu::Buffer {
        &self.buffer
    }

    /// Fails unless the shape is `expected` (`operand` names the tensor in the error).
    pub(crate) fn expect_shape(
        &self,
        operand: &'static str,
        expected: Shape,
    ) -> Result<(), GpuError> {
        if self.shape != expected {
            return Err(TensorError::ShapeMismatch {
                operand,
                expected: expected.to_vec(),
                actual: self.shape.to_vec(),
            }
            .into());
        }
        Ok(())
    }
}

/// Bytes of the GPU layout of `shape`, checked for overflow and empty axes.
fn layout_bytes(shape: Shape) -> Result<u64, GpuError> {
    if shape.contains(&0) {
        return Err(TensorError::invalid("shape", format!("{shape:?} has an empty axis")).into());
    }
    let [n, c, h, w] = shape;
    [n, h, w, channel_stride(c), 4]
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d as u64))
        .ok_or_else(|| {
            TensorError::ShapeOverflow {
                shape: shape.to_vec(),
            }
            .into()
        })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    ToGpu,
    ToHost,
}

/// Uniform block of the layout shaders (`shaders/common/layout_params.wgsl`).
#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
struct LayoutParams {
    batch: u32,
    c: u32,
    h: u32,
    w: u32,
    cs: u32,
    src_base: u32,
    dst_base: u32,
    total: u32,
}

/// The layout conversion between an NCHW buffer and a GPU-layout buffer of `shape`, in chunks
/// of whole images that fit the binding limit.
fn convert(
    ctx: &GpuContext,
    direction: Direction,
    src: &wgpu::Buffer,
    dst: &wgpu::Buffer,
    shape: Shape,
) -> Result<GpuOp, GpuError> {
    let [n, c, h, w] = shape;
    let cs = channel_stride(c);
    let (nchw_img, gpu_img) = ((c * h * w) as u64, (cs * h * w) as u64);
    let (shader, src_img, dst_img) = match direction {
        Direction::ToGpu => (Shader::NchwToNhwc, nchw_img, gpu_img),
        Direction::ToHost => (Shader::NhwcToNchw, gpu_img, nchw_img),
    };
    let mut dispatches = Vec::new();
    let operands = [("nchw tensor", nchw_img), ("gpu tensor", gpu_img)];
    for chunk in split(ctx, n, &operands)? {
        let images = chunk.len as u64;
        let src_win = chunk.window(src_img);
        let dst_win = chunk.window(dst_img);
        let total = images * dst_img;
        let params = LayoutParams {
            batch: images as u32,
            c: c as u32,
            h: h as u32,
            w: w as u32,
            cs: cs as u32,
            src_base: src_win.base,
            dst_base: dst_win.base,
            total: total as u32,
        };
        let uniform = uniform_buffer(ctx, &params);
        dispatches.push(Dispatch::new(
            ctx,
            shader,
            &Specialization::none(),
            total.div_ceil(64),
            &[
                uniform.as_entire_binding(),
                src_win.bind(src),
                dst_win.bind(dst),
            ],
        )?);
    }
    let label = match direction {
        Direction::ToGpu => "layout/nchw->nhwc",
        Direction::ToHost => "layout/nhwc->nchw",
    };
    Ok(GpuOp::new(label, 0, dispatches))
}

/// A uniform buffer holding `params`.
pub(crate) fn uniform_buffer<T: Pod>(ctx: &GpuContext, params: &T) -> wgpu::Buffer {
    ctx.device()
        .create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("params"),
            contents: bytemuck::bytes_of(params),
            usage: wgpu::BufferUsages::UNIFORM,
        })
}

/// A read-only storage buffer holding `data` (weights, biases, BN parameters); an empty slice
/// becomes one zero element (bindings cannot be empty).
pub(crate) fn storage_buffer(ctx: &GpuContext, label: &str, data: &[f32]) -> wgpu::Buffer {
    let one = [0.0f32];
    let contents = if data.is_empty() { &one[..] } else { data };
    ctx.device()
        .create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some(label),
            contents: bytemuck::cast_slice(contents),
            usage: wgpu::BufferUsages::STORAGE,
        })
}

/// A device-only scratch buffer of `bytes` bytes (at least 4).
pub(crate) fn scratch_buffer(ctx: &GpuContext, label: &str, bytes: u64) -> wgpu::Buffer {
    ctx.device().create_buffer(&wgpu::BufferDescriptor {
        label: Some(label),
        size: bytes.max(4).next_multiple_of(4),
        usage: wgpu::BufferUsages::STORAGE,
        mapped_at_creation: false,
    })
}

/// Copies `src` (usage `COPY_SRC`) to a mappable buffer and reads it as `T`s; waits.
pub(crate) fn read_buffer<T: Pod>(
    ctx: &GpuContext,
    src: &wgpu::Buffer,
    operand: &'static str,
) -> Result<Vec<T>, GpuError> {
    let size = src.size();
    let read = ctx.device().create_buffer(&wgpu::BufferDescriptor {
        label: Some("readback"),
        size,
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let mut encoder = ctx
        .device()
        .create_command_encoder(&wgpu::CommandEncoderDescriptor {
            label: Some("readback"),
        });
    encoder.copy_buffer_to_buffer(src, 0, &read, 0, size);
    let (tx, rx) = std::sync::mpsc::channel();
    encoder.map_buffer_on_submit(&read, wgpu::MapMode::Read, .., move |r| {
        // The receiver outlives the wait below; a send error cannot happen.
        let _ = tx.send(r);
    });
    let submission = ctx.queue().submit([encoder.finish()]);
    ctx.wait(submission)?;
    let readback = |reason: String| GpuError::Readback { operand, reason };
    rx.recv()
        .map_err(|e| readback(e.to_string()))?
        .map_err(|e| readback(e.to_string()))?;
    let data = {
        let view = read
            .get_mapped_range(..)
            .map_err(|e| readback(e.to_string()))?;
        bytemuck::pod_collect_to_vec(&view)
    };
    read.unmap();
    Ok(data)
}
