//! [`GpuConv2dPlan`]: a convolution layer on the GPU with weights packed and uploaded once.
//!
//! Kernels ([`GpuKernel`]), all with the semantics of `reparam_tensor::reference::conv2d`
//! (kernel 1 or 3, any stride and padding, groups, batch ≥ 1) and bias + ReLU fused:
//! * `naive` — one output element per invocation; the GPU reference.
//! * `direct` — register-tiled, 4 pixels × 4 channels per invocation, no workgroup memory.
//! * `gemm` — implicit GEMM, 64×64 tiles staged in workgroup memory.
//! * `gemm-wide` — the same with 128×64 tiles and 8×4 register blocks (more work per
//!   workgroup-memory load; for large layers on real GPUs).
//! * `winograd-f23` — F(2×2,3×3) in three dispatches (input transform, 16 batched GEMMs,
//!   output transform + bias + ReLU); 3x3, stride 1, padding 1 only.
//! * `winograd-f43` — F(4×4,3×3) the same way (36 batched GEMMs): 2.25 transform-domain
//!   multiplies per output against F(2,3)'s 4, for transforms on 6×6 tiles instead of 4×4.

mod pack;

use crate::context::GpuContext;
use crate::error::GpuError;
use crate::op::{Dispatch, GpuOp};
use crate::shader::{Shader, Specialization};
use crate::tensor::{GpuTensor, scratch_buffer, storage_buffer, uniform_buffer};
use crate::window::split;
use bytemuck::{Pod, Zeroable};
use reparam_tensor::rng::SplitMix64;
use reparam_tensor::winograd::{F23_G, F43_G};
use reparam_tensor::{ConvSpec, Epilogue, Shape, Tensor, TensorError};

/// Which GPU convolution kernel a plan uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GpuKernel {
    /// [`GpuKernel::for_spec`]'s static choice, or the fastest candidate when
    /// [`GpuConvOptions::autotune`] is set.
    Auto,
    /// One output element per invocation (`conv_naive.wgsl`).
    Naive,
    /// Register-tiled direct conv (`conv_direct.wgsl`).
    Direct,
    /// Workgroup-memory tiled implicit GEMM (`conv_gemm.wgsl`).
    Gemm,
    /// Implicit GEMM with 128-pixel tiles (`conv_gemm_wide.wgsl`).
    GemmWide,
    /// Winograd F(2×2, 3×3), non-fused (three dispatches).
    WinogradF23,
    /// Winograd F(4×4, 3×3), non-fused (three dispatches).
    WinogradF43,
}

impl GpuKernel {
    /// The concrete kernels, in the order autotuning tries them.
    pub const CONCRETE: [GpuKernel; 6] = [
        GpuKernel::Naive,
        GpuKernel::Direct,
        GpuKernel::Gemm,
        GpuKernel::GemmWide,
        GpuKernel::WinogradF23,
        GpuKernel::WinogradF43,
    ];

