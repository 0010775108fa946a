//! [`Conv2dPlan`]: a convolution layer with packed (and, for Winograd, pre-transformed) weights,
//! its algorithm and ISA chosen once, run many times without allocating.

//!
//! One [`Conv2dPlan::run`] takes any input and output layout ([`ConvInput`], [`ConvOutput`])
//! and, optionally, the caller's scratch. The concerns live in submodules: ISA dispatch
//! (`dispatch`), schedules and their thresholds (`schedule`), executing one image (`execute`) and
//! the parallel loops (`parallel`).

#[macro_use]
mod dispatch;
mod execute;
mod parallel;
mod schedule;

use crate::arch::Bf16Gemm;
use crate::pack::{Packed, pack_direct, pack_winograd};
use crate::stage::blocked_to_nchw;
use crate::transforms::Variant;
use crate::{Algorithm, ConvError, Isa, Parallelism, PlanOptions, Precision, auto};
use dispatch::{TileShape, Token};
use reparam_tensor::{
    ALIGN_BYTES, ALIGN_FLOATS, AlignedVec, BlockedTensor, BlockedView, BlockedViewMut, ConvSpec,
    Epilogue, Shape, Tensor, TensorError,
};
use schedule::Geometry;
use std::sync::Mutex;

/// A planned convolution: spec, epilogue, algorithm, ISA and packed weights.
///
/// ```
/// use reparam_tensor::{ConvSpec, Epilogue, Tensor};
/// use reparam_winograd::{Conv2dPlan, PlanOptions};
/// let spec = ConvSpec::conv3x3(8, 16, 1, 1);
/// let weight = Tensor::filled(spec.weight_shape(), 0.01)?;
/// let plan = Conv2dPlan::new(spec, &weight, &Epilogue::bias_relu(vec![0.1; 16]), &PlanOptions::default())?;
/// let input = Tensor::filled([1, 8, 14, 14], 1.0)?;
/// let mut output = Tensor::zeros(plan.output_shape(input.shape())?)?;
/// plan.run(&input, &mut output, None)?; // NCHW in and out, the plan's own scratch
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Conv2dPlan {
    spec: ConvSpec,
    relu: bool,
    algorithm: Algorithm,
    isa: Isa,
    token: Token,
    tiles: TileShape,
    parallelism: Parallelism,
    precision: Precision,
    /// The bf16-pair GEMM ([`Precision::Bf16`] Winograd plans only).
    bf16: Option<Bf16Gemm>,
    packed: Packed,
    scratch: Mutex<AlignedVec>,
}

/// The input of a run ([`Conv2dPlan::run`]).
#[derive(Debug, Clone, Copy)]
pub enum ConvInput<'a> {
    /// An NCHW tensor (a network's image): staged straight from NCHW.
    Nchw(&'a Tensor),
    /// An NCHWc tensor blocked by [`Conv2dPlan::block`].
    Blocked(BlockedView<'a>),
}

impl ConvInput<'_> {
    fn shape(self) -> Shape {
        match self {
            Self::Nchw(t) => t.shape(),
            Self::Blocked(t) => t.shape(),
        }
    }
}

impl<'a> From<&'a Tensor> for ConvInput<'a> {
    fn from(t: &'a Tensor) -> Self {
        Self::Nchw(t)
    }
}

impl<'a> From<&'a BlockedTensor> for ConvInput<'a> {
    fn from(t: &'a BlockedTensor) -> Self {
        Self::Blocked(t.view())
    }
}

impl<'a> From<BlockedView<'a>> for ConvInput<'a> {
    fn from(t: BlockedView<'a>) -> Self {
        Self::Blocked(t)
    }
}

/// The output of a run ([`Conv2dPlan::run`]).
#[derive(Debug)]
pub enum ConvOutput<'a> {
    /// An NCHW tensor: each image is computed into scratch in NCHWc and converted.
    Nchw(&'a mut Tensor),
    /// An NCHWc tensor blocked by [`Conv2dPlan::block`], owned or borrowing an engine's memory.
    Blocked(BlockedViewMut<'a>),
}

impl<'a> From<&'a mut Tensor> for ConvOutput<'a> {
    fn from(t: &'a mut Tensor) -> Self {
        Self::Nchw(t)
    }
}

impl<'a> From<&'a mut BlockedTensor> for ConvOutput<'a> {
    fn from(t: &'a mut BlockedTensor) -> Self {
        Self::Blocked(t.view_mut())
    }
}

impl<'a> From<BlockedViewMut<'a>> for ConvOutput<'a> {
    fn from(t: BlockedViewMut<'a>) -> Self {
        Self::Blocked(t)
    }
}

