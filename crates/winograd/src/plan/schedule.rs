//! Schedules: how a run of a plan divides its work, the thresholds that choose, and the
//! scratch each schedule needs (`docs/performance.md#kernel-design-findings`).

use super::parallel::band_rows_max;
use super::{Conv2dPlan, variant_of};
use crate::arch::RegisterBlock;
use crate::kernels::winograd::SUPER_BLOCK;
use crate::stage::Staged;
use crate::transforms::Variant;
use crate::{ConvError, Parallelism};
use reparam_tensor::{ALIGN_FLOATS, ConvSpec, Shape, TensorError};

/// Smallest output width at which direct convolution on one thread reads its input in place
/// (see `Conv2dPlan::geometry`).
const IN_PLACE_MIN_WIDTH: usize = 32;

/// Per-run geometry (depends on the input shape).
#[derive(Debug, Clone, Copy)]
pub(super) struct Geometry {
    pub(super) n: usize,
    pub(super) out_h: usize,
    pub(super) out_w: usize,
    pub(super) staged: Staged,
    pub(super) winograd: Option<WinoGeometry>,
    /// Row bands each output-channel group is split into, so that layers with fewer groups than
    /// threads still use every thread.
    pub(super) bands: usize,
    /// The register block: the plan's, or its narrow form where that pads less.
    pub(super) block: RegisterBlock,
    /// Multi-image passes, where the batch of blocked images makes them worthwhile (see
    /// [`ImagePasses`]); a run with an NCHW side still goes image by image.
    pub(super) passes: Option<ImagePasses>,
    /// The first layer (compact staging) from an NCHW input: staged in chunks of
    /// [`FIRST_LAYER_CHUNK_ROWS`] output rows, each right before it is convolved, by this many
    /// parts (threads' shares) with their own chunk buffers; 0 when the image is staged whole.
    pub(super) first_layer_parts: usize,
}

#[derive(Debug, Clone, Copy)]
pub(super) struct WinoGeometry {
    pub(super) variant: Variant,
    pub(super) tiles_x: usize,
    pub(super) tiles: usize,
    pub(super) block_len: usize,
    pub(super) schedule: Schedule,
}

/// A Winograd run of a batch of small images by passes: the batch is split into `parts`
/// contiguous shares of images (one per thread), and each share, `images` at a time, transforms
/// every image of the pass and runs each output-channel group's GEMM over all their tiles as
/// one super-block, so each weight panel is read once per pass instead of once per image (at
/// batch 1 a 14x14 F(4,3) layer reads its 5.3 MB of weights for 16 tiles). Each thread reads
/// all the weights, as under [`Schedule::BandMajor`]
/// (`docs/performance.md#multi-image-passes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct ImagePasses {
    /// Images per pass (at least 2).
    pub(super) images: usize,
    /// Images per thread's share (the last share may hold fewer).
    pub(super) share: usize,
    /// Shares (threads).
    pub(super) parts: usize,
    /// Tile blocks per image.
    pub(super) image_blocks: usize,
}

impl ImagePasses {
    /// Most tile blocks one pass spans: its GEMM results, `[blocks·NT][α²][R·L]`, stay in L2.
    pub(super) const MAX_BLOCKS: usize = 16;
    /// Most images one pass holds (`MAX_BLOCKS` images of one block each).
    pub(super) const MAX_IMAGES: usize = Self::MAX_BLOCKS;

    /// The passes for `n` images of `image_blocks` tile blocks on `threads` threads, or `None`
    /// where they do not pay: fewer than 2 images fit a pass, or there are fewer shares than
    /// threads (the image-by-image schedule keeps every thread busy).
    fn plan(n: usize, image_blocks: usize, threads: usize) -> Option<Self> {
        let fit = Self::MAX_BLOCKS / image_blocks.max(1);
        let share = n.div_ceil(threads);
        if fit < 2 || share < 2 || n < 2 * threads {
            return None;
        }
        // Passes as even as the share allows (8 images, 5 fit: two passes of 4).
        let passes = share.div_ceil(fit);
        Some(Self {
            images: share.div_ceil(passes),
            share,
            parts: n.div_ceil(share),
            image_blocks,
        })
    }
}

/// How a Winograd run divides its work between threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Schedule {
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
pub(super) const BAND_MAJOR_MAX_PLANES: usize = 64;

/// A multi-threaded Winograd run is band-major when its transformed weights are at most this
/// many times the size of its transformed input
/// (`docs/performance.md#band-major-winograd-schedule`).
const BAND_MAJOR_WEIGHT_RATIO: usize = 4;

/// Output rows the first layer stages and convolves at a time from an NCHW input (see
/// `Conv2dPlan::first_layer_chunks`): 17 staged rows at stride 2, 46 KB for a 224-wide RGB
/// image, still in L1/L2 when the kernel reads them
/// (`docs/performance.md#first-layer-chunked-staging`).
pub(super) const FIRST_LAYER_CHUNK_ROWS: usize = 8;

