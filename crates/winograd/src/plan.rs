//! [`Conv2dPlan`]: a convolution layer with packed (and, for Winograd, pre-transformed) weights,
//! its algorithm and ISA chosen once, run many times without allocating.

use crate::arch::{Kernels, RegisterBlock, scalar::Scalar};
use crate::kernels::winograd::SUPER_BLOCK;
use crate::kernels::{Band, DirectJob, GemmJob, InputJob, Rows};
use crate::pack::{Packed, pack_direct, pack_winograd};
use crate::stage::{Staged, blocked_to_nchw};
use crate::transforms::Variant;
use crate::{Algorithm, ConvError, Isa, Parallelism, PlanOptions, auto};
use rayon::prelude::*;
use reparam_tensor::{
    ALIGN_BYTES, ALIGN_FLOATS, AlignedVec, BlockedTensor, BlockedView, BlockedViewMut, ConvSpec,
    Epilogue, Shape, Tensor, TensorError,
};
use std::sync::Mutex;

/// The detected capability token of the plan's ISA.
#[derive(Debug, Clone, Copy)]
enum Token {
    Scalar(Scalar),
    #[cfg(target_arch = "x86_64")]
    Avx512f(crate::arch::x86_64::Avx512f),
    #[cfg(target_arch = "x86_64")]
    Avx2Fma(crate::arch::x86_64::Avx2Fma),
    #[cfg(target_arch = "aarch64")]
    Neon(crate::arch::aarch64::Neon),
}

/// Calls `$body` with `$k` bound to the concrete token (a generic call per ISA).
macro_rules! with_token {
    ($token:expr, $k:ident => $body:expr) => {
        match $token {
            Token::Scalar($k) => $body,
            #[cfg(target_arch = "x86_64")]
            Token::Avx512f($k) => $body,
            #[cfg(target_arch = "x86_64")]
            Token::Avx2Fma($k) => $body,
            #[cfg(target_arch = "aarch64")]
            Token::Neon($k) => $body,
        }
    };
}

impl Token {
    fn new(isa: Isa) -> Result<Self, ConvError> {
        let unavailable = || {
            isa.require().err().unwrap_or(ConvError::IsaUnavailable {
                isa,
                available: String::new(),
            })
        };
        match isa {
            Isa::Scalar => Ok(Self::Scalar(Scalar)),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512f => crate::arch::x86_64::Avx512f::detect()
                .map(Self::Avx512f)
                .ok_or_else(unavailable),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2Fma => crate::arch::x86_64::Avx2Fma::detect()
                .map(Self::Avx2Fma)
                .ok_or_else(unavailable),
            #[cfg(target_arch = "aarch64")]
            Isa::Neon => crate::arch::aarch64::Neon::detect()
                .map(Self::Neon)
                .ok_or_else(unavailable),
            #[allow(
                unreachable_patterns,
                reason = "which arms exist depends on the target"
            )]
            _ => Err(unavailable()),
        }
    }

    /// Lanes and the register block for `spec`: the ISA's main block (`DIRECT` for direct
    /// convolution, `MAIN` for Winograd), or its 3-vector alternative when that avoids computing
    /// padding lanes (channel blocks a multiple of 3 but not of the main block's vector count).
    /// The direct first layer on a compact staging (fewer input channels than lanes) takes the
    /// ISA's `FIRST` block where it has one that divides the channel blocks, else the narrow
    /// form of the other choice, whose accumulators leave room for the pixel windows
    /// (`docs/performance.md#first-layer-narrow-block`).
    fn shape(self, spec: &ConvSpec, direct: bool) -> TileShape {
        fn of<K: Kernels>(_: K, spec: &ConvSpec, direct: bool) -> TileShape {
            let blocks = spec.out_channels.div_ceil(K::LANES);
            let first_layer = direct && spec.kernel == 3 && spec.in_channels < K::LANES;
            let main = if direct { K::DIRECT } else { K::MAIN };
            let block = if let Some(first) = K::FIRST
                && first_layer
                && blocks % first.oc_vecs == 0
            {
                first
            } else {
                let block = if blocks % main.oc_vecs != 0 && blocks % K::ALT.oc_vecs == 0 {
                    K::ALT
                } else {
                    main
                };
                if first_layer { block.narrow() } else { block }
            };
            TileShape {
                lanes: K::LANES,
                block,
            }
        }
        with_token!(self, k => of(k, spec, direct))
    }
}

#[derive(Debug, Clone, Copy)]
struct TileShape {
    lanes: usize,
    block: RegisterBlock,
}

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
/// plan.run(&input, &mut output)?;
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
    packed: Packed,
    scratch: Mutex<AlignedVec>,
}

/// Smallest output width at which direct convolution on one thread reads its input in place
/// (see `Conv2dPlan::geometry`).
const IN_PLACE_MIN_WIDTH: usize = 32;