    /// The name used in bench ids and reports (`naive`, `direct`, `gemm`, `gemm-wide`,
    /// `winograd-f23`, `winograd-f43`, `auto`).
    pub fn name(self) -> &'static str {
        match self {
            GpuKernel::Auto => "auto",
            GpuKernel::Naive => "naive",
            GpuKernel::Direct => "direct",
            GpuKernel::Gemm => "gemm",
            GpuKernel::GemmWide => "gemm-wide",
            GpuKernel::WinogradF23 => "winograd-f23",
            GpuKernel::WinogradF43 => "winograd-f43",
        }
    }

    /// Parses a [`GpuKernel::name`].
    pub fn parse(name: &str) -> Result<Self, GpuError> {
        [GpuKernel::Auto]
            .into_iter()
            .chain(Self::CONCRETE)
            .find(|k| k.name() == name)
            .ok_or_else(|| {
                TensorError::invalid(
                    "kernel",
                    format!(
                        "unknown GPU kernel `{name}` (auto, naive, direct, gemm, gemm-wide, winograd-f23, winograd-f43)"
                    ),
                )
                .into()
            })
    }

    /// Whether the kernel can run `spec`: every kernel runs kernel 1 and 3 convolutions;
    /// Winograd needs a 3x3 kernel, stride 1 and padding 1.
    pub fn supports(self, spec: &ConvSpec) -> bool {
        match self {
            GpuKernel::WinogradF23 | GpuKernel::WinogradF43 => {
                spec.kernel == 3 && spec.stride == 1 && spec.padding == 1
            }
            _ => true,
        }
    }

    /// Error growth relative to direct summation, the factor `f` of the tolerance formula
    /// `Tolerance::for_reduction(K, f)` (`rel_L2 ≤ f·4u·√K`, `max rᵢ ≤ f·32u·√K`, `K = (Cin/g)·k²`)
    /// that every GPU test applies against the f64 oracle. The naive, direct and GEMM kernels
    /// sum the K products in f32 one after another (only the order differs): 1, as for the CPU
    /// direct kernels. Winograd F(2,3) ≈ direct in measured error
    /// (`docs/winograd.md#measured-error-per-algorithm`); 2 covers its transforms' extra roundings, as on the CPU; F(4,3) with the √2
    /// points 4, as on the CPU.
    pub fn error_factor(self) -> f64 {
        match self {
            GpuKernel::WinogradF23 => 2.0,
            GpuKernel::WinogradF43 => 4.0,
            _ => 1.0,
        }
    }

    /// The static choice of [`GpuKernel::Auto`] without autotuning: `direct` when a group has
    /// fewer than 16 input channels (the stem: a GEMM K slice of 16 would be mostly padding);
    /// Winograd F(2,3) for 3x3 stride-1 layers with at least 16 input and output channels per
    /// group; `gemm` otherwise.
    ///
    /// Calibrated on an NVIDIA H200 (Vulkan, driver 580.159.04, 2026-11-28,
    /// `scripts/gpu-check.sh run`: `reparam gpu layers --kernel all` on RepVGG-A0 and B0, device
    /// time): F(2,3) beat `gemm` on every stride-1 layer, 2.3–5.6x at batch 1 and 1.6–2.7x at
    /// batch 32; on stride-2 layers `gemm` was fastest at batch 1 (1.1–1.4x over `direct`) and
    /// at batch 32 within 0.75–1.16x of `direct`; on the stem `direct` and `gemm` tie at batch
    /// 1 and `direct` wins at batch 32 (1.09–1.34x).
    pub fn for_spec(spec: &ConvSpec) -> Self {
        if spec.in_per_group() < 16 {
            GpuKernel::Direct
        } else if GpuKernel::WinogradF23.supports(spec) && spec.out_per_group() >= 16 {
            GpuKernel::WinogradF23
        } else {
            GpuKernel::Gemm
        }
    }
}

/// How a plan is built.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GpuConvOptions {
    /// The kernel, or [`GpuKernel::Auto`].
    pub kernel: Option<GpuKernel>,
    /// With [`GpuKernel::Auto`]: time every supported kernel on a synthetic input of this shape
    /// when the plan is built (one warm-up, median of three timed runs, device time where the
    /// adapter has timestamps) and keep the fastest.
    pub autotune: Option<Shape>,
}

/// A convolution layer ready to run on the GPU: `y = relu?(conv(x; w) + bias?)`.
#[derive(Debug, Clone)]
pub struct GpuConv2dPlan {
    spec: ConvSpec,
    relu: bool,
    kernel: GpuKernel,
    weights: wgpu::Buffer,
    bias: wgpu::Buffer,
    tuning: Vec<(GpuKernel, f64)>,
}

/// The first eight fields of both uniform blocks (`batch, in_h, in_w, in_cs, out_h, out_w,
/// out_cs, out_c` in WGSL): the images of a chunk, the input and output sizes and their channel
/// strides. `#[repr(C)]` of `u32`s, so nesting it keeps the flat WGSL layout.
#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
struct IoShape {
    batch: u32,
    in_h: u32,
    in_w: u32,
    in_cs: u32,
    out_h: u32,
    out_w: u32,
    out_cs: u32,
    out_c: u32,
}

impl IoShape {
    /// `images` images of `input` (NHWC, its channel stride) into `output`.
    fn new(images: usize, input: &GpuTensor, output: &GpuTensor) -> Self {
        let [_, _, h, w] = input.shape();
        let [_, cout, oh, ow] = output.shape();
        Self {
            batch: images as u32,
            in_h: h as u32,
            in_w: w as u32,
            in_cs: input.channel_stride() as u32,
            out_h: oh as u32,
            out_w: ow as u32,
            out_cs: output.channel_stride() as u32,
            out_c: cout as u32,
        }
    }
}

