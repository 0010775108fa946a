//! The non-conv ops a RepVGG network needs on the GPU: per-channel affine (inference batch
//! norm) with optional residual add and ReLU, global average pooling, fully connected layers
//! (the head, and squeeze-excitation's two 1x1 convs on a 1x1 map), and per-channel scaling.
//! Each plan uploads its parameters once; `bind` builds a [`GpuOp`] for given tensors.

use crate::context::GpuContext;
use crate::error::GpuError;
use crate::op::{Dispatch, GpuOp};
use crate::shader::{Shader, Specialization};
use crate::tensor::{GpuTensor, channel_stride, storage_buffer, uniform_buffer};
use crate::window::split;
use bytemuck::{Pod, Zeroable};
use reparam_tensor::BatchNorm;
use reparam_tensor::{Tensor, TensorError};

/// `y = relu?(x·scale[c] + shift[c] + other?)` per element, on tensors of one shape.
#[derive(Debug, Clone)]
pub struct AffinePlan {
    channels: usize,
    relu: bool,
    scale: wgpu::Buffer,
    shift: wgpu::Buffer,
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
struct AffineParams {
    total: u32,
    cs: u32,
    c: u32,
    relu: u32,
    has_other: u32,
    x_base: u32,
    other_base: u32,
    y_base: u32,
}

impl AffinePlan {
    /// A per-channel affine map with the given scale and shift (length `C` each, finite).
    pub fn new(
        ctx: &GpuContext,
        scale: &[f32],
        shift: &[f32],
        relu: bool,
    ) -> Result<Self, GpuError> {
        if scale.len() != shift.len() {
            return Err(TensorError::ShapeMismatch {
                operand: "shift",
                expected: vec![scale.len()],
                actual: vec![shift.len()],
            }
            .into());
        }
        for (name, values) in [("scale", scale), ("shift", shift)] {
            if let Some(i) = values.iter().position(|v| !v.is_finite()) {
                return Err(
                    TensorError::invalid(name, format!("element {i} is not finite")).into(),
                );
            }
        }
        let pad = |v: &[f32]| {
            let mut p = v.to_vec();
            p.resize(channel_stride(v.len()), 0.0);
            p
        };
        Ok(Self {
            channels: scale.len(),
            relu,
            scale: storage_buffer(ctx, "affine scale", &pad(scale)),
            shift: storage_buffer(ctx, "affine shift", &pad(shift)),
        })
    }

    /// Inference batch norm `y = t·x + s`, `t = γ/√(σ²+ε)`, `s = β − μ·t` (computed in f64,
    /// rounded once), optionally followed by ReLU.
    pub fn batch_norm(ctx: &GpuContext, bn: &BatchNorm, relu: bool) -> Result<Self, GpuError> {
        let (t, s) = bn.scale_shift()?;
        let t: Vec<f32> = t.iter().map(|&v| v as f32).collect();
        let s: Vec<f32> = s.iter().map(|&v| v as f32).collect();
        Self::new(ctx, &t, &s, relu)
    }

    /// `y = relu?(x + other)` (bind with `Some(other)`), or `y = relu?(x)` (bind with `None`).
    pub fn identity(ctx: &GpuContext, channels: usize, relu: bool) -> Result<Self, GpuError> {
        Self::new(ctx, &vec![1.0; channels], &vec![0.0; channels], relu)
    }