/// The input of a run with a blocked output ([`Conv2dPlan::run_view`]).
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

/// Per-run geometry (depends on the input shape).
#[derive(Debug, Clone, Copy)]
struct Geometry {
    n: usize,
    out_h: usize,
    out_w: usize,
    staged: Staged,
    winograd: Option<WinoGeometry>,
    /// Row bands each output-channel group is split into, so that layers with fewer groups than
    /// threads still use every thread.
    bands: usize,
    /// The register block: the plan's, or its narrow form where that pads less.
    block: RegisterBlock,
    /// The first layer (compact staging) from an NCHW input: staged in chunks of
    /// [`FIRST_LAYER_CHUNK_ROWS`] output rows, each right before it is convolved, by this many
    /// parts (threads' shares) with their own chunk buffers; 0 when the image is staged whole.
    first_layer_parts: usize,
}

#[derive(Debug, Clone, Copy)]
struct WinoGeometry {
    variant: Variant,
    tiles_x: usize,
    tiles: usize,
    block_len: usize,
    schedule: Schedule,
}

/// How a Winograd run divides its work between threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Schedule {
    /// Two phases: every tile's input transform (parallel over tile blocks), then the GEMM and
    /// output transform per output-channel group (and row band). Each thread streams only its
    /// groups' weights, and reads transformed input other threads wrote: for layers whose
    /// weights are large next to their transformed input, and for one thread.
    Phases,
    /// `parts` row bands, each transforming its own tiles and then running every group's GEMM
    /// on them: the transformed input stays on the core that made it (on 2 threads the
    /// two-phase schedule's input transform took 75 % more CPU time than on one, writing lines
    /// the other core had read), and every thread reads all the weights. For layers whose
    /// weights are small next to their transformed input (see [`BAND_MAJOR_WEIGHT_RATIO`]).
    BandMajor {
        /// Row bands (one per thread).
        parts: usize,
        /// Tile blocks a band's transformed input holds at most.
        part_blocks: usize,
    },
}

/// Most output planes (channel blocks) a band-major run handles; wider layers run in phases.
const BAND_MAJOR_MAX_PLANES: usize = 64;

/// A multi-threaded Winograd run is band-major when its transformed weights are at most this
/// many times the size of its transformed input
/// (`docs/performance.md#band-major-winograd-schedule`).
const BAND_MAJOR_WEIGHT_RATIO: usize = 4;

/// Output rows the first layer stages and convolves at a time from an NCHW input (see
/// `Conv2dPlan::first_layer_chunks`): 17 staged rows at stride 2, 46 KB for a 224-wide RGB
/// image, still in L1/L2 when the kernel reads them
/// (`docs/performance.md#first-layer-chunked-staging`).
const FIRST_LAYER_CHUNK_ROWS: usize = 8;

/// On one thread, the first layer stages by chunks only when the whole staging would take at
/// least this many bytes (a 224x224 RGB image: 613 KB; 112x112: 153 KB).
const FIRST_LAYER_CHUNK_MIN_BYTES: usize = 512 * 1024;