/// Uniform block of the conv shaders (`shaders/common/conv_params.wgsl`).
#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
struct ConvParams {
    io: IoShape,
    cig: u32,
    cog: u32,
    cog_pad: u32,
    groups: u32,
    stride: u32,
    pad: u32,
    relu: u32,
    in_base: u32,
    out_base: u32,
    m_tiles: u32,
    n_tiles: u32,
    total: u32,
}

/// Uniform block of the Winograd shaders (`shaders/common/wino_params.wgsl`).
#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
struct WinoParams {
    io: IoShape,
    cin: u32,
    cig: u32,
    cog: u32,
    cog_pad: u32,
    groups: u32,
    tiles_h: u32,
    tiles_w: u32,
    tiles: u32,
    in_base: u32,
    out_base: u32,
    relu: u32,
    total: u32,
    m_tiles: u32,
    n_tiles: u32,
    /// Transform positions α² (16 for F(2,3), 36 for F(4,3)).
    positions: u32,
    pad1: u32,
}

/// One Winograd variant's output tile size and its transform shaders (the batched GEMM,
/// `winograd_gemm.wgsl`, serves both).
#[derive(Debug, Clone, Copy)]
struct WinogradShaders {
    /// Output tile side `m` (input tiles are `m + 2`).
    m: usize,
    /// `V = Bᵀ d B`.
    input: Shader,
    /// `Y = Aᵀ M A` + bias + ReLU.
    output: Shader,
}

/// F(2×2, 3×3).
const WINOGRAD_F23: WinogradShaders = WinogradShaders {
    m: 2,
    input: Shader::WinogradF23Input,
    output: Shader::WinogradF23Output,
};

/// F(4×4, 3×3).
const WINOGRAD_F43: WinogradShaders = WinogradShaders {
    m: 4,
    input: Shader::WinogradF43Input,
    output: Shader::WinogradF43Output,
};

/// Rows and columns of one GEMM workgroup tile (`BM`, `BN` in the shaders).
const GEMM_TILE: usize = 64;
/// Rows (`BM`) of one `conv_gemm_wide.wgsl` tile; its columns are [`GEMM_TILE`].
const GEMM_WIDE_ROWS: usize = 128;

impl GpuConv2dPlan {
    /// Validates the layer, picks the kernel, packs and uploads the weights and bias.
    ///
    /// `weight` is OIHW `[Cout, Cin/g, k, k]`; non-finite weights or biases are rejected.
    pub fn new(
        ctx: &GpuContext,
        spec: &ConvSpec,
        weight: &Tensor,
        epilogue: &Epilogue,
        options: &GpuConvOptions,
    ) -> Result<Self, GpuError> {
        spec.validate()?;
        spec.check_weight(weight)?;
        epilogue.validate(spec)?;
        if let Some(i) = weight.first_non_finite() {
            return Err(TensorError::invalid(
                "weight",
                format!("element {i} is not finite ({})", weight.data()[i]),
            )
            .into());
        }
        let requested = options.kernel.unwrap_or(GpuKernel::Auto);
        if requested != GpuKernel::Auto && !requested.supports(spec) {
            return Err(TensorError::invalid(
                "kernel",
                format!(
                    "{} needs a 3x3 kernel with stride 1 and padding 1, got {}x{} stride {} padding {}",
                    requested.name(),
                    spec.kernel,
                    spec.kernel,
                    spec.stride,
                    spec.padding
                ),
            )
            .into());
        }
        match (requested, options.autotune) {
            (GpuKernel::Auto, Some(shape)) => Self::autotune(ctx, spec, weight, epilogue, shape),
            (GpuKernel::Auto, None) => {
                Self::with_kernel(ctx, spec, weight, epilogue, GpuKernel::for_spec(spec))
            }
            (kernel, _) => Self::with_kernel(ctx, spec, weight, epilogue, kernel),
        }
    }