impl Conv2dPlan {
    /// Validates everything, picks the ISA and algorithm, and packs (for Winograd: transforms,
    /// in f64, rounded once) the weights `[C_out, C_in/g, k, k]`. The per-channel bias and the
    /// ReLU come from `epilogue` and are fused into the kernels' stores. The weights are not kept:
    /// the plan owns only its packed copy.
    pub fn new(
        spec: ConvSpec,
        weight: &Tensor,
        epilogue: &Epilogue,
        options: &PlanOptions,
    ) -> Result<Self, ConvError> {
        spec.validate()?;
        spec.check_weight(weight)?;
        epilogue.validate(&spec)?;
        let isa = match options.isa {
            Some(isa) => isa.require()?,
            None => Isa::from_env()?,
        };
        let algorithm = match (options.algorithm, options.autotune) {
            (Algorithm::Auto, true) => {
                return auto::autotune(spec, weight, epilogue, options, isa);
            }
            (Algorithm::Auto, false) => auto::choose(&spec, options.input_hw, isa),
            (a, _) => a,
        };
        Self::with_algorithm(spec, weight, epilogue, algorithm, isa, options)
    }

    /// Builds a plan for a concrete algorithm and ISA (used by [`Conv2dPlan::new`] and autotune),
    /// with the parallelism and precision of `options`.
    pub(crate) fn with_algorithm(
        spec: ConvSpec,
        weight: &Tensor,
        epilogue: &Epilogue,
        algorithm: Algorithm,
        isa: Isa,
        options: &PlanOptions,
    ) -> Result<Self, ConvError> {
        let token = Token::new(isa)?;
        let tiles = token.shape(&spec, variant_of(algorithm).is_none());
        let bias = epilogue.bias.as_deref();
        let packed = match variant_of(algorithm) {
            None if algorithm == Algorithm::Auto => {
                return Err(ConvError::UnsupportedAlgorithm {
                    algorithm: algorithm.name(),
                    reason: "resolve `Auto` before packing".into(),
                });
            }
            None => pack_direct(&spec, weight, bias, tiles.block.oc_vecs * tiles.lanes),
            Some(variant) => {
                if spec.kernel != 3 || spec.stride != 1 || spec.padding != 1 {
                    return Err(ConvError::UnsupportedAlgorithm {
                        algorithm: algorithm.name(),
                        reason: format!(
                            "Winograd needs a 3x3 kernel, stride 1 and padding 1 (got kernel {}, stride {}, padding {})",
                            spec.kernel, spec.stride, spec.padding
                        ),
                    });
                }
                let packed = pack_winograd(
                    &spec,
                    weight,
                    bias,
                    tiles.block.oc_vecs * tiles.lanes,
                    variant,
                );
                match options.precision {
                    Precision::F32 => packed,
                    Precision::F16Weights => packed.into_f16()?,
                    Precision::Bf16 => {
                        bf16_gemm(isa)?;
                        packed.into_bf16_pairs(variant.alpha() * variant.alpha())?
                    }
                }
            }
        };
        // Direct convolution keeps f32 weights whatever was asked (see `Precision`).
        let (precision, bf16) = match (&packed.half, &packed.pairs) {
            (Some(_), _) => (Precision::F16Weights, None),
            (_, Some(_)) => (Precision::Bf16, Some(bf16_gemm(isa)?)),
            (None, None) => (Precision::F32, None),
        };
        Ok(Self {
            spec,
            relu: epilogue.relu,
            algorithm,
            isa,
            token,
            tiles,
            parallelism: options.parallelism,
            precision,
            bf16,
            packed,
            scratch: Mutex::new(AlignedVec::default()),
        })
    }

    /// The convolution.
    pub fn spec(&self) -> &ConvSpec {
        &self.spec
    }

    /// The algorithm in use (never `Auto`).
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The ISA in use.
    pub fn isa(&self) -> Isa {
        self.isa
    }

    /// The precision its weights are stored in: [`PlanOptions::precision`] for Winograd plans,
    /// always [`Precision::F32`] for direct convolution.
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// The micro-kernel that runs inputs of shape `input` in the current rayon pool, named as
    /// `<algorithm>-<isa>-<columns>x<vectors>`: `direct-avx512f-10x2` is direct convolution on
    /// AVX-512F with register blocks of 10 output pixels × 2 vectors of output channels,
    /// `winograd-f43-avx2fma-6x2` F(4,3) with blocks of 6 tiles × 2 vectors. The block can
    /// depend on the input size (a narrower one where it pads less) and, through the row bands,
    /// on the pool's thread count. F16 weights add `-f16w`, bf16 operands `-bf16`.
    pub fn kernel_name(&self, input: Shape) -> Result<String, ConvError> {
        let block = self.geometry(input)?.block;
        let suffix = match self.precision {
            Precision::F32 => "",
            Precision::F16Weights => "-f16w",
            Precision::Bf16 => "-bf16",
        };
        Ok(format!(
            "{}-{}-{}x{}{suffix}",
            self.algorithm.name(),
            self.isa.name(),
            block.columns,
            block.oc_vecs
        ))
    }