    /// The op `y = relu?(x·scale + shift + other?)`; all tensors must have the same shape with
    /// the plan's channel count.
    pub fn bind(
        &self,
        ctx: &GpuContext,
        x: &GpuTensor,
        other: Option<&GpuTensor>,
        y: &GpuTensor,
    ) -> Result<GpuOp, GpuError> {
        let shape = x.shape();
        let [n, c, h, w] = shape;
        if c != self.channels {
            return Err(TensorError::ShapeMismatch {
                operand: "input",
                expected: vec![n, self.channels, h, w],
                actual: shape.to_vec(),
            }
            .into());
        }
        if let Some(o) = other {
            o.expect_shape("other", shape)?;
        }
        y.expect_shape("output", shape)?;
        let cs = x.channel_stride();
        let pixels = n * h * w;
        let mut dispatches = Vec::new();
        for chunk in split(ctx, pixels, &[("tensor", cs as u64)])? {
            let len = (chunk.len * cs) as u64;
            let win = chunk.window(cs as u64);
            let params = AffineParams {
                total: len as u32,
                cs: cs as u32,
                c: c as u32,
                relu: u32::from(self.relu),
                has_other: u32::from(other.is_some()),
                x_base: win.base,
                other_base: win.base,
                y_base: win.base,
            };
            let uniform = uniform_buffer(ctx, &params);
            dispatches.push(Dispatch::new(
                ctx,
                Shader::Affine,
                &Specialization::none(),
                len.div_ceil(64),
                &[
                    uniform.as_entire_binding(),
                    win.bind(x.buffer()),
                    win.bind(other.unwrap_or(x).buffer()),
                    self.scale.as_entire_binding(),
                    self.shift.as_entire_binding(),
                    win.bind(y.buffer()),
                ],
            )?);
        }
        let label = match other {
            Some(_) => "affine+add",
            None => "affine",
        };
        Ok(GpuOp::new(label, 0, dispatches))
    }
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
struct PoolParams {
    batch: u32,
    hw: u32,
    cs: u32,
    c: u32,
    x_base: u32,
    y_base: u32,
    total: u32,
    pad0: u32,
}

/// The op `y[n, c, 0, 0] = mean_{h,w} x[n, c, h, w]`; `y` must be `[N, C, 1, 1]`.
pub fn global_avg_pool(ctx: &GpuContext, x: &GpuTensor, y: &GpuTensor) -> Result<GpuOp, GpuError> {
    let [n, c, h, w] = x.shape();
    y.expect_shape("output", [n, c, 1, 1])?;
    let cs = x.channel_stride();
    let img = (h * w * cs) as u64;
    let mut dispatches = Vec::new();
    for chunk in split(ctx, n, &[("input", img)])? {
        let images = chunk.len as u64;
        let x_win = chunk.window(img);
        let y_win = chunk.window(cs as u64);
        let total = images * cs as u64;
        let params = PoolParams {
            batch: images as u32,
            hw: (h * w) as u32,
            cs: cs as u32,
            c: c as u32,
            x_base: x_win.base,
            y_base: y_win.base,
            total: total as u32,
            pad0: 0,
        };
        let uniform = uniform_buffer(ctx, &params);
        dispatches.push(Dispatch::new(
            ctx,
            Shader::GlobalAvgPool,
            &Specialization::none(),
            total.div_ceil(64),
            &[
                uniform.as_entire_binding(),
                x_win.bind(x.buffer()),
                y_win.bind(y.buffer()),
            ],
        )?);
    }
    Ok(GpuOp::new("global_avg_pool", 0, dispatches))
}

/// The activation after a [`LinearPlan`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// None.
    Identity,
    /// `max(x, 0)`.
    Relu,
    /// `1 / (1 + e^{−x})`.
    Sigmoid,
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
struct LinearParams {
    batch: u32,
    in_f: u32,
    in_cs: u32,
    out_f: u32,
    out_cs: u32,
    act: u32,
    total: u32,
    pad0: u32,
}

/// A fully connected layer on `[N, F, 1, 1]` → `[N, M, 1, 1]`: `y = act(W·x + b)`.
#[derive(Debug, Clone)]
pub struct LinearPlan {
    in_features: usize,
    out_features: usize,
    activation: Activation,
    weight: wgpu::Buffer,
    bias: wgpu::Buffer,
}

impl LinearPlan {
    /// `weight` is `[M, F, 1, 1]` (as a 1x1 conv or the classifier), `bias` has length `M`;
    /// non-finite values are rejected.
    pub fn new(
        ctx: &GpuContext,
        weight: &Tensor,
        bias: &[f32],
        activation: Activation,
    ) -> Result<Self, GpuError> {
        let [m, f, kh, kw] = weight.shape();
        if kh != 1 || kw != 1 {
            return Err(TensorError::ShapeMismatch {
                operand: "weight",
                expected: vec![m, f, 1, 1],
                actual: weight.shape().to_vec(),
            }
            .into());
        }
        if bias.len() != m {
            return Err(TensorError::ShapeMismatch {
                operand: "bias",
                expected: vec![m],
                actual: vec![bias.len()],
            }
            .into());
        }
        if let Some(i) = weight.first_non_finite() {
            return Err(
                TensorError::invalid("weight", format!("element {i} is not finite")).into(),
            );
        }
        if let Some(i) = bias.iter().position(|v| !v.is_finite()) {
            return Err(TensorError::invalid("bias", format!("element {i} is not finite")).into());
        }
        let bytes = weight.len() as u64 * 4;
        if bytes > ctx.max_binding_bytes() {
            return Err(GpuError::TooLarge {
                operand: "weight",
                needed: bytes,
                max: ctx.max_binding_bytes(),
            });
        }
        Ok(Self {
            in_features: f,
            out_features: m,
            activation,
            weight: storage_buffer(ctx, "linear weight", weight.data()),
            bias: storage_buffer(ctx, "linear bias", bias),
        })
    }

