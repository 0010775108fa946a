//! Executing one image: staging (whole, or by chunks for the first layer), the direct and
//! Winograd kernel jobs per output-channel group and row band, and the band-major schedule.

use super::Conv2dPlan;
use super::dispatch::Token;
use super::parallel::{for_each_band, for_each_chunk, for_each_chunk_pair};
use super::schedule::{
    BAND_MAJOR_MAX_PLANES, FIRST_LAYER_CHUNK_ROWS, Geometry, ImagePasses, Schedule, WinoGeometry,
};
use crate::arch::Kernels;
use crate::kernels::winograd::SUPER_BLOCK;
use crate::kernels::{Band, DirectJob, GemmJob, InputJob, Rows};

impl Conv2dPlan {
    /// Convolves one NCHW image into one NCHWc output image: the first layer stages and
    /// convolves it chunk by chunk, other layers stage it whole into `staged` first.
    pub(super) fn nchw_image(
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
    pub(super) fn first_layer_chunks<K: Kernels>(
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
    pub(super) fn image(
        &self,
        geo: &Geometry,
        staged: &[f32],
        v: &mut [f32],
        m: &mut [f32],
        out: &mut [f32],
    ) {
        with_token!(self.token, k => self.image_on(k, geo, staged, v, m, out))
    }

    pub(super) fn image_on<K: Kernels>(
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
        // V may be sized for multi-image passes too: an image takes its own schedule's part.
        let v = match geo.winograd {
            Some(wg) => &mut v[..self.image_scratch(geo, &wg).0],
            None => v,
        };
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
                    self.input_transform(k, geo, &wg, &job, v_i)
                });
                let m_len = m.len() / self.packed.groups.len();
                let v: &[f32] = v;
                let m_tile = wg.variant.m();
                for_each_chunk_pair(par, out, group_out, m, m_len, |j, out_j, m_j| {
                    let band = Band::whole(out_j, geo.out_h, row_len);
                    for_each_band(par, band, m_j, geo.bands, m_tile, &|mut band, m_band| {
                        let mut band = band.reborrow();
                        let outs = std::slice::from_mut(&mut band);
                        self.gemm(k, geo, &wg, j, (v, 0), (outs, SUPER_BLOCK), m_band)
                    })
                });
            }
        }
    }

    /// Output-channel group `j`'s direct-convolution job on `(input, hp, wp, pad)` (a staging of
    /// `geo.staged`'s pixel layout, `hp × wp` pixels, `pad` applied by the kernel), writing `out`.
    pub(super) fn direct_job<'a>(
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
    pub(super) fn input_job<'a>(
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

    /// Transforms one tile block of input into `v_block`: in f32, then, for a bf16 plan, rounded
    /// to bf16 pairs in place (the layout the bf16 GEMM reads).
    pub(super) fn input_transform<K: Kernels>(
        &self,
        k: K,
        geo: &Geometry,
        wg: &WinoGeometry,
        job: &InputJob<'_>,
        v_block: &mut [f32],
    ) {
        k.winograd_input(geo.block, wg.variant, job, v_block);
        if let Some(bf16) = self.bf16 {
            bf16.to_bf16_pairs(v_block);
        }
    }

    /// Runs output-channel group `j`'s GEMM and output transform: on the transformed input `v`,
    /// which starts at tile block `v_first_block`, into the rows `outs` of the group's planes
    /// (one band per image), `super_blocks` register blocks per weight panel read; on the
    /// plan's f32, f16 or bf16-pair weights.
    #[allow(
        clippy::too_many_arguments,
        reason = "the parts of one GEMM job, each named at the call"
    )]
    pub(super) fn gemm<'a, 'b, K: Kernels>(
        &'a self,
        k: K,
        geo: &Geometry,
        wg: &WinoGeometry,
        j: usize,
        v: (&'a [f32], usize),
        outs: (&'b mut [Band<'a>], usize),
        m: &'b mut [f32],
    ) {
        let p = &self.packed;
        if let Some(bf16) = self.bf16 {
            let u = (p.group_weights_bf16(j), p.next_group_weights_bf16(j));
            let job = self.gemm_job(geo, wg, j, u, v, outs, m);
            return bf16.gemm_output(geo.block, wg.variant, job);
        }
        match p.half {
            Some(_) => {
                let u = (p.group_weights_f16(j), p.next_group_weights_f16(j));
                let job = self.gemm_job(geo, wg, j, u, v, outs, m);
                k.winograd_gemm_output(geo.block, wg.variant, job)
            }
            None => {
                let u = (p.group_weights(j), p.next_group_weights(j));
                let job = self.gemm_job(geo, wg, j, u, v, outs, m);
                k.winograd_gemm_output(geo.block, wg.variant, job)
            }
        }
    }

    /// The job of [`Conv2dPlan::gemm`] on the group's weights `u` and the next group's `next_u`.
    #[allow(
        clippy::too_many_arguments,
        reason = "the parts of one GEMM job, each named at the call"
    )]
    fn gemm_job<'a, 'b, W>(
        &'a self,
        geo: &Geometry,
        wg: &WinoGeometry,
        j: usize,
        (u, next_u): (&'a [W], &'a [W]),
        (v, v_first_block): (&'a [f32], usize),
        (outs, super_blocks): (&'b mut [Band<'a>], usize),
        m: &'b mut [f32],
    ) -> GemmJob<'a, 'b, W> {
        let g = &self.packed.groups[j];
        let lanes = self.tiles.lanes;
        GemmJob {
            u,
            next_u,
            k_start: g.k_start,
            k_len: g.k_len,
            v,
            v_first_block,
            image_blocks: wg.tiles.div_ceil(geo.block.columns),
            cin_pad: geo.staged.channels.div_ceil(lanes) * lanes,
            tiles_x: wg.tiles_x,
            tiles: wg.tiles,
            super_blocks,
            bias: self.packed.group_bias(j),
            relu: self.relu,
            outs,
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
    pub(super) fn run_band_major<K: Kernels>(
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
                    self.input_transform(k, geo, &wg, &job, v_i);
                }
                let v: &[f32] = v;
                for j in 0..self.packed.groups.len() {
                    let mut out = rows.group(j * planes_per_group, planes_per_group);
                    let outs = (std::slice::from_mut(&mut out), SUPER_BLOCK);
                    self.gemm(k, geo, &wg, j, (v, first_block), outs, &mut *m);
                }
            },
        );
    }

    /// An [`ImagePasses`] Winograd run of a batch of blocked images (`input`, `out`: every
    /// image): each share of images, one per thread, pass by pass transforms the pass's images
    /// into its part of `scratch`, then runs each output-channel group's GEMM over all of them.
    pub(super) fn image_passes(
        &self,
        geo: &Geometry,
        passes: &ImagePasses,
        input: &[f32],
        scratch: &mut [f32],
        out: &mut [f32],
    ) {
        if let Some(wg) = geo.winograd {
            with_token!(self.token, k => self.image_passes_on(k, geo, &wg, passes, input, scratch, out))
        }
    }

    #[allow(
        clippy::too_many_arguments,
        reason = "the per-run state of `image_passes`, passed on; bundling it would only rename it"
    )]
    fn image_passes_on<K: Kernels>(
        &self,
        k: K,
        geo: &Geometry,
        wg: &WinoGeometry,
        passes: &ImagePasses,
        input: &[f32],
        scratch: &mut [f32],
        out: &mut [f32],
    ) {
        let lanes = self.tiles.lanes;
        let in_len = geo.staged.channels.div_ceil(lanes) * geo.staged.h * geo.staged.w * lanes;
        let out_len = geo.out_len(&self.spec, lanes);
        let group_out = (self.packed.group_width / lanes) * geo.out_h * geo.out_w * lanes;
        let row_len = geo.out_w * lanes;
        let part_len = self.pass_scratch_len(geo, wg, passes);
        let pass_v = passes.images * passes.image_blocks * wg.block_len;
        let share_out = passes.share * out_len;
        let scratch = &mut scratch[..passes.parts * part_len];
        for_each_chunk_pair(
            self.parallelism,
            out,
            share_out,
            scratch,
            part_len,
            |p, out_p, part| {
                let (v, m) =
                    part.split_at_mut(pass_v.next_multiple_of(reparam_tensor::ALIGN_FLOATS));
                let first_image = p * passes.share;
                for (q, out_q) in out_p.chunks_mut(passes.images * out_len).enumerate() {
                    let images = out_q.len() / out_len;
                    let i0 = first_image + q * passes.images;
                    let blocks = images * passes.image_blocks;
                    for (b, v_b) in v[..blocks * wg.block_len]
                        .chunks_exact_mut(wg.block_len)
                        .enumerate()
                    {
                        let (image, block) =
                            (i0 + b / passes.image_blocks, b % passes.image_blocks);
                        let image = &input[image * in_len..][..in_len];
                        let job = self.input_job(geo, wg, image, block);
                        self.input_transform(k, geo, wg, &job, v_b);
                    }
                    let v: &[f32] = &v[..blocks * wg.block_len];
                    for j in 0..self.packed.groups.len() {
                        let mut images_out = out_q.chunks_exact_mut(out_len);
                        let mut bands: [Band<'_>; ImagePasses::MAX_IMAGES] =
                            std::array::from_fn(|_| {
                                let planes = images_out
                                    .next()
                                    .and_then(|o| o.chunks_mut(group_out).nth(j))
                                    .unwrap_or_default();
                                Band::whole(planes, geo.out_h, row_len)
                            });
                        let outs = (&mut bands[..images], blocks);
                        self.gemm(k, geo, wg, j, (v, 0), outs, &mut *m);
                    }
                }
            },
        );
    }
}