    fn with_kernel(
        ctx: &GpuContext,
        spec: &ConvSpec,
        weight: &Tensor,
        epilogue: &Epilogue,
        kernel: GpuKernel,
    ) -> Result<Self, GpuError> {
        let packed = match kernel {
            GpuKernel::WinogradF23 => pack::winograd_weights(spec, weight, &F23_G),
            GpuKernel::WinogradF43 => pack::winograd_weights(spec, weight, &F43_G),
            _ => pack::direct_weights(spec, weight),
        };
        let bytes = packed.len() as u64 * 4;
        if bytes > ctx.max_binding_bytes() {
            return Err(GpuError::TooLarge {
                operand: "weight",
                needed: bytes,
                max: ctx.max_binding_bytes(),
            });
        }
        let weights = storage_buffer(ctx, "conv weights", &packed);
        let bias = storage_buffer(ctx, "conv bias", &pack::bias(spec, epilogue));
        ctx.check()?;
        Ok(Self {
            spec: *spec,
            relu: epilogue.relu,
            kernel,
            weights,
            bias,
            tuning: Vec::new(),
        })
    }

    fn autotune(
        ctx: &GpuContext,
        spec: &ConvSpec,
        weight: &Tensor,
        epilogue: &Epilogue,
        shape: Shape,
    ) -> Result<Self, GpuError> {
        let mut rng = SplitMix64::new(0x5eed);
        let input = Tensor::from_fn(shape, |_, _, _, _| rng.uniform(-1.0, 1.0))?;
        let x = GpuTensor::upload(ctx, &input)?;
        let y = GpuTensor::zeros(ctx, spec.output_shape(shape)?)?;
        let mut best: Option<(f64, Self)> = None;
        let mut tuning = Vec::new();
        // A candidate whose weights or scratch exceed the binding limit (F(4,3)'s weights are 4x
        // direct's, its scratch 2.25x F(2,3)'s) is skipped; the error is returned only if no
        // candidate fits.
        let mut too_large = None;
        for kernel in GpuKernel::CONCRETE {
            if kernel == GpuKernel::Naive || !kernel.supports(spec) {
                continue;
            }
            let bound = Self::with_kernel(ctx, spec, weight, epilogue, kernel)
                .and_then(|plan| Ok((plan.bind(ctx, &x, &y)?, plan)));
            let (op, plan) = match bound {
                Ok(bound) => bound,
                Err(e @ GpuError::TooLarge { .. }) => {
                    too_large = Some(e);
                    continue;
                }
                Err(e) => return Err(e),
            };
            ctx.run(&[&op])?;
            let mut times = (0..3)
                .map(|_| ctx.run(&[&op]).map(|t| t.device_ms.unwrap_or(t.wall_ms)))
                .collect::<Result<Vec<f64>, GpuError>>()?;
            times.sort_by(f64::total_cmp);
            let median = times[1];
            tuning.push((kernel, median));
            if best.as_ref().is_none_or(|(t, _)| median < *t) {
                best = Some((median, plan));
            }
        }
        let (_, mut plan) = best.ok_or_else(|| {
            too_large.unwrap_or_else(|| GpuError::Wgpu("no kernel to autotune".into()))
        })?;
        plan.tuning = tuning;
        Ok(plan)
    }

    /// The kernel in use.
    pub fn kernel(&self) -> GpuKernel {
        self.kernel
    }

    /// The layer geometry.
    pub fn spec(&self) -> &ConvSpec {
        &self.spec
    }

    /// When autotuned: each candidate kernel with its median time in ms.
    pub fn tuning(&self) -> &[(GpuKernel, f64)] {
        &self.tuning
    }

    /// Bytes of packed weights on the device.
    pub fn packed_weight_bytes(&self) -> u64 {
        self.weights.size()
    }