impl Geometry {
    fn out_len(&self, spec: &ConvSpec, lanes: usize) -> usize {
        spec.out_channels.div_ceil(lanes) * self.out_h * self.out_w * lanes
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
            (Algorithm::Auto, false) => auto::choose(&spec, options.input_hw),
            (a, _) => a,
        };
        Self::with_algorithm(spec, weight, epilogue, algorithm, isa, options.parallelism)
    }

    /// Builds a plan for a concrete algorithm and ISA (used by [`Conv2dPlan::new`] and autotune).
    pub(crate) fn with_algorithm(
        spec: ConvSpec,
        weight: &Tensor,
        epilogue: &Epilogue,
        algorithm: Algorithm,
        isa: Isa,
        parallelism: Parallelism,
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
                pack_winograd(
                    &spec,
                    weight,
                    bias,
                    tiles.block.oc_vecs * tiles.lanes,
                    variant,
                )
            }
        };
        Ok(Self {
            spec,
            relu: epilogue.relu,
            algorithm,
            isa,
            token,
            tiles,
            parallelism,
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

    /// The micro-kernel that runs inputs of shape `input` in the current rayon pool, named as
    /// `<algorithm>-<isa>-<columns>x<vectors>`: `direct-avx512f-10x2` is direct convolution on
    /// AVX-512F with register blocks of 10 output pixels × 2 vectors of output channels,
    /// `winograd-f43-avx2fma-6x2` F(4,3) with blocks of 6 tiles × 2 vectors. The block can
    /// depend on the input size (a narrower one where it pads less) and, through the row bands,
    /// on the pool's thread count.
    pub fn kernel_name(&self, input: Shape) -> Result<String, ConvError> {
        let block = self.geometry(input)?.block;
        Ok(format!(
            "{}-{}-{}x{}",
            self.algorithm.name(),
            self.isa.name(),
            block.columns,
            block.oc_vecs
        ))
    }

    /// The NCHWc channel block of [`Conv2dPlan::run_blocked`] tensors (the ISA's lane count).
    pub fn block(&self) -> usize {
        self.tiles.lanes
    }

    /// Bytes of packed (transformed) weights the plan streams per run.
    pub fn packed_weight_bytes(&self) -> usize {
        self.packed.weights.len() * 4
    }

    /// Output shape for an input shape (validates the channel count and size).
    pub fn output_shape(&self, input: Shape) -> Result<Shape, ConvError> {
        Ok(self.spec.output_shape(input)?)
    }

    fn geometry(&self, input: Shape) -> Result<Geometry, ConvError> {
        let [n, c, h, w] = input;
        let [_, _, out_h, out_w] = self.output_shape(input)?;
        if n == 0 {
            return Err(TensorError::invalid("input", "batch N must be at least 1").into());
        }
        let lanes = self.tiles.lanes;
        let threads = match self.parallelism {
            Parallelism::Sequential => 1,
            Parallelism::Rayon => rayon::current_num_threads(),
        };
        let groups = self.packed.groups.len();
        let align = variant_of(self.algorithm).map_or(1, Variant::m);
        let bands = if groups >= 2 * threads {
            1
        } else {
            (2 * threads)
                .div_ceil(groups)
                .min(out_h.div_ceil(align))
                .max(1)
        };
        let p = self.spec.padding;
        // The register block is the plan's, or its narrow form where that pads less: fitted to
        // the tiles of an image (Winograd) or the pixels of a band (direct); the first layer
        // runs the plan's block as it is (`Token::shape` chose it for that body).
        let (staged, winograd, block, first_layer_parts) = match variant_of(self.algorithm) {
            Some(variant) => {
                let m = variant.m();
                let (tiles_y, tiles_x) = (out_h.div_ceil(m), out_w.div_ceil(m));
                let tiles = tiles_y * tiles_x;
                let a2 = variant.alpha() * variant.alpha();
                let block = self.tiles.block.fitted(tiles);
                // The input transform reads the unpadded NCHWc image and clips its windows at the
                // borders: blocked inputs are read in place, NCHW ones converted to NCHWc here.
                let staged = Staged {
                    lanes,
                    channels: c,
                    h,
                    w,
                    hp: h,
                    wp: w,
                    pad: 0,
                };
                let block_len = a2 * block.columns * c.div_ceil(lanes) * lanes;
                let planes = self.spec.out_channels.div_ceil(lanes);
                let weight_bytes = self.packed.weights.len() * 4;
                let v_bytes = tiles.div_ceil(block.columns) * block_len * 4;
                let band_major = threads >= 2
                    && tiles_y >= 2
                    && planes <= BAND_MAJOR_MAX_PLANES
                    && weight_bytes <= BAND_MAJOR_WEIGHT_RATIO * v_bytes;
                let schedule = if band_major {
                    let parts = threads.min(tiles_y);
                    // The tiles of the tallest band; its first and last blocks may straddle
                    // the bands' boundaries.
                    let part_tiles = (band_rows_max(out_h, parts, m) / m + 1) * tiles_x;
                    Schedule::BandMajor {
                        parts,
                        part_blocks: part_tiles.div_ceil(block.columns) + 1,
                    }
                } else {
                    Schedule::Phases
                };
                (
                    staged,
                    Some(WinoGeometry {
                        variant,
                        tiles_x,
                        tiles,
                        block_len,
                        schedule,
                    }),
                    block,
                    0,
                )
            }
            None => {
                // Fewer input channels than a block (the RGB first layer): compact staging, with
                // the padding. Wide outputs, and any output on several threads: the kernel reads
                // the unpadded NCHWc image in place and applies the padding itself; narrow ones
                // on one thread get a padded staging (`docs/performance.md#in-place-direct-input`).
                let compact = self.spec.kernel == 3 && c < lanes;
                let in_place = !compact && (out_w >= IN_PLACE_MIN_WIDTH || threads >= 2);
                let pad = if in_place { 0 } else { p };
                let staged = Staged {
                    lanes: if compact { c } else { lanes },
                    channels: c,
                    h,
                    w,
                    hp: h + 2 * pad,
                    wp: w + 2 * pad,
                    pad,
                };
                // The first-layer body runs the plan's block (see `Token::shape`).
                let block = if compact {
                    self.tiles.block
                } else {
                    self.tiles.block.fitted(out_h.div_ceil(bands) * out_w)
                };
                // The first layer stages by chunks on several threads, and on one where the
                // whole staging is large (`docs/performance.md#first-layer-chunked-staging`).
                let first_layer_parts = if compact
                    && self.spec.out_channels.div_ceil(lanes) <= BAND_MAJOR_MAX_PLANES
                    && (threads >= 2
                        || staged.len() * size_of::<f32>() >= FIRST_LAYER_CHUNK_MIN_BYTES)
                {
                    let parts = if threads == 1 { 1 } else { 2 * threads };
                    parts.min(out_h.div_ceil(FIRST_LAYER_CHUNK_ROWS))
                } else {
                    0
                };
                (staged, None, block, first_layer_parts)
            }
        };
        Ok(Geometry {
            n,
            out_h,
            out_w,
            staged,
            winograd,
            bands,
            block,
            first_layer_parts,
        })
    }

    /// Whether an NCHW input of shape `input`, in the current rayon pool, is staged by chunks
    /// (tests check both ways of staging the first layer).
    #[cfg(test)]
    pub(crate) fn stages_by_chunks(&self, input: Shape) -> Result<bool, ConvError> {
        Ok(self.geometry(input)?.first_layer_parts > 0)
    }

    /// Whether a Winograd run on inputs of shape `input`, in the current rayon pool, is
    /// band-major (tests check that both schedules are exercised).
    #[cfg(test)]
    pub(crate) fn is_band_major(&self, input: Shape) -> Result<bool, ConvError> {
        Ok(self
            .geometry(input)?
            .winograd
            .is_some_and(|wg| wg.schedule != Schedule::Phases))
    }

    /// The register block a run on inputs of shape `input` uses (tests check that every ISA's
    /// narrow blocks are exercised).
    #[cfg(test)]
    pub(crate) fn register_block(&self, input: Shape) -> Result<RegisterBlock, ConvError> {
        Ok(self.geometry(input)?.block)
    }

    /// Whether staging and kernels may use the rayon pool.
    fn parallel(&self) -> bool {
        self.parallelism == Parallelism::Rayon
    }

    /// `(staged, V, M, blocked output)` scratch lengths in floats. In the buffer each part takes
    /// a whole number of cache lines, so that every part starts aligned when the first does.
    fn scratch_parts(&self, geo: &Geometry) -> [usize; 4] {
        let (v, m) = match geo.winograd {
            Some(wg) => {
                let blocks = wg.tiles.div_ceil(geo.block.columns);
                let a2 = wg.variant.alpha() * wg.variant.alpha();
                let per_group = SUPER_BLOCK * geo.block.columns * a2 * self.packed.group_width;
                match wg.schedule {
                    Schedule::Phases => (
                        blocks * wg.block_len,
                        self.packed.groups.len() * geo.bands * per_group,
                    ),
                    // Per band: its transformed input and one group's GEMM results.
                    Schedule::BandMajor { parts, part_blocks } => {
                        (parts * (part_blocks * wg.block_len + per_group), 0)
                    }
                }
            }
            None => (0, 0),
        };
        let staged = match geo.first_layer_parts {
            0 => geo.staged.len(),
            parts => geo
                .staged
                .len()
                .max(parts * self.first_layer_chunk_len(geo)),
        };
        [staged, v, m, geo.out_len(&self.spec, self.tiles.lanes)]
    }

    /// Floats of one chunk buffer of the first layer's staging: the staged rows that
    /// [`FIRST_LAYER_CHUNK_ROWS`] output rows read.
    fn first_layer_chunk_len(&self, geo: &Geometry) -> usize {
        let rows = (FIRST_LAYER_CHUNK_ROWS - 1) * self.spec.stride + self.spec.kernel;
        rows * geo.staged.wp * geo.staged.lanes
    }

    /// Floats of scratch [`Conv2dPlan::run_with_scratch`] and
    /// [`Conv2dPlan::run_blocked_with_scratch`] need for inputs of shape `input`.
    ///
    /// With [`Parallelism::Rayon`] the size depends on the thread count of the rayon pool it is
    /// called in (layers with few output-channel groups are split into row bands, each with its
    /// own GEMM scratch, and band-major Winograd runs give each band its own transformed input):
    /// call it in the pool that will run the plan. A buffer sized in a smaller
    /// pool is reported as [`ConvError::ScratchTooSmall`], never overrun.
    ///
    /// The length includes up to one cache line of slack: the kernels start their scratch on a
    /// cache-line boundary, so a buffer of this length works wherever it starts.
    pub fn scratch_len(&self, input: Shape) -> Result<usize, ConvError> {
        Ok(scratch_floats(self.scratch_parts(&self.geometry(input)?)))
    }

    /// Runs on NCHW tensors using the plan's own scratch buffer (grown on the first run with a
    /// larger input; no allocation afterwards).
    pub fn run(&self, input: &Tensor, output: &mut Tensor) -> Result<(), ConvError> {
        self.with_own_scratch(input.shape(), |scratch| {
            self.run_with_scratch(input, output, scratch)
        })
    }

    /// Runs on NCHW tensors with caller-provided scratch (at least
    /// [`Conv2dPlan::scratch_len`] floats). Never allocates.
    pub fn run_with_scratch(
        &self,
        input: &Tensor,
        output: &mut Tensor,
        scratch: &mut [f32],
    ) -> Result<(), ConvError> {
        let geo = self.geometry(input.shape())?;
        output.expect_shape("output", self.output_shape(input.shape())?)?;
        let [staged, v, m, out] = self.split_scratch(&geo, scratch)?;
        let [_, c, h, w] = input.shape();
        let in_len = c * h * w;
        let out_plane = geo.out_h * geo.out_w;
        let out_len = self.spec.out_channels * out_plane;
        for i in 0..geo.n {
            let image = &input.data()[i * in_len..][..in_len];
            self.nchw_image(&geo, image, staged, v, m, out);
            blocked_to_nchw(
                out,
                self.tiles.lanes,
                self.spec.out_channels,
                out_plane,
                &mut output.data_mut()[i * out_len..][..out_len],
                self.parallel(),
            );
        }
        Ok(())
    }

    /// Runs on NCHWc tensors blocked by [`Conv2dPlan::block`], using the plan's own scratch.
    pub fn run_blocked(
        &self,
        input: &BlockedTensor,
        output: &mut BlockedTensor,
    ) -> Result<(), ConvError> {
        self.with_own_scratch(input.shape(), |scratch| {
            self.run_blocked_with_scratch(input, output, scratch)
        })
    }

    /// Runs on NCHWc tensors with caller-provided scratch. Chaining layers this way pays no
    /// layout conversion.
    pub fn run_blocked_with_scratch(
        &self,
        input: &BlockedTensor,
        output: &mut BlockedTensor,
        scratch: &mut [f32],
    ) -> Result<(), ConvError> {
        self.run_view(ConvInput::Blocked(input.view()), output.view_mut(), scratch)
    }

    /// Runs an NCHW input (e.g. the network's image) into an NCHWc output blocked by
    /// [`Conv2dPlan::block`], using the plan's own scratch: the first layer of a chain. The
    /// input is staged straight from NCHW (for an RGB image, 3 floats per pixel), never
    /// widened to a channel block first.
    pub fn run_nchw_to_blocked(
        &self,
        input: &Tensor,
        output: &mut BlockedTensor,
    ) -> Result<(), ConvError> {
        self.with_own_scratch(input.shape(), |scratch| {
            self.run_nchw_to_blocked_with_scratch(input, output, scratch)
        })
    }

    /// [`Conv2dPlan::run_nchw_to_blocked`] with caller-provided scratch. Never allocates.
    pub fn run_nchw_to_blocked_with_scratch(
        &self,
        input: &Tensor,
        output: &mut BlockedTensor,
        scratch: &mut [f32],
    ) -> Result<(), ConvError> {
        self.run_view(ConvInput::Nchw(input), output.view_mut(), scratch)
    }

    /// Runs an NCHW or NCHWc input into an NCHWc output that borrows its memory (an engine's
    /// activation arena), with caller-provided scratch of at least
    /// [`Conv2dPlan::scratch_len`] floats. Never allocates; the blocked runs above are this
    /// run on their tensors' views.
    pub fn run_view(
        &self,
        input: ConvInput<'_>,
        mut output: BlockedViewMut<'_>,
        scratch: &mut [f32],
    ) -> Result<(), ConvError> {
        if let ConvInput::Blocked(view) = input {
            self.check_block("input", view.block())?;
        }
        self.run_into_blocked(input, &mut output, scratch)
    }

    /// Runs `f` on the plan's own scratch buffer, grown first if inputs of shape `input` need
    /// more (no allocation once it is large enough).
    fn with_own_scratch(
        &self,
        input: Shape,
        f: impl FnOnce(&mut [f32]) -> Result<(), ConvError>,
    ) -> Result<(), ConvError> {
        let needed = self.scratch_len(input)?;
        let mut scratch = self.scratch.lock().unwrap_or_else(|p| p.into_inner());
        if scratch.len() < needed {
            *scratch = AlignedVec::zeros(needed);
        }
        f(&mut scratch)
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

    /// The blocked-output runs: checks the output, then stages and convolves image by image.
    fn run_into_blocked(
        &self,
        input: ConvInput<'_>,
        output: &mut BlockedViewMut<'_>,
        scratch: &mut [f32],
    ) -> Result<(), ConvError> {
        self.check_block("output", output.block())?;
        let lanes = self.tiles.lanes;
        let shape = input.shape();
        let geo = self.geometry(shape)?;
        let expected = self.output_shape(shape)?;
        if output.shape() != expected {
            return Err(TensorError::ShapeMismatch {
                operand: "output",
                expected: expected.to_vec(),
                actual: output.shape().to_vec(),
            }
            .into());
        }
        let [staged, v, m, _] = self.split_scratch(&geo, scratch)?;
        let [_, c, h, w] = shape;
        let out_len = geo.out_len(&self.spec, lanes);
        for i in 0..geo.n {
            match input {
                ConvInput::Nchw(t) => {
                    let in_len = c * h * w;
                    let image = &t.data()[i * in_len..][..in_len];
                    let out = &mut output.data_mut()[i * out_len..][..out_len];
                    self.nchw_image(&geo, image, staged, v, m, out);
                    continue;
                }
                ConvInput::Blocked(t) => {
                    let in_len = c.div_ceil(lanes) * h * w * lanes;
                    let image = &t.data()[i * in_len..][..in_len];
                    // An unpadded NCHWc staging is the blocked image itself: read it in place.
                    if geo.staged.pad == 0 && geo.staged.lanes == lanes {
                        self.image(
                            &geo,
                            image,
                            v,
                            m,
                            &mut output.data_mut()[i * out_len..][..out_len],
                        );
                        continue;
                    }
                    geo.staged
                        .stage_blocked(image, lanes, staged, self.parallel());
                }
            }
            self.image(
                &geo,
                staged,
                v,
                m,
                &mut output.data_mut()[i * out_len..][..out_len],
            );
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

    /// Convolves one NCHW image into one NCHWc output image: the first layer stages and
    /// convolves it chunk by chunk, other layers stage it whole into `staged` first.
    fn nchw_image(
        &self,
        geo: &Geometry,
        image: &[f32],
        staged: &mut [f32],
        v: &mut [f32],
        m: &mut [f32],
        out: &mut [f32],
    ) {
        if geo.first_layer_parts > 0 {
            with_token!(self.token, k => self.first_layer_chunks(k, geo, image, staged, out))
        } else {
            geo.staged.stage_nchw(image, staged, self.parallel());
            self.image(geo, staged, v, m, out);
        }
    }

    /// The first layer from an NCHW image: the output rows are split into
    /// `geo.first_layer_parts` bands (one parallel loop), and each band, chunk by chunk of
    /// [`FIRST_LAYER_CHUNK_ROWS`] rows, stages the input rows the chunk reads into its own
    /// buffer and runs every output-channel group on them.
    fn first_layer_chunks<K: Kernels>(
        &self,
        k: K,
        geo: &Geometry,
        image: &[f32],
        staged: &mut [f32],
        out: &mut [f32],
    ) {
        let lanes = self.tiles.lanes;
        let st = geo.staged;
        let stride = self.spec.stride;
        let planes_per_group = self.packed.group_width / lanes;
        let rows = Rows::<BAND_MAJOR_MAX_PLANES>::whole(out, geo.out_h, geo.out_w * lanes);
        let chunk_len = self.first_layer_chunk_len(geo);
        let parts = geo.first_layer_parts;
        for_each_band(
            self.parallelism,
            rows,
            staged,
            parts,
            1,
            &|mut band, buffer| {
                while band.rows > 0 {
                    let rows = FIRST_LAYER_CHUNK_ROWS.min(band.rows);
                    let (mut chunk, rest) = band.split(rows);
                    band = rest;
                    // Staged (padded) rows row0·s .. (row0 + rows − 1)·s + K of the image.
                    let staged_rows = (chunk.rows - 1) * stride + self.spec.kernel;
                    let buffer = &mut buffer[..chunk_len];
                    st.stage_nchw_rows(image, buffer, chunk.row0 * stride, staged_rows);
                    for j in 0..self.packed.groups.len() {
                        let mut out = chunk.group(j * planes_per_group, planes_per_group);
                        // Rows relative to the chunk's staging.
                        out.row0 = 0;
                        let staging = (buffer as &[f32], staged_rows, st.wp, 0);
                        let job = self.direct_job(geo, j, staging, out);
                        k.direct(geo.block, self.spec.kernel, job);
                    }
                }
            },
        );
    }

    /// Convolves one image into one NCHWc output image: `staged` is the unpadded NCHWc image,
    /// except for the compact (RGB) staging of the first layer, which holds its padding (see
    /// `geometry`).
    fn image(&self, geo: &Geometry, staged: &[f32], v: &mut [f32], m: &mut [f32], out: &mut [f32]) {
        with_token!(self.token, k => self.image_on(k, geo, staged, v, m, out))
    }

    fn image_on<K: Kernels>(
        &self,
        k: K,
        geo: &Geometry,
        staged: &[f32],
        v: &mut [f32],
        m: &mut [f32],
        out: &mut [f32],
    ) {
        let lanes = self.tiles.lanes;
        let group_out = (self.packed.group_width / lanes) * geo.out_h * geo.out_w * lanes;
        let par = self.parallelism;
        let st = geo.staged;
        let row_len = geo.out_w * lanes;
        match geo.winograd {
            None => for_each_chunk(par, out, group_out, |j, out_j| {
                let band = Band::whole(out_j, geo.out_h, row_len);
                let staging = (staged, st.hp, st.wp, self.spec.padding - st.pad);
                for_each_band(par, band, &mut [], geo.bands, 1, &|band, _| {
                    k.direct(
                        geo.block,
                        self.spec.kernel,
                        self.direct_job(geo, j, staging, band),
                    )
                })
            }),
            Some(
                wg @ WinoGeometry {
                    schedule: Schedule::BandMajor { parts, part_blocks },
                    ..
                },
            ) => self.run_band_major(k, geo, wg, (parts, part_blocks), staged, v, out),
            Some(wg) => {
                for_each_chunk(par, v, wg.block_len, |i, v_i| {
                    let job = self.input_job(geo, &wg, staged, i);
                    k.winograd_input(geo.block, wg.variant, &job, v_i)
                });
                let m_len = m.len() / self.packed.groups.len();
                let v: &[f32] = v;
                let m_tile = wg.variant.m();
                for_each_chunk_pair(par, out, group_out, m, m_len, |j, out_j, m_j| {
                    let band = Band::whole(out_j, geo.out_h, row_len);
                    for_each_band(par, band, m_j, geo.bands, m_tile, &|band, m_band| {
                        let job = self.gemm_job(geo, &wg, j, (v, 0), band, m_band);
                        k.winograd_gemm_output(geo.block, wg.variant, job)
                    })
                });
            }
        }
    }

    /// Output-channel group `j`'s direct-convolution job on `(input, hp, wp, pad)` (a staging of
    /// `geo.staged`'s pixel layout, `hp × wp` pixels, `pad` applied by the kernel), writing `out`.
    fn direct_job<'a>(
        &'a self,
        geo: &Geometry,
        j: usize,
        (input, hp, wp, pad): (&'a [f32], usize, usize, usize),
        out: Band<'a>,
    ) -> DirectJob<'a> {
        let g = &self.packed.groups[j];
        DirectJob {
            w: self.packed.group_weights(j),
            next_w: self.packed.next_group_weights(j),
            c_start: g.k_start,
            c_len: g.k_len,
            input,
            pitch: geo.staged.lanes,
            hp,
            wp,
            pad,
            stride: self.spec.stride,
            bias: self.packed.group_bias(j),
            relu: self.relu,
            out,
            out_w: geo.out_w,
        }
    }

    /// The input transform's job for tile block `block` of one image (`input`: its unpadded
    /// NCHWc data).
    fn input_job<'a>(
        &self,
        geo: &Geometry,
        wg: &WinoGeometry,
        input: &'a [f32],
        block: usize,
    ) -> InputJob<'a> {
        let st = geo.staged;
        InputJob {
            input,
            h: st.h,
            w: st.w,
            channel_blocks: st.channels.div_ceil(self.tiles.lanes),
            tiles_x: wg.tiles_x,
            tiles: wg.tiles,
            first_tile: block * geo.block.columns,
        }
    }

    /// Output-channel group `j`'s GEMM and output transform: on the transformed input `v`, which
    /// starts at tile block `v_first_block`, into the rows `out` of the group's planes.
    fn gemm_job<'a>(
        &'a self,
        geo: &Geometry,
        wg: &WinoGeometry,
        j: usize,
        (v, v_first_block): (&'a [f32], usize),
        out: Band<'a>,
        m: &'a mut [f32],
    ) -> GemmJob<'a> {
        let g = &self.packed.groups[j];
        let lanes = self.tiles.lanes;
        GemmJob {
            u: self.packed.group_weights(j),
            next_u: self.packed.next_group_weights(j),
            k_start: g.k_start,
            k_len: g.k_len,
            v,
            v_first_block,
            cin_pad: geo.staged.channels.div_ceil(lanes) * lanes,
            tiles_x: wg.tiles_x,
            tiles: wg.tiles,
            bias: self.packed.group_bias(j),
            relu: self.relu,
            out,
            out_h: geo.out_h,
            out_w: geo.out_w,
            m,
        }
    }

    /// A [`Schedule::BandMajor`] Winograd run of one image: each row band transforms the
    /// tiles it needs into its own part of `scratch`, then runs every output-channel group's
    /// GEMM and output transform on them.
    #[allow(
        clippy::too_many_arguments,
        reason = "the per-run state of `image_on`, passed on; bundling it would only rename it"
    )]
    fn run_band_major<K: Kernels>(
        &self,
        k: K,
        geo: &Geometry,
        wg: WinoGeometry,
        (parts, part_blocks): (usize, usize),
        input: &[f32],
        scratch: &mut [f32],
        out: &mut [f32],
    ) {
        let lanes = self.tiles.lanes;
        let nt = geo.block.columns;
        let m_tile = wg.variant.m();
        let planes_per_group = self.packed.group_width / lanes;
        let rows = Rows::<BAND_MAJOR_MAX_PLANES>::whole(out, geo.out_h, geo.out_w * lanes);
        let part_v = part_blocks * wg.block_len;
        for_each_band(
            self.parallelism,
            rows,
            scratch,
            parts,
            m_tile,
            &|mut rows, part| {
                let (v, m) = part.split_at_mut(part_v);
                let first_tile = (rows.row0 / m_tile) * wg.tiles_x;
                let end_tile =
                    ((rows.row0 + rows.rows).div_ceil(m_tile) * wg.tiles_x).min(wg.tiles);
                let first_block = first_tile / nt;
                for (i, v_i) in
                    (first_block..end_tile.div_ceil(nt)).zip(v.chunks_exact_mut(wg.block_len))
                {
                    let job = self.input_job(geo, &wg, input, i);
                    k.winograd_input(geo.block, wg.variant, &job, v_i);
                }
                let v: &[f32] = v;
                for j in 0..self.packed.groups.len() {
                    let out = rows.group(j * planes_per_group, planes_per_group);
                    let job = self.gemm_job(geo, &wg, j, (v, first_block), out, &mut *m);
                    k.winograd_gemm_output(geo.block, wg.variant, job);
                }
            },
        );
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

/// Splits `band` into `parts` bands of whole multiples of `align` rows (the last may be shorter)
/// and runs `f(band, scratch part)` on each, in parallel with `rayon::join` under
/// [`Parallelism::Rayon`]. `scratch` holds `parts` equal parts (empty when `f` needs none).
fn for_each_band<const P: usize>(
    par: Parallelism,
    band: Rows<'_, P>,
    scratch: &mut [f32],
    parts: usize,
    align: usize,
    f: &(impl Fn(Rows<'_, P>, &mut [f32]) + Sync),
) {
    let part_len = scratch.len() / parts;
    let left_parts = parts / 2;
    let Some(first) = band_split(band.rows, parts, align) else {
        f(band, &mut scratch[..part_len]);
        return;
    };
    let (a, b) = band.split(first);
    let (sa, sb) = scratch.split_at_mut(left_parts * part_len);
    let right_parts = parts - left_parts;
    match par {
        Parallelism::Sequential => {
            for_each_band(par, a, sa, left_parts, align, f);
            for_each_band(par, b, sb, right_parts, align, f);
        }
        Parallelism::Rayon => {
            rayon::join(
                || for_each_band(par, a, sa, left_parts, align, f),
                || for_each_band(par, b, sb, right_parts, align, f),
            );
        }
    }
}

/// Where [`for_each_band`] splits `rows` rows for `parts` bands: the first `parts / 2` bands
/// get the returned number of rows (a multiple of `align`), the others the rest; `None` when
/// the rows stay one band.
fn band_split(rows: usize, parts: usize, align: usize) -> Option<usize> {
    if parts <= 1 {
        return None;
    }
    let first = (rows * (parts / 2) / parts).div_ceil(align) * align;
    (first > 0 && first < rows).then_some(first)
}

/// The most rows any of the bands [`for_each_band`] cuts `rows` rows into.
fn band_rows_max(rows: usize, parts: usize, align: usize) -> usize {
    match band_split(rows, parts, align) {
        None => rows,
        Some(first) => band_rows_max(first, parts / 2, align).max(band_rows_max(
            rows - first,
            parts - parts / 2,
            align,
        )),
    }
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

/// Runs `f(index, chunk)` over `chunk`-sized pieces of `data`, on rayon or sequentially.
fn for_each_chunk<T: Send>(
    par: Parallelism,
    data: &mut [T],
    chunk: usize,
    f: impl Fn(usize, &mut [T]) + Sync + Send,
) {
    match par {
        Parallelism::Sequential => data
            .chunks_mut(chunk)
            .enumerate()
            .for_each(|(i, c)| f(i, c)),
        Parallelism::Rayon => data
            .par_chunks_mut(chunk)
            .enumerate()
            .for_each(|(i, c)| f(i, c)),
    }
}

/// Like [`for_each_chunk`] over two slices in lockstep.
fn for_each_chunk_pair<T: Send, U: Send>(
    par: Parallelism,
    a: &mut [T],
    chunk_a: usize,
    b: &mut [U],
    chunk_b: usize,
    f: impl Fn(usize, &mut [T], &mut [U]) + Sync + Send,
) {
    match par {
        Parallelism::Sequential => a
            .chunks_mut(chunk_a)
            .zip(b.chunks_mut(chunk_b))
            .enumerate()
            .for_each(|(i, (x, y))| f(i, x, y)),
        Parallelism::Rayon => a
            .par_chunks_mut(chunk_a)
            .zip(b.par_chunks_mut(chunk_b))
            .enumerate()
            .for_each(|(i, (x, y))| f(i, x, y)),
    }
}