    /// The NCHWc channel block of blocked [`Conv2dPlan::run`] inputs and outputs (the ISA's lane
    /// count).
    pub fn block(&self) -> usize {
        self.tiles.lanes
    }

    /// Bytes of packed (transformed) weights the plan streams per run.
    pub fn packed_weight_bytes(&self) -> usize {
        self.packed.weight_bytes()
    }

    /// Output shape for an input shape (validates the channel count and size).
    pub fn output_shape(&self, input: Shape) -> Result<Shape, ConvError> {
        Ok(self.spec.output_shape(input)?)
    }

    /// Floats of scratch a run with caller scratch needs for inputs of shape `input` on
    /// `threads` threads (the size of the rayon pool it will run in; ignored under
    /// [`Parallelism::Sequential`]). The schedule depends on the thread count (layers with few
    /// output-channel groups are split into row bands, each with its own GEMM scratch, and
    /// band-major Winograd runs give each band its own transformed input), so a buffer sized for
    /// another thread count than the run's can be too small: the run then reports
    /// [`ConvError::ScratchTooSmall`], never overruns it.
    ///
    /// The length includes up to one cache line of slack: the kernels start their scratch on a
    /// cache-line boundary, so a buffer of this length works wherever it starts.
    pub fn scratch_len(&self, input: Shape, threads: usize) -> Result<usize, ConvError> {
        Ok(scratch_floats(
            self.scratch_parts(&self.geometry_on(input, threads)?),
        ))
    }

    /// Runs `input` into `output`, in the current rayon pool under [`Parallelism::Rayon`].
    ///
    /// Either side may be NCHW ([`Tensor`]) or NCHWc blocked by [`Conv2dPlan::block`]
    /// ([`BlockedTensor`], or a view into an engine's memory): NCHWc in and out chains layers
    /// with no layout conversion; an NCHW input (a network's image) is staged straight from
    /// NCHW (for an RGB image, 3 floats per pixel, never widened to a channel block first); an
    /// NCHW output is computed image by image into scratch and converted.
    ///
    /// `scratch`: the caller's buffer of at least [`Conv2dPlan::scratch_len`] floats, or `None`
    /// for the plan's own (grown on the first run with a larger input). Never allocates with
    /// caller scratch, nor once the plan's own is large enough.
    pub fn run<'i, 'o>(
        &self,
        input: impl Into<ConvInput<'i>>,
        output: impl Into<ConvOutput<'o>>,
        scratch: Option<&mut [f32]>,
    ) -> Result<(), ConvError> {
        let (input, mut output) = (input.into(), output.into());
        match scratch {
            Some(scratch) => self.run_images(input, &mut output, scratch),
            None => {
                let needed = scratch_floats(self.scratch_parts(&self.geometry(input.shape())?));
                let mut own = self.scratch.lock().unwrap_or_else(|p| p.into_inner());
                if own.len() < needed {
                    *own = AlignedVec::zeros(needed);
                }
                self.run_images(input, &mut output, &mut own)
            }
        }
    }

    /// A [`ConvError::BlockMismatch`] unless `block` is the plan's lane count.
    fn check_block(&self, operand: &'static str, block: usize) -> Result<(), ConvError> {
        let lanes = self.tiles.lanes;
        if block == lanes {
            Ok(())
        } else {
            Err(ConvError::BlockMismatch {
                operand,
                expected: lanes,
                actual: block,
            })
        }
    }