    /// Builds the dispatches that compute `output = layer(input)`: parameters, scratch (for
    /// Winograd) and bind groups, split into chunks of whole images when a tensor exceeds the
    /// binding limit. Run the op with [`GpuContext::run`], alone or with others.
    pub fn bind(
        &self,
        ctx: &GpuContext,
        input: &GpuTensor,
        output: &GpuTensor,
    ) -> Result<GpuOp, GpuError> {
        let [n, c, h, w] = input.shape();
        if c != self.spec.in_channels {
            return Err(TensorError::ShapeMismatch {
                operand: "input",
                expected: vec![n, self.spec.in_channels, h, w],
                actual: input.shape().to_vec(),
            }
            .into());
        }
        let out_shape = self.spec.output_shape(input.shape())?;
        output.expect_shape("output", out_shape)?;
        let [_, cout, oh, ow] = out_shape;
        let s = &self.spec;
        let flops = 2 * (n * cout * s.in_per_group() * s.kernel * s.kernel * oh * ow) as u64;
        let label = format!(
            "conv{k}x{k}/{kern} {cin}->{cout} {h}x{w} s{st} g{g} n{n}",
            k = s.kernel,
            kern = self.kernel.name(),
            cin = s.in_channels,
            st = s.stride,
            g = s.groups
        );
        let dispatches = match self.kernel {
            GpuKernel::WinogradF23 => self.winograd_dispatches(ctx, input, output, WINOGRAD_F23)?,
            GpuKernel::WinogradF43 => self.winograd_dispatches(ctx, input, output, WINOGRAD_F43)?,
            _ => self.conv_dispatches(ctx, input, output)?,
        };
        Ok(GpuOp::new(label, flops, dispatches))
    }

    /// Convenience: bind and run once (one submission), returning the timings.
    pub fn run(
        &self,
        ctx: &GpuContext,
        input: &GpuTensor,
        output: &GpuTensor,
    ) -> Result<crate::op::GpuTimings, GpuError> {
        let op = self.bind(ctx, input, output)?;
        ctx.run(&[&op])
    }

    fn conv_dispatches(
        &self,
        ctx: &GpuContext,
        input: &GpuTensor,
        output: &GpuTensor,
    ) -> Result<Vec<Dispatch>, GpuError> {
        let s = &self.spec;
        let [n, _, h, w] = input.shape();
        let [_, _, oh, ow] = output.shape();
        let (in_cs, out_cs) = (input.channel_stride(), output.channel_stride());
        let (in_img, out_img) = ((h * w * in_cs) as u64, (oh * ow * out_cs) as u64);
        let chunks = split(ctx, n, &[("input", in_img), ("output", out_img)])?;
        let shader = match self.kernel {
            GpuKernel::Naive => Shader::ConvNaive,
            GpuKernel::Direct => Shader::ConvDirect,
            GpuKernel::GemmWide => Shader::ConvGemmWide,
            _ => Shader::ConvGemm,
        };
        let tile_rows = if self.kernel == GpuKernel::GemmWide {
            GEMM_WIDE_ROWS
        } else {
            GEMM_TILE
        };
        let spec = Specialization::none().with("KSIZE", s.kernel as u32);
        let cp = pack::cog_pad(s);
        let mut dispatches = Vec::new();
        for chunk in chunks {
            let images = chunk.len;
            let in_win = chunk.window(in_img);
            let out_win = chunk.window(out_img);
            let (m_tiles, n_tiles, total, workgroups) = match self.kernel {
                GpuKernel::Naive => {
                    let total = (images * oh * ow * out_cs) as u64;
                    (0, 0, total, total.div_ceil(64))
                }
                GpuKernel::Direct => {
                    let total = (images * oh * ow.div_ceil(4) * s.groups * cp / 4) as u64;
                    (0, 0, total, total.div_ceil(64))
                }
                _ => {
                    let m_tiles = (images * oh * ow).div_ceil(tile_rows);
                    let n_tiles = cp.div_ceil(GEMM_TILE);
                    let total = (m_tiles * n_tiles * s.groups) as u64;
                    (m_tiles, n_tiles, total, total)
                }
            };
            let params = ConvParams {
                io: IoShape::new(images, input, output),
                cig: s.in_per_group() as u32,
                cog: s.out_per_group() as u32,
                cog_pad: cp as u32,
                groups: s.groups as u32,
                stride: s.stride as u32,
                pad: s.padding as u32,
                relu: u32::from(self.relu),
                in_base: in_win.base,
                out_base: out_win.base,
                m_tiles: m_tiles as u32,
                n_tiles: n_tiles as u32,
                total: total as u32,
            };
            let uniform = uniform_buffer(ctx, &params);
            dispatches.push(Dispatch::new(
                ctx,
                shader,
                &spec,
                workgroups,
                &[
                    uniform.as_entire_binding(),
                    in_win.bind(input.buffer()),
                    self.weights.as_entire_binding(),
                    self.bias.as_entire_binding(),
                    out_win.bind(output.buffer()),
                ],
            )?);
        }
        Ok(dispatches)
    }

