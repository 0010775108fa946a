//! timm's evaluation preprocessing against PIL + torchvision on the same files.
//!
//! `tests/fixtures/images` (made by `tools/make_image_fixtures.py`) holds four synthetic images
//! (an RGB landscape downscaled, a grayscale portrait upscaled, an RGBA square, a 4:2:0 JPEG) and
//! the `[3, 224, 224]` tensors timm's `create_transform` made of each after PIL decoded it.
//!
//! # Tolerances
//! PNG decoding is lossless and the resize, crop and normalization reproduce Pillow's integer
//! arithmetic and torchvision's f32 operations step for step, so PNG tensors must be **equal**.
//! A JPEG decodes to slightly different pixels in different decoders (IDCT and chroma
//! upsampling are not bit-specified): the `image` crate's decoder against Pillow's libjpeg-turbo
//! may differ by a few 8-bit levels per pixel. One level is `1 / (255 · std) ≤ 0.0175` after
//! normalization, so [`JPEG_MAX_LEVELS`] bounds the worst element and [`JPEG_MEAN_LEVELS`] the
//! mean absolute difference, both in levels (measured on `photo.jpg`: max 3 levels, mean 0.26;
//! printed with `--nocapture`).

use crate::fixtures::read_tensors;
use repvgg::images::{IMAGENET_STD, Preprocess};
use std::path::PathBuf;

/// Largest per-element JPEG difference allowed, in 8-bit levels.
const JPEG_MAX_LEVELS: f32 = 4.0;
/// Largest mean absolute JPEG difference allowed, in 8-bit levels.
const JPEG_MEAN_LEVELS: f32 = 0.4;

fn image_path(name: &str) -> PathBuf {
    crate::fixtures::fixture_path("images", name)
}

/// Per-element differences in 8-bit levels (the channel's std undone): max and mean.
fn level_differences(ours: &[f32], theirs: &[f32]) -> (f32, f32) {
    let plane = ours.len() / 3;
    let mut max = 0.0f32;
    let mut sum = 0.0f64;
    for (i, (a, b)) in ours.iter().zip(theirs).enumerate() {
        let levels = (a - b).abs() * IMAGENET_STD[i / plane] * 255.0;
        max = max.max(levels);
        sum += f64::from(levels);
    }
    (max, (sum / ours.len() as f64) as f32)
}

#[test]
fn png_preprocessing_equals_pil_and_torchvision() {
    let expected = read_tensors("images", "expected.safetensors");
    let pre = Preprocess::timm_eval();
    for name in ["landscape.png", "portrait_gray.png", "alpha.png"] {
        let ours = pre.load(&image_path(name)).unwrap();
        assert_eq!(ours.shape(), [1, 3, 224, 224], "{name}");
        let theirs = expected[name].data();
        let differing = ours
            .data()
            .iter()
            .zip(theirs)
            .filter(|(a, b)| a != b)
            .count();
        let (max, _) = level_differences(ours.data(), theirs);
        assert_eq!(
            differing, 0,
            "{name}: {differing} elements differ, worst by {max} levels"
        );
    }
}

#[test]
fn jpeg_preprocessing_is_within_the_decoder_bound() {
    let expected = read_tensors("images", "expected.safetensors");
    let ours = Preprocess::timm_eval()
        .load(&image_path("photo.jpg"))
        .unwrap();
    let (max, mean) = level_differences(ours.data(), expected["photo.jpg"].data());
    println!("photo.jpg vs PIL: max {max:.3} levels, mean {mean:.4} levels");
    assert!(max <= JPEG_MAX_LEVELS, "max {max} levels");
    assert!(mean <= JPEG_MEAN_LEVELS, "mean {mean} levels");
}

#[test]
fn several_images_form_one_batch_in_order() {
    let pre = Preprocess::timm_eval();
    let names = ["alpha.png", "landscape.png"];
    let batch = pre.load_batch(&names.map(image_path)).expect("two images");
    assert_eq!(batch.shape(), [2, 3, 224, 224]);
    let plane = 3 * 224 * 224;
    for (i, name) in names.iter().enumerate() {
        let single = pre.load(&image_path(name)).unwrap();
        assert_eq!(
            &batch.data()[i * plane..(i + 1) * plane],
            single.data(),
            "{name}"
        );
    }
}

#[test]
fn truncated_image_is_an_error_naming_the_file() {
    let bytes = std::fs::read(image_path("landscape.png")).unwrap();
    let dir = std::env::temp_dir().join(format!("reparam-truncated-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (name, keep) in [("cut.png", bytes.len() / 2), ("header.png", 20)] {
        let path = dir.join(name);
        std::fs::write(&path, &bytes[..keep]).unwrap();
        let e = Preprocess::timm_eval().load(&path).unwrap_err();
        assert!(e.to_string().contains(name), "{e}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
