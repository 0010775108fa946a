//! The oracle: naive, obviously-correct implementations of every op reparam runs.
//!
//! Every function here is written for clarity, not speed: plain nested loops over the
//! mathematical definition, with all sums accumulated in `f64` and rounded to `f32` once at the
//! end. Kernels (CPU SIMD, GPU WGSL) are tested against these functions, so they must stay
//! simple enough to check by reading. Nothing here is used on a hot path.
//!
//! All ops validate their operands and return [`TensorError`] naming the bad one; none panics on
//! user input.

use crate::{BatchNorm, ConvSpec, Epilogue, Tensor, TensorError};

/// Direct convolution: for every output element,
/// `y[n,o,y,x] = epilogue( Σ_{i<C_in/g} Σ_{u,v<k} W[o,i,u,v] · X[n, g_o·C_in/g + i, y·s + u − p, x·s + v − p] )`
/// where `g_o = ⌊o / (C_out/g)⌋` and out-of-range input positions read as zero.
pub fn conv2d(
    input: &Tensor,
    spec: &ConvSpec,
    weight: &Tensor,
    epilogue: &Epilogue,
) -> Result<Tensor, TensorError> {
    let out_shape = spec.output_shape(input.shape())?;
    spec.check_weight(weight)?;
    epilogue.validate(spec)?;
    let [n, _, h, w] = input.shape();
    let [_, c_out, oh, ow] = out_shape;
    let (cig, cog, k) = (spec.in_per_group(), spec.out_per_group(), spec.kernel);
    let mut out = Tensor::zeros(out_shape)?;
    for ni in 0..n {
        for o in 0..c_out {
            let first_in = (o / cog) * cig;
            for y in 0..oh {
                for x in 0..ow {
                    let mut acc = 0.0f64;
                    for i in 0..cig {
                        for u in 0..k {
                            for v in 0..k {
                                let iy = (y * spec.stride + u).checked_sub(spec.padding);
                                let ix = (x * spec.stride + v).checked_sub(spec.padding);
                                if let (Some(iy), Some(ix)) = (iy, ix)
                                    && iy < h
                                    && ix < w
                                {
                                    acc += f64::from(weight.at(o, i, u, v))
                                        * f64::from(input.at(ni, first_in + i, iy, ix));
                                }
                            }
                        }
                    }
                    let bias = epilogue.bias.as_ref().map_or(0.0, |b| f64::from(b[o]));
                    let mut val = acc + bias;
                    if epilogue.relu {
                        val = val.max(0.0);
                    }
                    let off = out.offset(ni, o, y, x);
                    out.data_mut()[off] = val as f32;
                }
            }
        }
    }
    Ok(out)
}

/// The magnitude of the sum behind every output element of [`conv2d`]:
/// `m[n,o,y,x] = |bias?[o]| + Σ |W[o,i,u,v]| · |X[n, …]|` (same indices as [`conv2d`], no ReLU).
/// A float sum's rounding error scales with `m`, not with the (possibly cancelled) result; the
/// tolerance helpers use it as a floor (`tolerance::cancellation_floor`).
pub fn conv2d_magnitude(
    input: &Tensor,
    spec: &ConvSpec,
    weight: &Tensor,
    epilogue: &Epilogue,
) -> Result<Tensor, TensorError> {
    let abs = |t: &Tensor| map(t, f64::abs);
    let linear = Epilogue {
        bias: epilogue
            .bias
            .as_ref()
            .map(|b| b.iter().map(|v| v.abs()).collect()),
        relu: false,
    };
    conv2d(&abs(input), spec, &abs(weight), &linear)
}

/// Batch norm in inference mode, evaluated in f64 as `γ·(x − μ)/√(σ² + ε) + β`.
pub fn batch_norm(input: &Tensor, bn: &BatchNorm) -> Result<Tensor, TensorError> {
    let c = bn.channels()?;
    let (scale, shift) = bn.scale_shift()?;
    let [n, ic, h, w] = input.shape();
    if ic != c {
        return Err(TensorError::ShapeMismatch {
            operand: "batch_norm channels",
            expected: vec![n, c, h, w],
            actual: input.shape().to_vec(),
        });
    }
    Tensor::from_fn(input.shape(), |ni, ci, y, x| {
        (scale[ci] * f64::from(input.at(ni, ci, y, x)) + shift[ci]) as f32
    })
}

/// Element-wise sum `a + b` (same shapes), computed in f64.
pub fn add(a: &Tensor, b: &Tensor) -> Result<Tensor, TensorError> {
    b.expect_shape("add rhs", a.shape())?;
    let data = a
        .data()
        .iter()
        .zip(b.data())
        .map(|(&x, &y)| (f64::from(x) + f64::from(y)) as f32)
        .collect();
    Tensor::new(a.shape(), data)
}

/// `max(x, 0)` element-wise.
pub fn relu(x: &Tensor) -> Tensor {
    map(x, |v| v.max(0.0))
}

