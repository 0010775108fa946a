//! Recorded GPU work ([`GpuOp`]: one or more dispatches with their bind groups, built once) and
//! its execution: any number of ops encoded into **one** command submission, timed with
//! timestamp queries where the device has them.

use crate::context::GpuContext;
use crate::error::GpuError;
use crate::shader::{Shader, Specialization};
use std::time::Instant;

/// One compute dispatch: pipeline, bind group (which keeps its buffers alive) and grid.
#[derive(Debug, Clone)]
pub(crate) struct Dispatch {
    pipeline: wgpu::ComputePipeline,
    bind_group: wgpu::BindGroup,
    workgroups: [u32; 3],
}

impl Dispatch {
    /// A dispatch of `shader` over `workgroups` workgroups (a linear count, folded into x·y so
    /// no dimension exceeds the device limit; kernels recover the linear index as
    /// `wg.y · nwg.x + wg.x` and ignore the excess).
    pub fn new(
        ctx: &GpuContext,
        shader: Shader,
        spec: &Specialization,
        workgroups: u64,
        resources: &[wgpu::BindingResource<'_>],
    ) -> Result<Self, GpuError> {
        let pipeline = ctx.pipeline(shader, spec)?;
        let layout = pipeline.get_bind_group_layout(0);
        let entries: Vec<wgpu::BindGroupEntry<'_>> = resources
            .iter()
            .enumerate()
            .map(|(i, r)| wgpu::BindGroupEntry {
                binding: i as u32,
                resource: r.clone(),
            })
            .collect();
        let bind_group = ctx.device().create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(shader.name()),
            layout: &layout,
            entries: &entries,
        });
        ctx.check()?;
        Ok(Self {
            pipeline,
            bind_group,
            workgroups: fold(workgroups, ctx.max_workgroups_per_dim())?,
        })
    }
}

/// Folds a linear workgroup count into `[x, y, 1]` with `x, y ≤ max_dim` and `x·y ≥ count`.
pub(crate) fn fold(count: u64, max_dim: u32) -> Result<[u32; 3], GpuError> {
    let max = u64::from(max_dim.max(1));
    let count = count.max(1);
    let x = count.min(max);
    let y = count.div_ceil(x);
    if y > max {
        return Err(GpuError::TooLarge {
            operand: "dispatch grid",
            needed: count,
            max: max * max,
        });
    }
    Ok([x as u32, y as u32, 1])
}

/// A piece of GPU work built once (pipelines, bind groups, parameter buffers, scratch) and
/// encodable any number of times: a layer, a layout conversion, a squeeze-excitation.
#[derive(Debug, Clone)]
pub struct GpuOp {
    label: String,
    flops: u64,
    dispatches: Vec<Dispatch>,
}

impl GpuOp {
    pub(crate) fn new(label: impl Into<String>, flops: u64, dispatches: Vec<Dispatch>) -> Self {
        Self {
            label: label.into(),
            flops,
            dispatches,
        }
    }

    /// One op running the dispatches of `parts` in order.
    pub(crate) fn concat(
        label: impl Into<String>,
        flops: u64,
        parts: impl IntoIterator<Item = GpuOp>,
    ) -> Self {
        Self {
            label: label.into(),
            flops,
            dispatches: parts.into_iter().flat_map(|p| p.dispatches).collect(),
        }
    }

    /// A name for reports (e.g. `conv3x3/gemm 48->48 56x56 s1 g1`).
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Floating-point operations of the op as the convolution formula counts them
    /// (`2·Cout·(Cin/g)·k²·Ho·Wo·N` for a conv; 0 for data movement).
    pub fn flops(&self) -> u64 {
        self.flops
    }

    /// Number of compute dispatches.
    pub fn dispatch_count(&self) -> usize {
        self.dispatches.len()
    }

    fn encode(&self, pass: &mut wgpu::ComputePass<'_>) {
        for d in &self.dispatches {
            pass.set_pipeline(&d.pipeline);
            pass.set_bind_group(0, &d.bind_group, &[]);
            let [x, y, z] = d.workgroups;
            pass.dispatch_workgroups(x, y, z);
        }
    }
}

/// Timings of one [`GpuContext::run`].
#[derive(Debug, Clone, PartialEq)]
pub struct GpuTimings {
    /// Host wall clock from encoding to completion (submit + `poll(Wait)`), in ms.
    pub wall_ms: f64,
    /// Device time of all ops from timestamp queries, in ms; `None` without timestamps.
    pub device_ms: Option<f64>,
    /// Device time of each op, in ms; `None` without timestamps.
    pub per_op_ms: Option<Vec<f64>>,
}

