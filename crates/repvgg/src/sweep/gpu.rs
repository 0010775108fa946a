//! One [`Layer`] timed on the WGSL kernels of `reparam-wgsl`.

use super::{Layer, median};
use crate::error::Error;
use reparam_wgsl::tensor::channel_stride;
use reparam_wgsl::{GpuContext, GpuConv2dPlan, GpuConvOptions, GpuError, GpuKernel, GpuTensor};

/// How [`time_layer`] runs a layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GpuSweep {
    /// Images per run.
    pub batch: usize,
    /// Timed runs, one submission each, after one warm-up run (their median is reported).
    pub repeats: usize,
    /// With [`GpuKernel::Auto`]: time every candidate on the layer's input shape when the plan
    /// is built and keep the fastest.
    pub autotune: bool,
}

/// What [`time_layer`] measured.
#[derive(Debug, Clone, PartialEq)]
pub struct GpuTiming {
    /// The kernel the plan ran (never `Auto`).
    pub kernel: GpuKernel,
    /// True when the requested kernel cannot run the layer and direct ran instead.
    pub fallback: bool,
    /// With autotuning: each candidate and its median ms at plan time.
    pub tuning: Vec<(GpuKernel, f64)>,
    /// Direct-convolution FLOPs of one run.
    pub flops: u64,
    /// Median time of one run, ms: device time where the adapter has timestamp queries, else
    /// wall time.
    pub median_ms: f64,
    /// Median host wall time of one run (encode, submit, wait), ms.
    pub wall_ms: f64,
    /// Whether `median_ms` is device time.
    pub timestamps: bool,
}

impl GpuTiming {
    /// `flops / median`, GFLOP/s.
    pub fn gflops(&self) -> f64 {
        self.flops as f64 / (self.median_ms / 1e3) / 1e9
    }
}

/// Plans `layer` for `requested` (direct when that kernel cannot run it) with `seed`'s synthetic
/// weights, uploads a synthetic input, runs once untimed, times `sweep.repeats` submissions and
/// checks that the output is finite. An input larger than the device's largest buffer is refused
/// before it is generated on the host.
pub fn time_layer(
    ctx: &GpuContext,
    layer: &Layer,
    requested: GpuKernel,
    sweep: &GpuSweep,
    seed: u64,
) -> Result<GpuTiming, Error> {
    let spec = layer.spec;
    let (h, w) = layer.input_hw;
    let shape = [sweep.batch, spec.in_channels, h, w];
    let kernel = if requested == GpuKernel::Auto || requested.supports(&spec) {
        requested
    } else {
        GpuKernel::Direct
    };
    let (weight, epilogue) = layer.synthetic_weights(seed);
    let options = GpuConvOptions {
        kernel: Some(kernel),
        autotune: (sweep.autotune && kernel == GpuKernel::Auto).then_some(shape),
    };
    let plan = GpuConv2dPlan::new(ctx, &spec, &weight, &epilogue, &options)?;
    let input_bytes = [sweep.batch, h, w, channel_stride(spec.in_channels), 4]
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d as u64))
        .unwrap_or(u64::MAX);
    let max = ctx.summary().max_buffer;
    if input_bytes > max {
        return Err(GpuError::TooLarge {
            operand: "input",
            needed: input_bytes,
            max,
        }
        .into());
    }
    let input = layer.synthetic_input(sweep.batch, seed)?;
    let x = GpuTensor::upload(ctx, &input)?;
    let y = GpuTensor::zeros(ctx, spec.output_shape(shape)?)?;
    let op = plan.bind(ctx, &x, &y)?;
    ctx.run(&[&op])?;
    let mut device = Vec::with_capacity(sweep.repeats);
    let mut wall = Vec::with_capacity(sweep.repeats);
    for _ in 0..sweep.repeats {
        let t = ctx.run(&[&op])?;
        wall.push(t.wall_ms);
        device.extend(t.device_ms);
    }
    if let Some(index) = y.download(ctx)?.first_non_finite() {
        let what = format!("layer {} ({})", layer.first, plan.kernel().name());
        return Err(Error::NonFiniteOutput { what, index });
    }
    let timestamps = device.len() == wall.len();
    let wall_ms = median(&mut wall);
    Ok(GpuTiming {
        kernel: plan.kernel(),
        fallback: kernel != requested,
        tuning: plan.tuning().to_vec(),
        flops: layer.flops(sweep.batch)?,
        median_ms: if timestamps {
            median(&mut device)
        } else {
            wall_ms
        },
        wall_ms,
        timestamps,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::stats::InputSize;
    use crate::sweep::distinct_layers;

    #[test]
    fn forced_winograd_falls_back_to_direct_on_stride_2_and_every_row_is_finite() {
        let Some(ctx) = reparam_wgsl::test_support::shared_context() else {
            return;
        };
        let config = Config::official("a0").unwrap();
        let layers = distinct_layers(&config, InputSize::square(32)).unwrap();
        let sweep = GpuSweep {
            batch: 1,
            repeats: 2,
            autotune: false,
        };
        for layer in &layers[..3] {
            let t = time_layer(ctx, layer, GpuKernel::WinogradF23, &sweep, 1).unwrap();
            assert_eq!(t.fallback, layer.spec.stride == 2, "{}", layer.first);
            let want = if t.fallback {
                GpuKernel::Direct
            } else {
                GpuKernel::WinogradF23
            };
            assert_eq!(t.kernel, want);
            assert!(t.median_ms > 0.0 && t.wall_ms > 0.0 && t.gflops() > 0.0);
            assert_eq!(t.flops, layer.flops(1).unwrap());
        }
    }
}