/// `1 / (1 + e^(−x))` element-wise, in f64.
pub fn sigmoid(x: &Tensor) -> Tensor {
    map(x, |v| 1.0 / (1.0 + (-v).exp()))
}

fn map(x: &Tensor, f: impl Fn(f64) -> f64) -> Tensor {
    let data = x.data().iter().map(|&v| f(f64::from(v)) as f32).collect();
    Tensor::new(x.shape(), data).expect("same shape as the input")
}

/// Global average pool: `[N, C, H, W] → [N, C, 1, 1]`, `y[n,c] = (1/HW)·Σ_{h,w} x[n,c,h,w]` in f64.
pub fn global_avg_pool(x: &Tensor) -> Result<Tensor, TensorError> {
    let [n, c, h, w] = x.shape();
    if h * w == 0 {
        return Err(TensorError::invalid(
            "input",
            "global average pool of an empty plane",
        ));
    }
    Tensor::from_fn([n, c, 1, 1], |ni, ci, _, _| {
        let plane = &x.data()[(ni * c + ci) * h * w..][..h * w];
        (plane.iter().map(|&v| f64::from(v)).sum::<f64>() / (h * w) as f64) as f32
    })
}

/// Scales each channel plane by a per-(n, c) factor: `y[n,c,h,w] = x[n,c,h,w] · s[n,c]`, with `s`
/// of shape `[N, C, 1, 1]` (the last step of a squeeze-excitation block).
pub fn scale_channels(x: &Tensor, s: &Tensor) -> Result<Tensor, TensorError> {
    let [n, c, _, _] = x.shape();
    s.expect_shape("channel scale", [n, c, 1, 1])?;
    Tensor::from_fn(x.shape(), |ni, ci, y, xx| {
        (f64::from(x.at(ni, ci, y, xx)) * f64::from(s.at(ni, ci, 0, 0))) as f32
    })
}