/// On one thread, the first layer stages by chunks only when the whole staging would take at
/// least this many bytes (a 224x224 RGB image: 613 KB; 112x112: 153 KB).
const FIRST_LAYER_CHUNK_MIN_BYTES: usize = 512 * 1024;

impl Geometry {
    pub(super) fn out_len(&self, spec: &ConvSpec, lanes: usize) -> usize {
        spec.out_channels.div_ceil(lanes) * self.out_h * self.out_w * lanes
    }
}

impl Conv2dPlan {
    /// The geometry of a run on inputs of shape `input` in the current rayon pool.
    pub(super) fn geometry(&self, input: Shape) -> Result<Geometry, ConvError> {
        let threads = match self.parallelism {
            Parallelism::Sequential => 1,
            Parallelism::Rayon => rayon::current_num_threads(),
        };
        self.geometry_on(input, threads)
    }

    /// The geometry of a run on inputs of shape `input` on `threads` threads.
    pub(super) fn geometry_on(&self, input: Shape, threads: usize) -> Result<Geometry, ConvError> {
        let [n, c, h, w] = input;
        let [_, _, out_h, out_w] = self.output_shape(input)?;
        if n == 0 {
            return Err(TensorError::invalid("input", "batch N must be at least 1").into());
        }
        let lanes = self.tiles.lanes;
        let threads = match self.parallelism {
            Parallelism::Sequential => 1,
            Parallelism::Rayon => threads.max(1),
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
        let (staged, winograd, block, first_layer_parts, passes) = match variant_of(self.algorithm)
        {
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
                let weight_bytes = self.packed.weight_bytes();
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
                let passes = ImagePasses::plan(n, tiles.div_ceil(block.columns), threads);
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
                    passes,
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
                (staged, None, block, first_layer_parts, None)
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
            passes,
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

    /// Whether a run of blocked inputs of shape `input`, in the current rayon pool, goes by
    /// multi-image passes (tests check that they are exercised).
    #[cfg(test)]
    pub(crate) fn runs_in_passes(&self, input: Shape) -> Result<bool, ConvError> {
        Ok(self.geometry(input)?.passes.is_some())
    }

    /// The register block a run on inputs of shape `input` uses (tests check that every ISA's
    /// narrow blocks are exercised).
    #[cfg(test)]
    pub(crate) fn register_block(&self, input: Shape) -> Result<RegisterBlock, ConvError> {
        Ok(self.geometry(input)?.block)
    }

    /// Whether staging and kernels may use the rayon pool.
    pub(super) fn parallel(&self) -> bool {
        self.parallelism == Parallelism::Rayon
    }

    /// Floats of one share's scratch of a multi-image pass run: the transformed input of one
    /// pass and one group's GEMM results for it, each a whole number of cache lines.
    pub(super) fn pass_scratch_len(
        &self,
        geo: &Geometry,
        wg: &WinoGeometry,
        p: &ImagePasses,
    ) -> usize {
        let blocks = p.images * p.image_blocks;
        let a2 = wg.variant.alpha() * wg.variant.alpha();
        let v = blocks * wg.block_len;
        let m = blocks * geo.block.columns * a2 * self.packed.group_width;
        v.next_multiple_of(ALIGN_FLOATS) + m.next_multiple_of(ALIGN_FLOATS)
    }

    /// `(staged, V, M, blocked output)` scratch lengths in floats. In the buffer each part takes
    /// a whole number of cache lines, so that every part starts aligned when the first does.
    /// With [`ImagePasses`], V holds the larger of the passes' and the image-by-image
    /// schedule's needs, so one length serves a run with NCHW sides too.
    pub(super) fn scratch_parts(&self, geo: &Geometry) -> [usize; 4] {
        let (v, m) = match geo.winograd {
            Some(wg) => {
                let (v, m) = self.image_scratch(geo, &wg);
                match geo.passes {
                    Some(p) => (v.max(p.parts * self.pass_scratch_len(geo, &wg, &p)), m),
                    None => (v, m),
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

    /// `(V, M)` scratch lengths in floats of an image-by-image Winograd run.
    pub(super) fn image_scratch(&self, geo: &Geometry, wg: &WinoGeometry) -> (usize, usize) {
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

    /// Floats of one chunk buffer of the first layer's staging: the staged rows that
    /// [`FIRST_LAYER_CHUNK_ROWS`] output rows read.
    pub(super) fn first_layer_chunk_len(&self, geo: &Geometry) -> usize {
        let rows = (FIRST_LAYER_CHUNK_ROWS - 1) * self.spec.stride + self.spec.kernel;
        rows * geo.staged.wp * geo.staged.lanes
    }
}
