//! One [`Layer`] timed on the CPU kernels of `reparam-winograd`, in the current rayon pool.

use super::{Layer, median};
use crate::error::Error;
use reparam_tensor::{BlockedTensor, Tensor};
use reparam_winograd::{
    Algorithm, Conv2dPlan, ConvError, Isa, Parallelism, PlanOptions, Precision,
};
use std::time::{Duration, Instant};

/// How [`time_layer`] runs a layer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CpuSweep {
    /// The algorithm asked for; a Winograd one on a stride-2 layer runs direct instead.
    pub algorithm: Algorithm,
    /// The ISA of the plans.
    pub isa: Isa,
    /// Storage precision of Winograd transformed weights.
    pub precision: Precision,
    /// Images per run.
    pub batch: usize,
    /// NCHWc in and out, as inside a network (the first layer reads its NCHW image); else the
    /// NCHW entry point, with its layout conversions in every run.
    pub blocked: bool,
    /// Timed runs (their median is reported).
    pub repeats: usize,
    /// Untimed runs before: at least one, and until this much time has passed.
    pub warm_up: Duration,
}

/// What [`time_layer`] measured.
#[derive(Debug, Clone, PartialEq)]
pub struct CpuTiming {
    /// The algorithm the plan ran (never `Auto`).
    pub algorithm: Algorithm,
    /// True when the requested algorithm cannot run the layer and direct ran instead.
    pub fallback: bool,
    /// The plan's ISA.
    pub isa: Isa,
    /// The micro-kernel ([`Conv2dPlan::kernel_name`]).
    pub kernel: String,
    /// Direct-convolution FLOPs of one run.
    pub flops: u64,
    /// Median wall time of one run, ms.
    pub median_ms: f64,
}

impl CpuTiming {
    /// `flops / median`, GFLOP/s.
    pub fn gflops(&self) -> f64 {
        self.flops as f64 / (self.median_ms / 1e3) / 1e9
    }
}

/// Plans `layer` with `seed`'s synthetic weights, warms it up, times `sweep.repeats` runs on a
/// synthetic input and checks that the output is finite. Runs in the current rayon pool (the
/// plans use [`Parallelism::Rayon`]).
pub fn time_layer(layer: &Layer, sweep: &CpuSweep, seed: u64) -> Result<CpuTiming, Error> {
    let spec = layer.spec;
    let (weight, epilogue) = layer.synthetic_weights(seed);
    let options = |algorithm| PlanOptions {
        algorithm,
        isa: Some(sweep.isa),
        parallelism: Parallelism::Rayon,
        input_hw: Some(layer.input_hw),
        autotune: false,
        precision: sweep.precision,
    };
    let (plan, fallback) =
        match Conv2dPlan::new(spec, &weight, &epilogue, &options(sweep.algorithm)) {
            Ok(plan) => (plan, false),
            Err(ConvError::UnsupportedAlgorithm { .. })
                if !matches!(sweep.algorithm, Algorithm::Auto | Algorithm::Direct) =>
            {
                let direct = options(Algorithm::Direct);
                (Conv2dPlan::new(spec, &weight, &epilogue, &direct)?, true)
            }
            Err(e) => return Err(e.into()),
        };
    let input = layer.synthetic_input(sweep.batch, seed)?;
    let out_shape = plan.output_shape(input.shape())?;
    let mut output = Tensor::zeros(out_shape)?;
    let block = plan.block();
    let blocked_input = BlockedTensor::from_nchw(&input, block)?;
    let mut blocked_output = BlockedTensor::zeros(out_shape, block)?;
    let mut run = || {
        if sweep.blocked && layer.reads_image {
            plan.run(&input, &mut blocked_output, None)
        } else if sweep.blocked {
            plan.run(&blocked_input, &mut blocked_output, None)
        } else {
            plan.run(&input, &mut output, None)
        }
    };
    let start = Instant::now();
    run()?;
    while start.elapsed() < sweep.warm_up {
        run()?;
    }
    let mut times = Vec::with_capacity(sweep.repeats);
    for _ in 0..sweep.repeats {
        let start = Instant::now();
        run()?;
        times.push(start.elapsed().as_secs_f64());
    }
    if sweep.blocked {
        output = blocked_output.to_nchw();
    }
    let kernel = plan.kernel_name(input.shape())?;
    if let Some(index) = output.first_non_finite() {
        let what = format!("layer {} ({kernel})", layer.first);
        return Err(Error::NonFiniteOutput { what, index });
    }
    Ok(CpuTiming {
        algorithm: plan.algorithm(),
        fallback,
        isa: plan.isa(),
        kernel,
        flops: layer.flops(sweep.batch)?,
        median_ms: median(&mut times) * 1e3,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::stats::InputSize;
    use crate::sweep::distinct_layers;

    #[test]
    fn every_layer_of_a_small_a0_is_timed_with_forced_winograd_falling_back_on_stride_2() {
        let config = Config::official("a0").unwrap();
        let layers = distinct_layers(&config, InputSize::square(32)).unwrap();
        for blocked in [true, false] {
            let sweep = CpuSweep {
                algorithm: Algorithm::WinogradF23,
                isa: Isa::Scalar,
                precision: Precision::F32,
                batch: 2,
                blocked,
                repeats: 2,
                warm_up: Duration::ZERO,
            };
            for layer in &layers {
                let t = time_layer(layer, &sweep, 1).unwrap();
                assert_eq!(t.fallback, layer.spec.stride == 2, "{}", layer.first);
                let want = if t.fallback {
                    Algorithm::Direct
                } else {
                    Algorithm::WinogradF23
                };
                assert_eq!(t.algorithm, want);
                assert!(
                    t.kernel.starts_with(&format!("{}-scalar-", want.name())),
                    "{}",
                    t.kernel
                );
                assert!(t.median_ms > 0.0 && t.gflops() > 0.0);
                assert_eq!(t.flops, layer.flops(2).unwrap());
            }
        }
    }
}