/// Fully connected layer on pooled features: `x` is `[N, F, 1, 1]`, `weight` is `[M, F, 1, 1]`,
/// `bias` has length `M`; `y[n,m] = b[m] + Σ_f W[m,f]·x[n,f]` in f64, returned as `[N, M, 1, 1]`.
pub fn linear(x: &Tensor, weight: &Tensor, bias: Option<&[f32]>) -> Result<Tensor, TensorError> {
    let [n, f, h, w] = x.shape();
    if h != 1 || w != 1 {
        return Err(TensorError::ShapeMismatch {
            operand: "linear input",
            expected: vec![n, f, 1, 1],
            actual: x.shape().to_vec(),
        });
    }
    let [m, wf, _, _] = weight.shape();
    weight.expect_shape("linear weight", [m, f, 1, 1])?;
    debug_assert_eq!(wf, f);
    if let Some(b) = bias
        && b.len() != m
    {
        return Err(TensorError::ShapeMismatch {
            operand: "linear bias",
            expected: vec![m],
            actual: vec![b.len()],
        });
    }
    Tensor::from_fn([n, m, 1, 1], |ni, mi, _, _| {
        let dot: f64 = (0..f)
            .map(|fi| f64::from(weight.at(mi, fi, 0, 0)) * f64::from(x.at(ni, fi, 0, 0)))
            .sum();
        (dot + bias.map_or(0.0, |b| f64::from(b[mi]))) as f32
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conv2d_magnitude_sums_absolute_terms() {
        // 1 input channel, 1x1 kernel of -2, bias -1: m = |−1| + 2·|x|.
        let spec = ConvSpec::conv1x1(1, 1, 1, 1);
        let x = Tensor::new([1, 1, 1, 3], vec![-1.0, 0.5, 2.0]).unwrap();
        let w = Tensor::new([1, 1, 1, 1], vec![-2.0]).unwrap();
        let ep = Epilogue::bias_relu(vec![-1.0]);
        let m = conv2d_magnitude(&x, &spec, &w, &ep).unwrap();
        assert_eq!(m.data(), &[3.0, 2.0, 5.0]);
    }

    #[test]
    fn conv_matches_hand_computed_values() {
        // 1 input channel 3x3 of 1..9, all-ones 3x3 kernel, padding 1: each output is the sum of
        // the in-range neighbourhood.
        let x = Tensor::new([1, 1, 3, 3], (1..=9).map(|v| v as f32).collect()).unwrap();
        let k = Tensor::filled([1, 1, 3, 3], 1.0).unwrap();
        let spec = ConvSpec::conv3x3(1, 1, 1, 1);
        let y = conv2d(&x, &spec, &k, &Epilogue::none()).unwrap();
        assert_eq!(
            y.data(),
            &[12.0, 21.0, 16.0, 27.0, 45.0, 33.0, 24.0, 39.0, 28.0]
        );
        // Stride 2 picks (0,0), (0,2), (2,0), (2,2); bias −20 and ReLU clip the corners.
        let spec2 = ConvSpec::conv3x3(1, 1, 2, 1);
        let y2 = conv2d(&x, &spec2, &k, &Epilogue::bias_relu(vec![-20.0])).unwrap();
        assert_eq!(y2.data(), &[0.0, 0.0, 4.0, 8.0]);
    }

    #[test]
    fn conv_accepts_any_kernel_size() {
        // 2x2 all-ones kernel, no padding: sums of each 2x2 window of 1..9.
        let x = Tensor::new([1, 1, 3, 3], (1..=9).map(|v| v as f32).collect()).unwrap();
        let spec = ConvSpec {
            kernel: 2,
            padding: 0,
            ..ConvSpec::conv3x3(1, 1, 1, 1)
        };
        let k = Tensor::filled([1, 1, 2, 2], 1.0).unwrap();
        let y = conv2d(&x, &spec, &k, &Epilogue::none()).unwrap();
        assert_eq!(y.data(), &[12.0, 16.0, 24.0, 28.0]);
    }

    #[test]
    fn grouped_conv_reads_only_its_group() {
        // 2 groups, 1x1 identity-like weights: output channel o copies input channel o scaled.
        let x = Tensor::from_fn([1, 4, 2, 2], |_, c, h, w| (c * 10 + h * 2 + w) as f32).unwrap();
        let spec = ConvSpec::conv1x1(4, 2, 1, 2);
        // Group 0 (out 0) reads in 0..2, group 1 (out 1) reads in 2..4.
        let wt = Tensor::new([2, 2, 1, 1], vec![1.0, 0.0, 0.0, 2.0]).unwrap();
        let y = conv2d(&x, &spec, &wt, &Epilogue::none()).unwrap();
        assert_eq!(y.data(), &[0.0, 1.0, 2.0, 3.0, 60.0, 62.0, 64.0, 66.0]);
    }

    #[test]
    fn conv_rejects_bad_operands() {
        let x = Tensor::zeros([1, 4, 5, 5]).unwrap();
        let spec = ConvSpec::conv3x3(4, 8, 1, 1);
        let bad_w = Tensor::zeros([8, 3, 3, 3]).unwrap();
        assert!(matches!(
            conv2d(&x, &spec, &bad_w, &Epilogue::none()),
            Err(TensorError::ShapeMismatch {
                operand: "weight",
                ..
            })
        ));
        let mut nan_w = Tensor::zeros([8, 4, 3, 3]).unwrap();
        nan_w.data_mut()[5] = f32::NAN;
        assert!(conv2d(&x, &spec, &nan_w, &Epilogue::none()).is_err());
        let wrong_c = Tensor::zeros([1, 3, 5, 5]).unwrap();
        assert!(
            conv2d(
                &wrong_c,
                &spec,
                &Tensor::zeros([8, 4, 3, 3]).unwrap(),
                &Epilogue::none()
            )
            .is_err()
        );
    }

    #[test]
    fn batch_norm_and_pointwise_ops() {
        let x = Tensor::new([1, 2, 1, 2], vec![1.0, 3.0, -2.0, 2.0]).unwrap();
        let bn = BatchNorm {
            gamma: vec![2.0, 1.0],
            beta: vec![0.5, -1.0],
            mean: vec![1.0, 0.0],
            var: vec![4.0 - 1e-5, 1.0 - 1e-5],
            eps: 1e-5,
        };
        let y = batch_norm(&x, &bn).unwrap();
        let expect = [0.5, 2.5, -3.0, 1.0];
        for (a, b) in y.data().iter().zip(expect) {
            assert!((a - b).abs() < 1e-6, "{a} vs {b}");
        }
        assert_eq!(relu(&x).data(), &[1.0, 3.0, 0.0, 2.0]);
        assert_eq!(add(&x, &x).unwrap().data(), &[2.0, 6.0, -4.0, 4.0]);
        assert_eq!(
            sigmoid(&Tensor::zeros([1, 1, 1, 1]).unwrap()).data(),
            &[0.5]
        );
        let pooled = global_avg_pool(&x).unwrap();
        assert_eq!(pooled.data(), &[2.0, 0.0]);
        let scaled =
            scale_channels(&x, &Tensor::new([1, 2, 1, 1], vec![2.0, -1.0]).unwrap()).unwrap();
        assert_eq!(scaled.data(), &[2.0, 6.0, 2.0, -2.0]);
        let fc = Tensor::new([3, 2, 1, 1], vec![1.0, 0.0, 0.0, 1.0, 1.0, 1.0]).unwrap();
        let logits = linear(&pooled, &fc, Some(&[0.0, 1.0, -1.0])).unwrap();
        assert_eq!(logits.shape(), [1, 3, 1, 1]);
        assert_eq!(logits.data(), &[2.0, 1.0, 1.0]);
    }

    #[test]
    fn batch_norm_rejects_negative_variance() {
        let bn = BatchNorm {
            gamma: vec![1.0],
            beta: vec![0.0],
            mean: vec![0.0],
            var: vec![-1.0],
            eps: 1e-5,
        };
        assert!(matches!(
            bn.scale_shift(),
            Err(TensorError::Invalid { field: "var", .. })
        ));
    }
}
