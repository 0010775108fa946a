//! The shapes the benches time: every distinct 3x3 conv layer of the deployed RepVGG-A0 and B0 at
//! 224x224, from `repvgg::sweep::distinct_layers` (the layers `reparam layers` times), without
//! the layers an earlier model already has.
//!
//! Layer names: `<model>-s<stage>-<Cin>x<H>x<W>[-to<Cout>][-stride2][-g<G>]`, where `H`x`W` is the
//! layer's *input* size, `stage` is the official stage index (0 = stem) and the optional parts
//! appear only when they differ from the common case (Cout = Cin, stride 1, no groups):
//!
//! | layer of RepVGG-A0 | name |
//! |---|---|
//! | stem, 3→48, stride 2, 224x224 in | `a0-s0-3x224x224-to48-stride2` |
//! | stage1.0, 48→48, stride 2 | `a0-s1-48x112x112-stride2` |
//! | stage1.1, 48→48, stride 1, 56x56 | `a0-s1-48x56x56` |
//! | stage3.0, 96→192, stride 2 | `a0-s3-96x28x28-to192-stride2` |
//! | stage3.1..13, 192→192 at 14x14 | `a0-s3-192x14x14` |
//! | stage4.0, 192→1280, stride 2 | `a0-s4-192x14x14-to1280-stride2` |

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, SamplingMode};
use repvgg::Config;
use repvgg::stats::InputSize;
use repvgg::sweep::{Layer, distinct_layers};
use std::time::Duration;

/// A criterion group for per-layer benchmarks: small budgets (the CPU group holds ~230
/// benchmarks that must finish in minutes) and flat sampling, so every sample runs the same
/// number of iterations and a slow layer (a batch-8 run of tens of ms, or a GPU submission)
/// stays at `sample_size` runs instead of 1+2+…+10. Where a bench reports device time
/// (`iter_custom`), the budgets count that time, not the wall time around it.
pub fn layer_group<'a>(c: &'a mut Criterion, name: &str) -> BenchmarkGroup<'a, WallTime> {
    let mut group = c.benchmark_group(name);
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
        .sampling_mode(SamplingMode::Flat);
    group
}

/// A layer of a model, as the benches name it.
pub struct ModelLayer {
    /// Short model name as typed on the command line: `a0`, `b0`.
    pub model: &'static str,
    /// The layer, its synthetic data and its FLOPs.
    pub layer: Layer,
}

impl ModelLayer {
    /// The shape part of a benchmark id (see the module docs).
    pub fn name(&self) -> String {
        let (l, s) = (&self.layer, &self.layer.spec);
        let (h, w) = l.input_hw;
        let mut name = format!("{}-s{}-{}x{h}x{w}", self.model, l.stage, s.in_channels);
        if s.out_channels != s.in_channels {
            name.push_str(&format!("-to{}", s.out_channels));
        }
        if s.stride != 1 {
            name.push_str(&format!("-stride{}", s.stride));
        }
        if s.groups != 1 {
            name.push_str(&format!("-g{}", s.groups));
        }
        name
    }

    /// Direct-convolution FLOPs of one run on `batch` images (criterion's throughput).
    pub fn flops(&self, batch: usize) -> u64 {
        self.layer
            .flops(batch)
            .expect("RepVGG layer sizes do not overflow")
    }
}

/// Every distinct conv layer of `models` at `input`×`input`, in execution order, model by model;
/// a layer identical in (Cin, Cout, H, W, stride, groups) to one of an earlier model is dropped.
pub fn repvgg_layers(models: &[&'static str], input: usize) -> Vec<ModelLayer> {
    let mut layers: Vec<ModelLayer> = Vec::new();
    for &model in models {
        let config = Config::official(model).expect("an official RepVGG model");
        let own = distinct_layers(&config, InputSize::square(input)).expect("a valid input");
        for layer in own {
            let seen = layers
                .iter()
                .any(|l| l.layer.spec == layer.spec && l.layer.input_hw == layer.input_hw);
            if !seen {
                layers.push(ModelLayer { model, layer });
            }
        }
    }
    layers
}
