//! [`ReparamConv3x3`]: one 3x3 convolution layer (+ bias, + ReLU) on a
//! [`reparam_winograd::Conv2dPlan`], with its own thread pool.

use crate::check;
use crate::status::{ApiError, ReparamStatus};
use reparam_tensor::{ConvSpec, Epilogue, Tensor};
use reparam_winograd::{Conv2dPlan, Parallelism, PlanOptions};

/// The geometry of a 3x3 convolution layer, as C passes it to `reparam_conv3x3_new`.
///
/// Weights are `[out_channels, in_channels / groups, 3, 3]` (PyTorch's layout); the output size
/// per spatial axis is `(in + 2·padding − 3) / stride + 1`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReparamConvDesc {
    /// Input channels, ≥ 1, divisible by `groups`.
    pub in_channels: usize,
    /// Output channels, ≥ 1, divisible by `groups`.
    pub out_channels: usize,
    /// Stride, ≥ 1 (Winograd needs 1; other strides run direct convolution).
    pub stride: usize,
    /// Zero padding on every side: 0, 1 or 2.
    pub padding: usize,
    /// Groups, ≥ 1.
    pub groups: usize,
    /// Nonzero: apply `max(·, 0)` after the bias.
    pub relu: u32,
    /// Threads of the layer's pool; 0: one per core. Results do not depend on it.
    pub threads: usize,
}

impl ReparamConvDesc {
    /// The convolution (kernel 3).
    pub fn spec(&self) -> ConvSpec {
        ConvSpec {
            in_channels: self.in_channels,
            out_channels: self.out_channels,
            kernel: 3,
            stride: self.stride,
            padding: self.padding,
            groups: self.groups,
        }
    }

    /// Floats of the weight array after validating the geometry (the error names the first
    /// offending field): `out_channels · in_channels / groups · 9`.
    pub fn weight_len(&self) -> Result<usize, ApiError> {
        let spec = self.spec();
        spec.validate()?;
        check::buffer_len(&[
            ("out_channels", spec.out_channels),
            ("in_channels / groups", spec.in_channels / spec.groups),
            ("kernel area", 9),
        ])
    }
}

/// A planned 3x3 convolution layer (see [`ReparamConvDesc`]).
#[derive(Debug)]
pub struct ReparamConv3x3 {
    plan: Conv2dPlan,
    pool: rayon::ThreadPool,
}

impl ReparamConv3x3 {
    /// Plans the layer: `weight` holds [`ReparamConvDesc::weight_len`] floats, `bias`
    /// `out_channels` (or none). The algorithm and ISA are chosen as
    /// [`reparam_winograd::Conv2dPlan::new`] does with default options.
    pub fn new(
        desc: &ReparamConvDesc,
        weight: &[f32],
        bias: Option<&[f32]>,
    ) -> Result<Self, ApiError> {
        let spec = desc.spec();
        let weight = Tensor::new(spec.weight_shape(), weight.to_vec())?;
        let epilogue = Epilogue {
            bias: bias.map(<[f32]>::to_vec),
            relu: desc.relu != 0,
        };
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(desc.threads)
            .build()
            .map_err(|e| {
                ApiError::new(
                    ReparamStatus::Run,
                    format!("cannot start {} threads: {e}", desc.threads),
                )
            })?;
        let options = PlanOptions {
            parallelism: Parallelism::Rayon,
            ..PlanOptions::default()
        };
        let plan =
            Conv2dPlan::new(spec, &weight, &epilogue, &options).map_err(ApiError::from_conv)?;
        Ok(Self { plan, pool })
    }

    /// The layer's convolution.
    pub fn spec(&self) -> &ConvSpec {
        self.plan.spec()
    }

    /// The input shape `[n, in_channels, h, w]` and its float count.
    pub fn input_shape(
        &self,
        n: usize,
        h: usize,
        w: usize,
    ) -> Result<([usize; 4], usize), ApiError> {
        let c = self.spec().in_channels;
        let len = check::buffer_len(&[("n", n), ("in_channels", c), ("h", h), ("w", w)])?;
        Ok(([n, c, h, w], len))
    }

