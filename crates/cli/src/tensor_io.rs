//! Image batches in and logits out, as safetensors files.
//!
//! - Input: one tensor under [`INPUT_KEY`] of shape `[N, C, H, W]`, dtype F32, F16 or BF16
//!   (converted to f32); other keys are ignored.
//! - Output: the logits under [`OUTPUT_KEY`], shape `[N, classes]`, F32.

use crate::error::CliError;
use reparam_tensor::Tensor;
use reparam_tensor::rng::SplitMix64;
use repvgg::checkpoint::to_f32;
use repvgg::stats::InputSize;
use safetensors::{Dtype, SafeTensors, tensor::TensorView};

/// The key `--input` files hold the image batch under.
pub const INPUT_KEY: &str = "input";
/// The key `--output` files hold the logits under.
pub const OUTPUT_KEY: &str = "logits";
/// The most elements a synthetic input may have (2²⁸ f32 = 1 GiB).
pub const MAX_SYNTHETIC_ELEMENTS: usize = 1 << 28;

/// Parses an input file's bytes (`source` names the file in messages) into an `[N, C, H, W]` f32
/// tensor with `C == channels`.
pub fn parse_input(bytes: &[u8], source: &str, channels: usize) -> Result<Tensor, CliError> {
    let shape_hint = format!(
        "store the image batch under the key `{INPUT_KEY}` with shape [N, {channels}, H, W] \
         (F32, F16 or BF16), e.g. `safetensors.torch.save_file({{\"{INPUT_KEY}\": x}}, path)`"
    );
    let file = SafeTensors::deserialize(bytes).map_err(|e| {
        CliError::new(format!("`{source}` is not a valid safetensors file: {e}"))
            .hint(shape_hint.clone())
    })?;
    let view = file.tensor(INPUT_KEY).map_err(|_| {
        let mut keys = file.names();
        keys.sort_unstable();
        let found = if keys.is_empty() {
            "it holds no tensors".to_string()
        } else {
            format!("it holds: {}", keys.join(", "))
        };
        CliError::new(format!(
            "`{source}` has no tensor named `{INPUT_KEY}`; {found}"
        ))
        .hint(shape_hint.clone())
    })?;
    let shape: [usize; 4] = view.shape().try_into().map_err(|_| {
        CliError::new(format!(
            "`{source}`: `{INPUT_KEY}` has rank {} (shape {:?}); expected rank 4, [N, {channels}, H, W]",
            view.shape().len(),
            view.shape()
        ))
        .hint(shape_hint.clone())
    })?;
    let [n, c, h, w] = shape;
    if c != channels {
        return Err(CliError::new(format!(
            "`{source}`: `{INPUT_KEY}` has {c} channels (shape {shape:?}); the model takes {channels}"
        ))
        .hint(format!("the layout must be NCHW: [N, {channels}, H, W]")));
    }
    if n == 0 || h == 0 || w == 0 {
        return Err(CliError::new(format!(
            "`{source}`: `{INPUT_KEY}` has shape {shape:?}; N, H and W must be at least 1"
        ))
        .hint(shape_hint));
    }
    let data = to_f32(INPUT_KEY, view.dtype(), view.data()).map_err(|e| {
        CliError::new(format!("`{source}`: {e}"))
            .hint("convert it, e.g. `x.float()` in PyTorch or `x.astype(np.float32)` in NumPy")
    })?;
    if let Some(i) = data.iter().position(|v| !v.is_finite()) {
        return Err(CliError::new(format!(
            "`{source}`: `{INPUT_KEY}` holds a non-finite value ({}) at element {i}",
            data[i]
        ))
        .hint("replace NaN and infinite pixels before running"));
    }
    Tensor::new(shape, data).map_err(|e| CliError::new(format!("`{source}`: {e}")))
}

/// A seeded synthetic image batch `[batch, channels, H, W]`, uniform in [−1, 1): the same seed
/// gives the same batch everywhere (SplitMix64 on a stream separate from the weights').
pub fn synthetic_input(
    batch: usize,
    channels: usize,
    size: InputSize,
    seed: u64,
) -> Result<Tensor, CliError> {
    let too_big = || {
        CliError::new(format!(
            "a synthetic input of {batch}x{channels}x{size} has more than {MAX_SYNTHETIC_ELEMENTS} \
             elements"
        ))
        .hint("use a smaller --batch or --input-size")
    };
    let len = [batch, channels, size.height, size.width]
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .filter(|&n| n <= MAX_SYNTHETIC_ELEMENTS)
        .ok_or_else(too_big)?;
    // A separate stream: the weights use `seed` itself.
    let mut rng = SplitMix64::new(seed ^ 0x696E_7075_745F_696D);
    Tensor::new(
        [batch, channels, size.height, size.width],
        rng.uniform_vec(len, -1.0, 1.0),
    )
    .map_err(|e| CliError::new(format!("synthetic input: {e}")))
}