impl GpuContext {
    /// Encodes `ops` in order into one command buffer (one compute pass, or one pass per op
    /// when timestamps are only available at pass boundaries), submits it once and waits.
    /// wgpu inserts the barriers between an op's writes and the next op's reads.
    pub fn run(&self, ops: &[&GpuOp]) -> Result<GpuTimings, GpuError> {
        let start = Instant::now();
        let queries = Queries::new(self, ops.len());
        let mut encoder = self
            .device()
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("reparam run"),
            });
        match &queries {
            Some(q) if q.inside_passes => {
                let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some("ops"),
                    timestamp_writes: None,
                });
                pass.write_timestamp(&q.set, 0);
                for (i, op) in ops.iter().enumerate() {
                    op.encode(&mut pass);
                    pass.write_timestamp(&q.set, i as u32 + 1);
                }
            }
            Some(q) => {
                for (i, op) in ops.iter().enumerate() {
                    let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                        label: Some(op.label()),
                        timestamp_writes: Some(wgpu::ComputePassTimestampWrites {
                            query_set: &q.set,
                            beginning_of_pass_write_index: Some(2 * i as u32),
                            end_of_pass_write_index: Some(2 * i as u32 + 1),
                        }),
                    });
                    op.encode(&mut pass);
                }
            }
            None => {
                let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some("ops"),
                    timestamp_writes: None,
                });
                for op in ops {
                    op.encode(&mut pass);
                }
            }
        }
        if let Some(q) = &queries {
            encoder.resolve_query_set(&q.set, 0..q.count, &q.resolve, 0);
        }
        let submission = self.queue().submit([encoder.finish()]);
        self.wait(submission)?;
        let wall_ms = start.elapsed().as_secs_f64() * 1e3;
        let per_op_ms = match &queries {
            Some(q) => Some(q.read_ms(self)?),
            None => None,
        };
        Ok(GpuTimings {
            wall_ms,
            device_ms: per_op_ms.as_ref().map(|v| v.iter().sum()),
            per_op_ms,
        })
    }
}

/// The timestamp query set of one run and its resolve buffer (read back after the run, in a
/// separate submission, which also avoids reading zeros from a resolve issued too early).
struct Queries {
    set: wgpu::QuerySet,
    resolve: wgpu::Buffer,
    count: u32,
    inside_passes: bool,
    ops: usize,
}

impl Queries {
    fn new(ctx: &GpuContext, ops: usize) -> Option<Self> {
        let features = ctx.features();
        if ops == 0 || !features.contains(wgpu::Features::TIMESTAMP_QUERY) {
            return None;
        }
        let inside_passes = features.contains(wgpu::Features::TIMESTAMP_QUERY_INSIDE_PASSES);
        let count = if inside_passes { ops + 1 } else { 2 * ops };
        let count = u32::try_from(count)
            .ok()
            .filter(|&c| c <= wgpu::QUERY_SET_MAX_QUERIES)?;
        let set = ctx.device().create_query_set(&wgpu::QuerySetDescriptor {
            label: Some("op timestamps"),
            ty: wgpu::QueryType::Timestamp,
            count,
        });
        let bytes = u64::from(count) * 8;
        let resolve = ctx.device().create_buffer(&wgpu::BufferDescriptor {
            label: Some("timestamp resolve"),
            size: bytes,
            usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        Some(Self {
            set,
            resolve,
            count,
            inside_passes,
            ops,
        })
    }

    /// Per-op durations in ms: tick deltas (wrapping) × the queue's timestamp period, in f64.
    fn read_ms(&self, ctx: &GpuContext) -> Result<Vec<f64>, GpuError> {
        let ticks: Vec<u64> = crate::tensor::read_buffer(ctx, &self.resolve, "timestamps")?;
        let period_ns = f64::from(ctx.queue().get_timestamp_period());
        let ms = |a: u64, b: u64| b.wrapping_sub(a) as f64 * period_ns * 1e-6;
        Ok((0..self.ops)
            .map(|i| {
                if self.inside_passes {
                    ms(ticks[i], ticks[i + 1])
                } else {
                    ms(ticks[2 * i], ticks[2 * i + 1])
                }
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fold_keeps_dimensions_in_range() {
        assert_eq!(fold(10, 65535).unwrap(), [10, 1, 1]);
        assert_eq!(fold(0, 65535).unwrap(), [1, 1, 1]);
        let [x, y, _] = fold(200_000, 65535).unwrap();
        assert!(x <= 65535 && y <= 65535 && u64::from(x) * u64::from(y) >= 200_000);
        assert!(fold(10, 3).is_err());
    }
}