    /// The output shape `[n, out_channels, out_h, out_w]` for an `n × h × w` input and its float
    /// count.
    pub fn output_shape(
        &self,
        n: usize,
        h: usize,
        w: usize,
    ) -> Result<([usize; 4], usize), ApiError> {
        let (input, _) = self.input_shape(n, h, w)?;
        let out = self.plan.output_shape(input).map_err(ApiError::from_conv)?;
        let len = check::buffer_len(&[("n", out[0]), ("c", out[1]), ("h", out[2]), ("w", out[3])])?;
        Ok((out, len))
    }

    /// Runs `input` (NCHW `[n, in_channels, h, w]`, exactly that many floats) and returns the
    /// NCHW output, after checking that a caller buffer of `output_len` floats holds it.
    pub fn run(
        &self,
        [n, h, w]: [usize; 3],
        input: &[f32],
        output_len: usize,
    ) -> Result<Tensor, ApiError> {
        let (in_shape, in_len) = self.input_shape(n, h, w)?;
        if input.len() != in_len {
            return Err(ApiError::invalid(format!(
                "`input` holds {} floats, not n·in_channels·h·w = {in_len}",
                input.len()
            )));
        }
        let (out_shape, out_len) = self.output_shape(n, h, w)?;
        check::room("output", output_len, out_len)?;
        let x = Tensor::new(in_shape, input.to_vec())?;
        let mut y = Tensor::zeros(out_shape)?;
        self.pool
            .install(|| self.plan.run(&x, &mut y, None))
            .map_err(ApiError::from_conv)?;
        Ok(y)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reparam_tensor::reference;
    use reparam_tensor::tolerance::{Tolerance, check_close};

    fn desc(stride: usize, groups: usize, relu: u32) -> ReparamConvDesc {
        ReparamConvDesc {
            in_channels: 8,
            out_channels: 12,
            stride,
            padding: 1,
            groups,
            relu,
            threads: 2,
        }
    }

    fn values(len: usize, scale: f32) -> Vec<f32> {
        (0..len)
            .map(|i| (((i * 29) % 97) as f32 - 48.0) * scale)
            .collect()
    }

    #[test]
    fn layers_match_the_reference() {
        for (stride, groups, relu, bias) in [(1, 1, 1, true), (2, 1, 0, false), (1, 4, 1, true)] {
            let d = desc(stride, groups, relu);
            let weight = values(d.weight_len().unwrap(), 1.0 / 256.0);
            let bias = bias.then(|| values(12, 1.0 / 64.0));
            let conv = ReparamConv3x3::new(&d, &weight, bias.as_deref()).unwrap();
            let (shape, len) = conv.input_shape(2, 11, 13).unwrap();
            let input = values(len, 1.0 / 32.0);
            let (out_shape, out_len) = conv.output_shape(2, 11, 13).unwrap();
            let actual = conv.run([2, 11, 13], &input, out_len).unwrap();
            assert_eq!(actual.shape(), out_shape);
            let expected = reference::conv2d(
                &Tensor::new(shape, input).unwrap(),
                &d.spec(),
                &Tensor::new(d.spec().weight_shape(), weight).unwrap(),
                &Epilogue {
                    bias,
                    relu: relu != 0,
                },
            )
            .unwrap();
            let k = 9 * 8 / groups;
            let factor = conv.plan.algorithm().error_factor();
            check_close(
                &actual,
                &expected,
                &Tolerance::for_reduction(k, factor),
                &format!("stride {stride} groups {groups}"),
            )
            .unwrap();
        }
    }

    #[test]
    fn bad_geometry_and_buffers_are_named() {
        let bad = ReparamConvDesc {
            groups: 3,
            ..desc(1, 1, 0)
        };
        let e = bad.weight_len().unwrap_err();
        assert_eq!(e.status, ReparamStatus::InvalidArgument);
        assert!(e.message.contains("groups"), "{}", e.message);
        let d = desc(1, 1, 0);
        let weight = values(d.weight_len().unwrap(), 0.01);
        let e = ReparamConv3x3::new(&d, &weight, Some(&[0.0; 5])).unwrap_err();
        assert_eq!(e.status, ReparamStatus::InvalidArgument, "{}", e.message);
        let conv = ReparamConv3x3::new(&d, &weight, None).unwrap();
        let (_, len) = conv.input_shape(1, 4, 4).unwrap();
        let e = conv
            .run([1, 4, 4], &values(len, 0.1), 12 * 16 - 1)
            .unwrap_err();
        assert_eq!(e.message, "`output` holds 191 floats but 192 are needed");
        assert!(conv.output_shape(1, 0, 4).is_err());
    }
}
