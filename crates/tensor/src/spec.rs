//! [`ConvSpec`] (geometry of a convolution) and [`Epilogue`] (what is fused after it).

use crate::{Shape, Tensor, TensorError};

/// Geometry of a 2-D convolution with square kernel, stride and zero padding.
///
/// Output size per spatial axis: `out = ⌊(in + 2·padding − kernel) / stride⌋ + 1`.
/// Weights have shape `[out_channels, in_channels / groups, kernel, kernel]`; output channel `o`
/// belongs to group `⌊o / (out_channels / groups)⌋` and reads only that group's input channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConvSpec {
    /// Input channels `C_in`.
    pub in_channels: usize,
    /// Output channels `C_out`.
    pub out_channels: usize,
    /// Kernel size: 1 or 3.
    pub kernel: usize,
    /// Stride, ≥ 1.
    pub stride: usize,
    /// Zero padding on every side, `< kernel`.
    pub padding: usize,
    /// Groups `g`, dividing both channel counts.
    pub groups: usize,
}

impl ConvSpec {
    /// A 3x3 convolution with padding 1 (the RepVGG conv).
    pub fn conv3x3(in_channels: usize, out_channels: usize, stride: usize, groups: usize) -> Self {
        Self {
            in_channels,
            out_channels,
            kernel: 3,
            stride,
            padding: 1,
            groups,
        }
    }

    /// A 1x1 convolution with padding 0 (the RepVGG 1x1 branch and the SE layers).
    pub fn conv1x1(in_channels: usize, out_channels: usize, stride: usize, groups: usize) -> Self {
        Self {
            in_channels,
            out_channels,
            kernel: 1,
            stride,
            padding: 0,
            groups,
        }
    }

    /// Checks the spec for reparam's kernels: [`ConvSpec::check_geometry`] plus a kernel of 1 or 3.
    /// The error names the first offending field.
    pub fn validate(&self) -> Result<(), TensorError> {
        self.check_geometry()?;
        if self.kernel != 1 && self.kernel != 3 {
            return Err(TensorError::invalid(
                "kernel",
                format!("must be 1 or 3, got {}", self.kernel),
            ));
        }
        Ok(())
    }

    /// Checks what any convolution needs (the reference oracle accepts every such spec, whatever
    /// the kernel size): non-zero channels, kernel, stride and groups, `padding < kernel`, and
    /// groups dividing both channel counts. The error names the first offending field.
    pub fn check_geometry(&self) -> Result<(), TensorError> {
        if self.in_channels == 0 {
            return Err(TensorError::invalid("in_channels", "must be at least 1"));
        }
        if self.out_channels == 0 {
            return Err(TensorError::invalid("out_channels", "must be at least 1"));
        }
        if self.kernel == 0 {
            return Err(TensorError::invalid("kernel", "must be at least 1"));
        }
        if self.stride == 0 {
            return Err(TensorError::invalid("stride", "must be at least 1"));
        }
        if self.padding >= self.kernel {
            return Err(TensorError::invalid(
                "padding",
                format!(
                    "must be smaller than the kernel ({}), got {}",
                    self.kernel, self.padding
                ),
            ));
        }
        if self.groups == 0 {
            return Err(TensorError::invalid("groups", "must be at least 1"));
        }
        if !self.in_channels.is_multiple_of(self.groups)
            || !self.out_channels.is_multiple_of(self.groups)
        {
            return Err(TensorError::invalid(
                "groups",
                format!(
                    "{} does not divide in_channels {} and out_channels {}",
                    self.groups, self.in_channels, self.out_channels
                ),
            ));
        }
        Ok(())
    }

    /// Input channels per group, `C_in / g`.
    pub fn in_per_group(&self) -> usize {
        self.in_channels / self.groups
    }

    /// Output channels per group, `C_out / g`.
    pub fn out_per_group(&self) -> usize {
        self.out_channels / self.groups
    }

    /// The weight shape `[C_out, C_in / g, k, k]`.
    pub fn weight_shape(&self) -> Shape {
        [
            self.out_channels,
            self.in_per_group(),
            self.kernel,
            self.kernel,
        ]
    }

    /// Length of the reduction behind each output element, `(C_in / g)·k²` (what tolerances scale with).
    pub fn reduction_len(&self) -> usize {
        self.in_per_group() * self.kernel * self.kernel
    }

