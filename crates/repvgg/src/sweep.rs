//! The layer sweep: every distinct 3x3 conv layer of a deployed network, with seeded synthetic
//! weights and inputs, timed one layer at a time on the CPU kernels ([`cpu`]) or the GPU kernels
//! ([`gpu`], feature `wgsl`). `reparam layers` and the criterion benchmarks both take their layers
//! from here.
//!
//! Layers identical in (C_in, C_out, H, W, stride, groups) are one [`Layer`] with a count:
//! RepVGG-A0's thirteen 192→192 blocks at 14x14 are one layer with count 13, named after the
//! first block with that shape (`stage3.1`).
//!
//! Effective FLOPs always use the direct-convolution count `2·C_out·(C_in/g)·9·H_out·W_out·N`,
//! whatever algorithm runs, so rates compare across algorithms (a Winograd kernel can exceed the
//! FMA peak on this scale, `docs/winograd.md#effective-gflops-and-the-fma-peak`).

pub mod cpu;
#[cfg(feature = "wgsl")]
pub mod gpu;

use crate::config::Config;
use crate::error::Error;
use crate::stats::{InputSize, ModelStats};
use reparam_tensor::rng::SplitMix64;
use reparam_tensor::{ConvSpec, Epilogue, Tensor, TensorError};

/// A distinct conv layer of a deployed model and how many of its blocks use it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layer {
    /// Official key prefix of the first block with this shape (`stage3.1`).
    pub first: String,
    /// Official stage index of that block: 0 for the stem, 1..=4 after it.
    pub stage: usize,
    /// The deployed 3x3 conv (padding 1).
    pub spec: ConvSpec,
    /// Input `(height, width)`.
    pub input_hw: (usize, usize),
    /// Output `(height, width)`.
    pub output_hw: (usize, usize),
    /// Blocks of the model with exactly this conv and input size.
    pub count: usize,
    /// The model's first layer, which reads the NCHW image (inside a network it runs NCHW in,
    /// NCHWc out).
    pub reads_image: bool,
}

impl Layer {
    /// Deterministic weights and bias + ReLU epilogue: weights uniform in `±3/√K` (`K =
    /// (C_in/g)·9`, so outputs keep the inputs' scale), biases in `±0.1`.
    pub fn synthetic_weights(&self, seed: u64) -> (Tensor, Epilogue) {
        let spec = &self.spec;
        let mut rng = SplitMix64::new(seed);
        let a = 3.0 / (spec.reduction_len() as f32).sqrt();
        let shape = spec.weight_shape();
        let weight = Tensor::new(shape, rng.uniform_vec(shape.iter().product(), -a, a))
            .expect("a weight shape's product is its data length");
        let bias = rng.uniform_vec(spec.out_channels, -0.1, 0.1);
        (weight, Epilogue::bias_relu(bias))
    }

    /// A deterministic input of `batch` images, uniform in `[-1, 1)`; fails when its size
    /// overflows.
    pub fn synthetic_input(&self, batch: usize, seed: u64) -> Result<Tensor, Error> {
        let (h, w) = self.input_hw;
        let shape = [batch, self.spec.in_channels, h, w];
        let len = shape
            .iter()
            .try_fold(1usize, |acc, &d| acc.checked_mul(d))
            .ok_or_else(|| TensorError::invalid("input", format!("{shape:?} overflows")))?;
        let mut rng = SplitMix64::new(seed ^ 0x1A9E_5EED);
        Ok(Tensor::new(shape, rng.uniform_vec(len, -1.0, 1.0))?)
    }

    /// Direct-convolution FLOPs of one run on `batch` images, `2·C_out·(C_in/g)·9·H_out·W_out·N`;
    /// fails when the count overflows 64 bits.
    pub fn flops(&self, batch: usize) -> Result<u64, Error> {
        let (h, w) = self.input_hw;
        let macs = self.spec.macs(h, w)?;
        macs.checked_mul(2 * batch as u64).ok_or_else(|| {
            TensorError::invalid(
                "batch",
                format!("the flop count of {batch} images overflows"),
            )
            .into()
        })
    }

    /// `48->96 56x56 s2 g1`: the conv and its input size.
    pub fn label(&self) -> String {
        let s = &self.spec;
        let (h, w) = self.input_hw;
        format!(
            "{}->{} {h}x{w} s{} g{}",
            s.in_channels, s.out_channels, s.stride, s.groups
        )
    }
}

/// The distinct conv layers of `config` deployed, at `input`, in order of first use.
pub fn distinct_layers(config: &Config, input: InputSize) -> Result<Vec<Layer>, Error> {
    let stats = ModelStats::new(config, input)?;
    let mut layers: Vec<Layer> = Vec::new();
    for (i, (block, row)) in config.blocks().iter().zip(&stats.blocks).enumerate() {
        let spec = block.conv3x3();
        match layers
            .iter_mut()
            .find(|l| l.spec == spec && l.input_hw == row.input_hw)
        {
            Some(layer) => layer.count += 1,
            None => layers.push(Layer {
                first: row.name.clone(),
                stage: block.stage,
                spec,
                input_hw: row.input_hw,
                output_hw: row.output_hw,
                count: 1,
                reads_image: i == 0,
            }),
        }
    }
    Ok(layers)
}

/// The median of `times` (the mean of the two middle values for an even count, NaN for none);
/// sorts in place.
pub fn median(times: &mut [f64]) -> f64 {
    times.sort_by(f64::total_cmp);
    let n = times.len();
    match n {
        0 => f64::NAN,
        _ if !n.is_multiple_of(2) => times[n / 2],
        _ => (times[n / 2 - 1] + times[n / 2]) / 2.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a0_has_eight_distinct_layers_counted_by_block() {
        let config = Config::official("a0").unwrap();
        let layers = distinct_layers(&config, InputSize::square(224)).unwrap();
        let counts: Vec<usize> = layers.iter().map(|l| l.count).collect();
        assert_eq!(counts, [1, 1, 1, 1, 3, 1, 13, 1]);
        assert_eq!(layers.iter().map(|l| l.count).sum::<usize>(), 22);
        assert!(layers[0].reads_image && !layers[1].reads_image);
        assert_eq!(layers[6].first, "stage3.1");
        assert_eq!((layers[6].stage, layers[6].input_hw), (3, (14, 14)));
        assert_eq!(layers[6].label(), "192->192 14x14 s1 g1");
        // 2·192·192·9·14·14 per image.
        assert_eq!(layers[6].flops(2).unwrap(), 2 * 2 * 192 * 192 * 9 * 196);
    }

    #[test]
    fn synthetic_data_is_seeded_and_not_constant() {
        let config = Config::official("a0").unwrap();
        let layer = &distinct_layers(&config, InputSize::square(32)).unwrap()[1];
        let (w1, e1) = layer.synthetic_weights(3);
        let (w2, _) = layer.synthetic_weights(3);
        assert_eq!(w1, w2);
        assert_ne!(w1, layer.synthetic_weights(4).0);
        assert!(w1.data().iter().any(|&v| v != w1.data()[0]));
        assert_eq!(
            e1.bias.as_ref().map(Vec::len),
            Some(layer.spec.out_channels)
        );
        let x = layer.synthetic_input(2, 3).unwrap();
        assert_eq!(x.shape(), [2, 48, 16, 16]);
        assert!(x.data().iter().all(|v| (-1.0..1.0).contains(v)));
        assert!(layer.flops(usize::MAX).is_err());
    }

    #[test]
    fn median_of_odd_even_and_empty() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), 2.5);
        assert!(median(&mut []).is_nan());
    }
}