    /// Checks both sides, then stages and convolves image by image.
    fn run_images(
        &self,
        input: ConvInput<'_>,
        output: &mut ConvOutput<'_>,
        scratch: &mut [f32],
    ) -> Result<(), ConvError> {
        let lanes = self.tiles.lanes;
        if let ConvInput::Blocked(view) = input {
            self.check_block("input", view.block())?;
        }
        let shape = input.shape();
        let geo = self.geometry(shape)?;
        let expected = self.output_shape(shape)?;
        match output {
            ConvOutput::Nchw(t) => t.expect_shape("output", expected)?,
            ConvOutput::Blocked(view) => {
                self.check_block("output", view.block())?;
                if view.shape() != expected {
                    return Err(TensorError::ShapeMismatch {
                        operand: "output",
                        expected: expected.to_vec(),
                        actual: view.shape().to_vec(),
                    }
                    .into());
                }
            }
        }
        let [staged, v, m, nchwc] = self.split_scratch(&geo, scratch)?;
        if let (Some(passes), ConvInput::Blocked(t), ConvOutput::Blocked(o)) =
            (geo.passes, input, &mut *output)
        {
            self.image_passes(&geo, &passes, t.data(), v, o.data_mut());
            return Ok(());
        }
        let [_, c, h, w] = shape;
        let out_len = geo.out_len(&self.spec, lanes);
        let out_plane = geo.out_h * geo.out_w;
        let nchw_len = self.spec.out_channels * out_plane;
        for i in 0..geo.n {
            let out: &mut [f32] = match output {
                ConvOutput::Blocked(view) => &mut view.data_mut()[i * out_len..][..out_len],
                ConvOutput::Nchw(_) => nchwc,
            };
            match input {
                ConvInput::Nchw(t) => {
                    let in_len = c * h * w;
                    let image = &t.data()[i * in_len..][..in_len];
                    self.nchw_image(&geo, image, staged, v, m, out);
                }
                ConvInput::Blocked(t) => {
                    let in_len = c.div_ceil(lanes) * h * w * lanes;
                    let image = &t.data()[i * in_len..][..in_len];
                    // An unpadded NCHWc staging is the blocked image itself: read it in place.
                    if geo.staged.pad == 0 && geo.staged.lanes == lanes {
                        self.image(&geo, image, v, m, out);
                    } else {
                        geo.staged
                            .stage_blocked(image, lanes, staged, self.parallel());
                        self.image(&geo, staged, v, m, out);
                    }
                }
            }
            if let ConvOutput::Nchw(t) = output {
                blocked_to_nchw(
                    nchwc,
                    lanes,
                    self.spec.out_channels,
                    out_plane,
                    &mut t.data_mut()[i * nchw_len..][..nchw_len],
                    self.parallel(),
                );
            }
        }
        Ok(())
    }

    fn split_scratch<'s>(
        &self,
        geo: &Geometry,
        scratch: &'s mut [f32],
    ) -> Result<[&'s mut [f32]; 4], ConvError> {
        let parts = self.scratch_parts(geo);
        // The length rule does not depend on where the buffer starts (see `scratch_len`).
        let needed = scratch_floats(parts);
        if scratch.len() < needed {
            return Err(ConvError::ScratchTooSmall {
                needed,
                actual: scratch.len(),
            });
        }
        // Skip to the first cache-line boundary: every vector the kernels load from or store to
        // scratch is then aligned (a split 64-byte access touches two cache lines).
        let skip = scratch
            .as_ptr()
            .align_offset(ALIGN_BYTES)
            .min(ALIGN_FLOATS - 1);
        let mut rest = &mut scratch[skip..];
        Ok(parts.map(|len| {
            let (part, tail) =
                std::mem::take(&mut rest).split_at_mut(len.next_multiple_of(ALIGN_FLOATS));
            rest = tail;
            &mut part[..len]
        }))
    }
}

/// Floats of scratch for parts of lengths `parts`: each rounded up to whole cache lines, plus
/// the slack that lets the first start on one wherever the buffer starts.
fn scratch_floats(parts: [usize; 4]) -> usize {
    parts
        .iter()
        .map(|len| len.next_multiple_of(ALIGN_FLOATS))
        .sum::<usize>()
        + ALIGN_FLOATS
        - 1
}

/// The Winograd variant of an algorithm (`None` for direct / auto).
fn variant_of(algorithm: Algorithm) -> Option<Variant> {
    match algorithm {
        Algorithm::WinogradF23 => Some(Variant::F23),
        Algorithm::WinogradF43 => Some(Variant::F43),
        Algorithm::WinogradF63 => Some(Variant::F63),
        Algorithm::Auto | Algorithm::Direct => None,
    }
}

/// The bf16-pair GEMM for plans on `isa`: it runs on AVX-512F CPUs with AVX512-BF16.
fn bf16_gemm(isa: Isa) -> Result<Bf16Gemm, ConvError> {
    let unavailable = |reason: String| ConvError::PrecisionUnavailable {
        precision: Precision::Bf16.name(),
        reason,
    };
    if isa != Isa::Avx512f {
        return Err(unavailable(format!(
            "the bf16 GEMM runs on avx512f with AVX512-BF16, and this plan's ISA is {isa}"
        )));
    }
    Bf16Gemm::detect().ok_or_else(|| unavailable("this CPU has no AVX512-BF16".into()))
}