    fn winograd_dispatches(
        &self,
        ctx: &GpuContext,
        input: &GpuTensor,
        output: &GpuTensor,
        variant: WinogradShaders,
    ) -> Result<Vec<Dispatch>, GpuError> {
        let s = &self.spec;
        let [n, cin, h, w] = input.shape();
        let [_, cout, oh, ow] = output.shape();
        let (in_cs, out_cs) = (input.channel_stride(), output.channel_stride());
        let (tiles_h, tiles_w) = (oh.div_ceil(variant.m), ow.div_ceil(variant.m));
        let tiles_img = tiles_h * tiles_w;
        let positions = (variant.m + 2) * (variant.m + 2);
        let (in_img, out_img) = ((h * w * in_cs) as u64, (oh * ow * out_cs) as u64);
        let (v_img, m_img) = (
            (positions * tiles_img * cin) as u64,
            (positions * tiles_img * cout) as u64,
        );
        let chunks = split(
            ctx,
            n,
            &[
                ("input", in_img),
                ("output", out_img),
                ("winograd input scratch", v_img),
                ("winograd product scratch", m_img),
            ],
        )?;
        // Scratch for the largest chunk (the first), reused by every chunk in turn.
        let largest = chunks.first().map_or(0, |c| c.len) as u64;
        let v = scratch_buffer(ctx, "winograd V", largest * v_img * 4);
        let m = scratch_buffer(ctx, "winograd M", largest * m_img * 4);
        let cp = pack::cog_pad(s);
        let none = Specialization::none();
        let mut dispatches = Vec::new();
        for chunk in chunks {
            let images = chunk.len;
            let in_win = chunk.window(in_img);
            let out_win = chunk.window(out_img);
            let tiles = images * tiles_img;
            let (m_tiles, n_tiles) = (tiles.div_ceil(GEMM_TILE), cp.div_ceil(GEMM_TILE));
            let base = WinoParams {
                io: IoShape::new(images, input, output),
                cin: cin as u32,
                cig: s.in_per_group() as u32,
                cog: s.out_per_group() as u32,
                cog_pad: cp as u32,
                groups: s.groups as u32,
                tiles_h: tiles_h as u32,
                tiles_w: tiles_w as u32,
                tiles: tiles as u32,
                in_base: in_win.base,
                out_base: out_win.base,
                relu: u32::from(self.relu),
                total: 0,
                m_tiles: m_tiles as u32,
                n_tiles: n_tiles as u32,
                positions: positions as u32,
                pad1: 0,
            };
            // The three passes, each with its own `total` (invocations or workgroups) and the
            // buffers after the uniform.
            let input_total = (tiles * cin) as u64;
            let gemm_total = (m_tiles * n_tiles * s.groups * positions) as u64;
            let out_total = (tiles * out_cs) as u64;
            let passes = [
                (
                    variant.input,
                    input_total,
                    input_total.div_ceil(64),
                    vec![in_win.bind(input.buffer()), v.as_entire_binding()],
                ),
                (
                    Shader::WinogradGemm,
                    gemm_total,
                    gemm_total,
                    vec![
                        v.as_entire_binding(),
                        self.weights.as_entire_binding(),
                        m.as_entire_binding(),
                    ],
                ),
                (
                    variant.output,
                    out_total,
                    out_total.div_ceil(64),
                    vec![
                        m.as_entire_binding(),
                        self.bias.as_entire_binding(),
                        out_win.bind(output.buffer()),
                    ],
                ),
            ];
            for (shader, total, workgroups, buffers) in passes {
                let uniform = uniform_buffer(
                    ctx,
                    &WinoParams {
                        total: total as u32,
                        ..base
                    },
                );
                let mut bindings = vec![uniform.as_entire_binding()];
                bindings.extend(buffers);
                dispatches.push(Dispatch::new(ctx, shader, &none, workgroups, &bindings)?);
            }
        }
        Ok(dispatches)
    }
}