    /// The op `y = act(W·x + b)` for `x` `[N, F, 1, 1]`, `y` `[N, M, 1, 1]`.
    pub fn bind(&self, ctx: &GpuContext, x: &GpuTensor, y: &GpuTensor) -> Result<GpuOp, GpuError> {
        let n = x.shape()[0];
        x.expect_shape("input", [n, self.in_features, 1, 1])?;
        y.expect_shape("output", [n, self.out_features, 1, 1])?;
        for (operand, t) in [("input", x), ("output", y)] {
            if t.bytes() > ctx.max_binding_bytes() {
                return Err(GpuError::TooLarge {
                    operand,
                    needed: t.bytes(),
                    max: ctx.max_binding_bytes(),
                });
            }
        }
        let total = (n * y.channel_stride()) as u64;
        let params = LinearParams {
            batch: n as u32,
            in_f: self.in_features as u32,
            in_cs: x.channel_stride() as u32,
            out_f: self.out_features as u32,
            out_cs: y.channel_stride() as u32,
            act: match self.activation {
                Activation::Identity => 0,
                Activation::Relu => 1,
                Activation::Sigmoid => 2,
            },
            total: total as u32,
            pad0: 0,
        };
        let uniform = uniform_buffer(ctx, &params);
        let dispatch = Dispatch::new(
            ctx,
            Shader::Linear,
            &Specialization::none(),
            total.div_ceil(64),
            &[
                uniform.as_entire_binding(),
                x.buffer().as_entire_binding(),
                self.weight.as_entire_binding(),
                self.bias.as_entire_binding(),
                y.buffer().as_entire_binding(),
            ],
        )?;
        let flops = 2 * (n * self.in_features * self.out_features) as u64;
        Ok(GpuOp::new("linear", flops, vec![dispatch]))
    }
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
struct ScaleParams {
    total: u32,
    hw: u32,
    cs: u32,
    c: u32,
    x_base: u32,
    y_base: u32,
    n0: u32,
    pad0: u32,
}

/// The op `y[n, c, h, w] = x[n, c, h, w] · s[n, c, 0, 0]`.
pub fn scale_channels(
    ctx: &GpuContext,
    x: &GpuTensor,
    s: &GpuTensor,
    y: &GpuTensor,
) -> Result<GpuOp, GpuError> {
    let [n, c, h, w] = x.shape();
    s.expect_shape("scale", [n, c, 1, 1])?;
    y.expect_shape("output", x.shape())?;
    let cs = x.channel_stride();
    let img = (h * w * cs) as u64;
    let mut dispatches = Vec::new();
    for chunk in split(ctx, n, &[("input", img), ("scale", cs as u64)])? {
        let images = chunk.len as u64;
        let win = chunk.window(img);
        let total = images * img;
        let params = ScaleParams {
            total: total as u32,
            hw: (h * w) as u32,
            cs: cs as u32,
            c: c as u32,
            x_base: win.base,
            y_base: win.base,
            n0: chunk.first as u32,
            pad0: 0,
        };
        let uniform = uniform_buffer(ctx, &params);
        dispatches.push(Dispatch::new(
            ctx,
            Shader::ScaleChannels,
            &Specialization::none(),
            total.div_ceil(64),
            &[
                uniform.as_entire_binding(),
                win.bind(x.buffer()),
                s.buffer().as_entire_binding(),
                win.bind(y.buffer()),
            ],
        )?);
    }
    Ok(GpuOp::new("scale_channels", 0, dispatches))
}

/// Squeeze-excitation: `p = mean_{h,w} x`, `z = ReLU(W_down·p + b_down)`,
/// `s = sigmoid(W_up·z + b_up)`, `y = x·s` — four dispatches, intermediates allocated at bind.
#[derive(Debug, Clone)]
pub struct SqueezeExcitePlan {
    down: LinearPlan,
    up: LinearPlan,
}

impl SqueezeExcitePlan {
    /// `down` `[R, C, 1, 1]` + `down_bias` `[R]`, `up` `[C, R, 1, 1]` + `up_bias` `[C]`.
    pub fn new(
        ctx: &GpuContext,
        down: (&Tensor, &[f32]),
        up: (&Tensor, &[f32]),
    ) -> Result<Self, GpuError> {
        Ok(Self {
            down: LinearPlan::new(ctx, down.0, down.1, Activation::Relu)?,
            up: LinearPlan::new(ctx, up.0, up.1, Activation::Sigmoid)?,
        })
    }

    /// The four dispatches as one op.
    pub fn bind(&self, ctx: &GpuContext, x: &GpuTensor, y: &GpuTensor) -> Result<GpuOp, GpuError> {
        let [n, c, _, _] = x.shape();
        let pooled = GpuTensor::zeros(ctx, [n, c, 1, 1])?;
        let reduced = GpuTensor::zeros(ctx, [n, self.down.out_features, 1, 1])?;
        let scale = GpuTensor::zeros(ctx, [n, c, 1, 1])?;
        let parts = [
            global_avg_pool(ctx, x, &pooled)?,
            self.down.bind(ctx, &pooled, &reduced)?,
            self.up.bind(ctx, &reduced, &scale)?,
            scale_channels(ctx, x, &scale, y)?,
        ];
        let flops = parts.iter().map(GpuOp::flops).sum();
        Ok(GpuOp::concat("squeeze_excite", flops, parts))
    }
}