    /// Output `(H, W)` for an input of `(h, w)`; fails if the padded input is smaller than the kernel.
    pub fn output_hw(&self, h: usize, w: usize) -> Result<(usize, usize), TensorError> {
        let axis = |len: usize, field: &'static str| {
            let padded = len + 2 * self.padding;
            if len == 0 || padded < self.kernel {
                Err(TensorError::invalid(
                    field,
                    format!(
                        "input {field} {len} with padding {} is smaller than the kernel {}",
                        self.padding, self.kernel
                    ),
                ))
            } else {
                Ok((padded - self.kernel) / self.stride + 1)
            }
        };
        Ok((axis(h, "height")?, axis(w, "width")?))
    }

    /// Output shape for an input of shape `input` (checks its channel count too).
    pub fn output_shape(&self, input: Shape) -> Result<Shape, TensorError> {
        self.check_geometry()?;
        let [n, c, h, w] = input;
        if c != self.in_channels {
            return Err(TensorError::ShapeMismatch {
                operand: "input",
                expected: vec![n, self.in_channels, h, w],
                actual: input.to_vec(),
            });
        }
        let (oh, ow) = self.output_hw(h, w)?;
        Ok([n, self.out_channels, oh, ow])
    }

    /// Multiply-accumulates for one image of `(h, w)`: `C_out·(C_in/g)·k²·H_out·W_out`.
    pub fn macs(&self, h: usize, w: usize) -> Result<u64, TensorError> {
        let (oh, ow) = self.output_hw(h, w)?;
        Ok((self.out_channels * self.reduction_len()) as u64 * (oh * ow) as u64)
    }

    /// Checks a weight tensor against [`ConvSpec::weight_shape`] and rejects non-finite values.
    pub fn check_weight(&self, weight: &Tensor) -> Result<(), TensorError> {
        self.check_geometry()?;
        weight.expect_shape("weight", self.weight_shape())?;
        if let Some(i) = weight.first_non_finite() {
            return Err(TensorError::invalid(
                "weight",
                format!("element {i} is not finite ({})", weight.data()[i]),
            ));
        }
        Ok(())
    }
}

/// What is applied to each output element after the convolution sum, in order:
/// `y = relu?(acc + bias?[o])`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Epilogue {
    /// Per-output-channel bias (length `C_out`), or none.
    pub bias: Option<Vec<f32>>,
    /// Apply `max(·, 0)` after the bias.
    pub relu: bool,
}

impl Epilogue {
    /// No bias, no ReLU.
    pub fn none() -> Self {
        Self::default()
    }

    /// Bias followed by ReLU (the RepVGG deploy block).
    pub fn bias_relu(bias: Vec<f32>) -> Self {
        Self {
            bias: Some(bias),
            relu: true,
        }
    }

    /// Checks the bias length against `spec.out_channels` and rejects non-finite values.
    pub fn validate(&self, spec: &ConvSpec) -> Result<(), TensorError> {
        if let Some(bias) = &self.bias {
            if bias.len() != spec.out_channels {
                return Err(TensorError::ShapeMismatch {
                    operand: "bias",
                    expected: vec![spec.out_channels],
                    actual: vec![bias.len()],
                });
            }
            if let Some(i) = bias.iter().position(|v| !v.is_finite()) {
                return Err(TensorError::invalid(
                    "bias",
                    format!("element {i} is not finite ({})", bias[i]),
                ));
            }
        }
        Ok(())
    }

    /// Applies the epilogue to one accumulated value of output channel `o`.
    pub fn apply(&self, o: usize, acc: f32) -> f32 {
        let v = acc + self.bias.as_ref().map_or(0.0, |b| b[o]);
        if self.relu { v.max(0.0) } else { v }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_names_the_field() {
        let ok = ConvSpec::conv3x3(8, 16, 1, 2);
        assert!(ok.validate().is_ok());
        let cases = [
            (
                ConvSpec {
                    in_channels: 0,
                    ..ok
                },
                "in_channels",
            ),
            (
                ConvSpec {
                    out_channels: 0,
                    ..ok
                },
                "out_channels",
            ),
            (ConvSpec { kernel: 5, ..ok }, "kernel"),
            (ConvSpec { stride: 0, ..ok }, "stride"),
            (ConvSpec { padding: 3, ..ok }, "padding"),
            (ConvSpec { groups: 0, ..ok }, "groups"),
            (ConvSpec { groups: 3, ..ok }, "groups"),
        ];
        assert!(
            ConvSpec {
                kernel: 5,
                padding: 2,
                ..ok
            }
            .check_geometry()
            .is_ok()
        );
        for (spec, field) in cases {
            match spec.validate() {
                Err(TensorError::Invalid { field: f, .. }) => assert_eq!(f, field, "{spec:?}"),
                other => panic!("{spec:?}: expected error on {field}, got {other:?}"),
            }
        }
    }

    #[test]
    fn output_sizes() {
        let s2 = ConvSpec::conv3x3(3, 48, 2, 1);
        assert_eq!(s2.output_hw(224, 224).unwrap(), (112, 112));
        assert_eq!(s2.output_hw(57, 57).unwrap(), (29, 29));
        assert_eq!(s2.output_hw(1, 1).unwrap(), (1, 1));
        let one = ConvSpec::conv1x1(3, 48, 2, 1);
        assert_eq!(one.output_hw(57, 57).unwrap(), (29, 29));
        assert!(s2.output_hw(0, 4).is_err());
        assert_eq!(
            ConvSpec::conv3x3(192, 192, 1, 1).macs(14, 14).unwrap(),
            192 * 192 * 9 * 196
        );
    }

    #[test]
    fn epilogue_checks_bias() {
        let spec = ConvSpec::conv3x3(4, 2, 1, 1);
        assert!(Epilogue::bias_relu(vec![0.0; 2]).validate(&spec).is_ok());
        assert!(Epilogue::bias_relu(vec![0.0; 3]).validate(&spec).is_err());
        assert!(
            Epilogue::bias_relu(vec![f32::NAN, 0.0])
                .validate(&spec)
                .is_err()
        );
        assert_eq!(Epilogue::bias_relu(vec![1.0, -5.0]).apply(1, 2.0), 0.0);
    }
}