/// Serializes logits `[N, classes, 1, 1]` (or `[N, classes, …]`) as F32 `[N, classes]` under
/// [`OUTPUT_KEY`].
pub fn encode_logits(logits: &Tensor) -> Result<Vec<u8>, CliError> {
    let [n, classes, h, w] = logits.shape();
    let shape = vec![n, classes * h * w];
    let bytes: Vec<u8> = logits.data().iter().flat_map(|v| v.to_le_bytes()).collect();
    let view = TensorView::new(Dtype::F32, shape, &bytes)
        .map_err(|e| CliError::new(format!("cannot encode the logits: {e}")))?;
    safetensors::serialize([(OUTPUT_KEY, view)], None)
        .map_err(|e| CliError::new(format!("cannot encode the logits: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(entries: &[(&str, Dtype, Vec<usize>, Vec<u8>)]) -> Vec<u8> {
        let views: Vec<(&str, TensorView<'_>)> = entries
            .iter()
            .map(|(k, d, s, b)| (*k, TensorView::new(*d, s.clone(), b).unwrap()))
            .collect();
        safetensors::serialize(views, None).unwrap()
    }

    fn f32_bytes(v: &[f32]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    #[test]
    fn reads_f32_input() {
        let data: Vec<f32> = (0..12).map(|i| i as f32 * 0.5).collect();
        let bytes = file(&[
            ("input", Dtype::F32, vec![1, 3, 2, 2], f32_bytes(&data)),
            ("other", Dtype::I32, vec![1], vec![0; 4]),
        ]);
        let t = parse_input(&bytes, "x", 3).unwrap();
        assert_eq!(t.shape(), [1, 3, 2, 2]);
        assert_eq!(t.data(), data.as_slice());
    }

    #[test]
    fn reads_f16_and_bf16_input() {
        // 1.0, -2.0, 0.5, 65504 (max f16), smallest subnormal 2^-24, -0.
        let f16: [u16; 6] = [0x3c00, 0xc000, 0x3800, 0x7bff, 0x0001, 0x8000];
        let bytes: Vec<u8> = f16.iter().flat_map(|h| h.to_le_bytes()).collect();
        let t = parse_input(
            &file(&[("input", Dtype::F16, vec![2, 3, 1, 1], bytes)]),
            "x",
            3,
        );
        assert_eq!(
            t.unwrap().data(),
            [1.0, -2.0, 0.5, 65504.0, 2f32.powi(-24), -0.0]
        );
        let bf16: Vec<u8> = [1.0f32, -3.5, 0.15625]
            .iter()
            .flat_map(|v| ((v.to_bits() >> 16) as u16).to_le_bytes())
            .collect();
        let t = parse_input(
            &file(&[("input", Dtype::BF16, vec![1, 3, 1, 1], bf16)]),
            "x",
            3,
        );
        assert_eq!(t.unwrap().data(), [1.0, -3.5, 0.15625]);
    }

    #[test]
    fn typed_errors_name_the_problem() {
        let err = |bytes: &[u8]| parse_input(bytes, "in.safetensors", 3).unwrap_err();
        let wrong_key = err(&file(&[(
            "image",
            Dtype::F32,
            vec![1, 3, 1, 1],
            f32_bytes(&[0.0; 3]),
        )]));
        assert!(wrong_key.message().contains("no tensor named `input`"));
        assert!(wrong_key.message().contains("image"));
        let rank3 = err(&file(&[(
            "input",
            Dtype::F32,
            vec![3, 2, 2],
            f32_bytes(&[0.0; 12]),
        )]));
        assert!(rank3.message().contains("rank 3"), "{rank3}");
        let int = err(&file(&[(
            "input",
            Dtype::I32,
            vec![1, 3, 1, 1],
            vec![0; 12],
        )]));
        assert!(int.message().contains("I32"), "{int}");
        let gray = err(&file(&[(
            "input",
            Dtype::F32,
            vec![1, 1, 2, 2],
            f32_bytes(&[0.0; 4]),
        )]));
        assert!(gray.message().contains("1 channels"), "{gray}");
        let empty = err(&file(&[("input", Dtype::F32, vec![0, 3, 2, 2], vec![])]));
        assert!(empty.message().contains("at least 1"), "{empty}");
        let nan = err(&file(&[(
            "input",
            Dtype::F32,
            vec![1, 3, 1, 1],
            f32_bytes(&[0.0, f32::NAN, 1.0]),
        )]));
        assert!(nan.message().contains("element 1"), "{nan}");
        let garbage = err(b"not a safetensors file at all");
        assert!(
            garbage.message().contains("not a valid safetensors"),
            "{garbage}"
        );
        assert!(err(&[]).message().contains("not a valid safetensors"));
    }

    #[test]
    fn synthetic_input_is_seeded_and_bounded() {
        let a = synthetic_input(2, 3, InputSize::new(4, 5), 7).unwrap();
        assert_eq!(a.shape(), [2, 3, 4, 5]);
        assert_eq!(a, synthetic_input(2, 3, InputSize::new(4, 5), 7).unwrap());
        assert_ne!(a, synthetic_input(2, 3, InputSize::new(4, 5), 8).unwrap());
        assert!(a.data().iter().all(|v| (-1.0..1.0).contains(v)));
        assert!(synthetic_input(4096, 3, InputSize::square(1 << 20), 0).is_err());
        assert!(synthetic_input(usize::MAX, 3, InputSize::square(1 << 20), 0).is_err());
    }

    #[test]
    fn logits_round_trip() {
        let logits = Tensor::new([2, 3, 1, 1], vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap();
        let bytes = encode_logits(&logits).unwrap();
        let file = SafeTensors::deserialize(&bytes).unwrap();
        let view = file.tensor(OUTPUT_KEY).unwrap();
        assert_eq!(view.shape(), [2, 3]);
        assert_eq!(view.dtype(), Dtype::F32);
        assert_eq!(
            to_f32(OUTPUT_KEY, view.dtype(), view.data()).unwrap(),
            logits.data()
        );
    }
}
