//! The shapes the benches time: every distinct 3x3 conv layer of the deployed RepVGG-A0 and B0 at
//! 224x224, derived from [`repvgg::Config::blocks`] and the per-layer sizes of
//! [`repvgg::stats::ModelStats`] (never typed in by hand).
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

use reparam_tensor::rng::SplitMix64;
use reparam_tensor::{ConvSpec, Epilogue, Tensor};
use repvgg::Config;
use repvgg::stats::{InputSize, ModelStats};

/// One conv layer of a real network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layer {
    /// Short model name as typed on the command line: `a0`, `b0`.
    pub model: String,
    /// Official stage index: 0 for the stem, 1..=4 after it.
    pub stage: usize,
    /// The deployed 3x3 conv (padding 1).
    pub spec: ConvSpec,
    /// Input `(height, width)`.
    pub input_hw: (usize, usize),
}

impl Layer {
    /// The shape part of a benchmark id (see the module docs).
    pub fn name(&self) -> String {
        let s = &self.spec;
        let (h, w) = self.input_hw;
        let mut name = format!("{}-s{}-{}x{h}x{w}", self.model, self.stage, s.in_channels);
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

    /// Deterministic weights and bias + ReLU epilogue for the layer: uniform in `±3/√K`
    /// (`K = (Cin/g)·9`, so outputs keep the inputs' scale) and biases in `±0.1`.
    pub fn synthetic_weights(&self, seed: u64) -> (Tensor, Epilogue) {
        let spec = &self.spec;
        let mut rng = SplitMix64::new(seed);
        let a = 3.0 / (spec.reduction_len() as f32).sqrt();
        let shape = spec.weight_shape();
        let weight = Tensor::new(shape, rng.uniform_vec(shape.iter().product(), -a, a))
            .expect("the weight shape matches its data");
        let bias = rng.uniform_vec(spec.out_channels, -0.1, 0.1);
        (weight, Epilogue::bias_relu(bias))
    }

    /// Direct-convolution flops of one run on `batch` images: `2·Cout·(Cin/g)·9·Hout·Wout·N`.
    pub fn flops(&self, batch: usize) -> u64 {
        let (h, w) = self.input_hw;
        let macs = self.spec.macs(h, w).expect("RepVGG layer shapes are valid");
        2 * macs * batch as u64
    }
}

/// Every distinct conv layer of `models` at `input`×`input`, in execution order, model by model.
/// Layers identical in (Cin, Cout, H, W, stride, groups) to an earlier one, in the same model or
/// an earlier model, are dropped.
pub fn repvgg_layers(models: &[&str], input: usize) -> Vec<Layer> {
    let mut layers: Vec<Layer> = Vec::new();
    for &model in models {
        let config = Config::official(model).expect("an official RepVGG model");
        let stats = ModelStats::new(&config, InputSize::square(input)).expect("a valid input");
        for (block, row) in config.blocks().iter().zip(&stats.blocks) {
            let layer = Layer {
                model: model.to_string(),
                stage: block.stage,
                spec: block.conv3x3(),
                input_hw: row.input_hw,
            };
            let seen = layers
                .iter()
                .any(|l| l.spec == layer.spec && l.input_hw == layer.input_hw);
            if !seen {
                layers.push(layer);
            }
        }
    }
    layers
}
