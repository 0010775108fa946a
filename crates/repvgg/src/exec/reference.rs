//! [`Reference`]: the [`Backend`] over `reparam_tensor::reference`, the naive f64-accumulating
//! oracle every other backend is tested against.

use super::Backend;
use crate::error::Error;
use crate::graph::{ConvLayer, NodeId};
use crate::net::{Head, SeWeights};
use reparam_tensor::BatchNorm;
use reparam_tensor::reference as oracle;
use reparam_tensor::{ConvSpec, Epilogue, Tensor};

/// The oracle backend: NCHW [`Tensor`] values, every op a plain loop nest accumulating in `f64`
/// and rounding to `f32` once per op. Slow and obviously correct.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reference;

impl Backend for Reference {
    type Value = Tensor;

    fn name(&self) -> &str {
        "reference"
    }

    fn upload(&self, input: &Tensor) -> Result<Tensor, Error> {
        Ok(input.clone())
    }

    fn download(&self, value: Tensor) -> Result<Tensor, Error> {
        Ok(value)
    }

    fn value_bytes(&self, value: &Tensor) -> usize {
        std::mem::size_of_val(value.data())
    }

    fn conv(&self, _node: NodeId, input: &Tensor, layer: &ConvLayer) -> Result<Tensor, Error> {
        Ok(oracle::conv2d(
            input,
            &layer.spec,
            &layer.weight,
            &layer.epilogue,
        )?)
    }

    fn batch_norm(&self, _node: NodeId, input: &Tensor, bn: &BatchNorm) -> Result<Tensor, Error> {
        Ok(oracle::batch_norm(input, bn)?)
    }

    fn add(&self, _node: NodeId, lhs: &Tensor, rhs: &Tensor) -> Result<Tensor, Error> {
        Ok(oracle::add(lhs, rhs)?)
    }

    fn relu(&self, _node: NodeId, input: &Tensor) -> Result<Tensor, Error> {
        Ok(oracle::relu(input))
    }

    /// `p = mean_{h,w} x`; `z = ReLU(conv1x1(p; W_down) + b_down)`;
    /// `s = sigmoid(conv1x1(z; W_up) + b_up)`; `y = x·s` per channel. A true global average, so
    /// non-square inputs are pooled correctly (unlike the official `SEBlock`, see `docs/repvgg.md#squeeze-excitation`).
    fn squeeze_excite(
        &self,
        _node: NodeId,
        input: &Tensor,
        se: &SeWeights,
    ) -> Result<Tensor, Error> {
        let [hidden, channels, _, _] = se.down_weight.shape();
        let pooled = oracle::global_avg_pool(input)?;
        let down = ConvSpec::conv1x1(channels, hidden, 1, 1);
        let z = oracle::conv2d(
            &pooled,
            &down,
            &se.down_weight,
            &Epilogue::bias_relu(se.down_bias.clone()),
        )?;
        let up = ConvSpec::conv1x1(hidden, channels, 1, 1);
        let up_epilogue = Epilogue {
            bias: Some(se.up_bias.clone()),
            relu: false,
        };
        let s = oracle::sigmoid(&oracle::conv2d(&z, &up, &se.up_weight, &up_epilogue)?);
        Ok(oracle::scale_channels(input, &s)?)
    }

    fn global_avg_pool(&self, _node: NodeId, input: &Tensor) -> Result<Tensor, Error> {
        Ok(oracle::global_avg_pool(input)?)
    }

    fn linear(&self, _node: NodeId, input: &Tensor, head: &Head) -> Result<Tensor, Error> {
        Ok(oracle::linear(input, &head.weight, Some(&head.bias))?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reparam_tensor::rng::SplitMix64;

    #[test]
    fn squeeze_excite_matches_hand_computation() {
        // Two channels, one hidden unit; x planes of 2x3 (non-square) with means 1 and −2.
        let x = Tensor::new(
            [1, 2, 2, 3],
            vec![
                0.0, 1.0, 2.0, 0.0, 1.0, 2.0, -2.0, -2.0, -2.0, -1.0, -3.0, -2.0,
            ],
        )
        .unwrap();
        let se = SeWeights {
            down_weight: Tensor::new([1, 2, 1, 1], vec![1.0, 0.5]).unwrap(),
            down_bias: vec![0.5],
            up_weight: Tensor::new([2, 1, 1, 1], vec![2.0, -1.0]).unwrap(),
            up_bias: vec![0.0, 0.25],
        };
        // z = ReLU(1·1 + 0.5·(−2) + 0.5) = 0.5; s = sigmoid(1, −0.25).
        let sig = |v: f64| 1.0 / (1.0 + (-v).exp());
        let s = [sig(1.0), sig(-0.25)];
        let y = Reference.squeeze_excite(NodeId(0), &x, &se).unwrap();
        for (i, (&got, &xv)) in y.data().iter().zip(x.data()).enumerate() {
            let want = (f64::from(xv) * s[i / 6]) as f32;
            assert!((got - want).abs() <= 1e-6, "element {i}: {got} vs {want}");
        }
        // A wrongly shaped SE is an error, not a panic.
        let mut rng = SplitMix64::new(2);
        let bad = Tensor::new([1, 3, 2, 2], rng.uniform_vec(12, -1.0, 1.0)).unwrap();
        assert!(Reference.squeeze_excite(NodeId(0), &bad, &se).is_err());
    }
}
