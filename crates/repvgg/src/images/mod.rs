//! Images in: decoding (JPEG, PNG) and timm's evaluation preprocessing for RepVGG, plus the
//! ImageNet-1k class names the official checkpoints predict.
//!
//! [`Preprocess::timm_eval`] reproduces `timm.data.create_transform(**resolve_data_config({},
//! model=repvgg_a0))` on a PIL image opened with `Image.open(f).convert("RGB")`:
//!
//! 1. `Resize(256, bilinear, antialias)`: the shorter side to `⌊crop / 0.875⌋ = 256`, the longer
//!    to `⌊256 · long / short⌋` (torchvision's rule), resampled exactly as Pillow does
//!    ([`resample`]);
//! 2. `CenterCrop(224)`: offsets `round_half_even((side - 224) / 2)` (Python's `round`);
//! 3. `ToTensor` and `Normalize`: `x = (p / 255 - mean_c) / std_c` in f32, with the ImageNet
//!    `mean = (0.485, 0.456, 0.406)`, `std = (0.229, 0.224, 0.225)`.
//!
//! Grayscale images are replicated to three channels and an alpha channel is dropped, as PIL's
//! `convert("RGB")` does. PNG input therefore matches PIL + torchvision bit for bit; JPEG input
//! differs only by what the JPEG decoders differ by (see the tests for the measured bound).

pub mod classes;
pub mod resample;

use crate::error::ImageError;
use reparam_tensor::Tensor;
use resample::Pixels;
use std::path::Path;

/// ImageNet channel means (RGB) of timm's and torchvision's normalization.
pub const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
/// ImageNet channel standard deviations (RGB).
pub const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];

/// timm's default `crop_pct` for RepVGG: the resize target is `⌊crop / 0.875⌋`.
const CROP_FRACTION: f64 = 0.875;

/// Resize, center-crop and normalize parameters of an evaluation transform.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Preprocess {
    /// The shorter side after resizing (≥ `crop`).
    resize_shorter: usize,
    /// The side of the square center crop.
    crop: usize,
    /// Per-channel means (RGB).
    mean: [f32; 3],
    /// Per-channel standard deviations (RGB).
    std: [f32; 3],
}

impl Preprocess {
    /// timm's evaluation transform for RepVGG at 224 × 224 (resize 256, crop 224, ImageNet
    /// statistics).
    pub fn timm_eval() -> Self {
        Self::timm_eval_at(224).expect("224 is a valid crop")
    }

    /// timm's evaluation transform at another square input size: the shorter side resized to
    /// `⌊crop / 0.875⌋`, then a `crop × crop` center crop. `crop` must be ≥ 1.
    pub fn timm_eval_at(crop: usize) -> Result<Self, ImageError> {
        if crop == 0 {
            return Err(ImageError::BadCrop { crop });
        }
        Ok(Self {
            resize_shorter: (crop as f64 / CROP_FRACTION).floor() as usize,
            crop,
            mean: IMAGENET_MEAN,
            std: IMAGENET_STD,
        })
    }

    /// The side of the square the transform produces.
    pub fn crop(&self) -> usize {
        self.crop
    }

    /// The shorter side after resizing.
    pub fn resize_shorter(&self) -> usize {
        self.resize_shorter
    }

    /// The `[3, crop, crop]` tensor (flattened, CHW) of an RGB image.
    pub fn apply(&self, rgb: &Pixels) -> Vec<f32> {
        debug_assert_eq!(rgb.channels, 3);
        let (w, h) = (rgb.width, rgb.height);
        let (short, long) = if w <= h { (w, h) } else { (h, w) };
        let new_long = self.resize_shorter * long / short;
        let (new_w, new_h) = if w <= h {
            (self.resize_shorter, new_long)
        } else {
            (new_long, self.resize_shorter)
        };
        let resized = rgb.resize_bilinear(new_w, new_h);
        let top = center_offset(new_h, self.crop);
        let left = center_offset(new_w, self.crop);
        let mut out = vec![0.0f32; 3 * self.crop * self.crop];
        for (c, plane) in out.chunks_exact_mut(self.crop * self.crop).enumerate() {
            for (y, row) in plane.chunks_exact_mut(self.crop).enumerate() {
                let src = ((top + y) * new_w + left) * 3 + c;
                for (x, v) in row.iter_mut().enumerate() {
                    let p = f32::from(resized.data[src + 3 * x]);
                    *v = (p / 255.0 - self.mean[c]) / self.std[c];
                }
            }
        }
        out
    }

    /// Decodes one image file (JPEG or PNG, by content) and preprocesses it to `[1, 3, crop,
    /// crop]`.
    pub fn load(&self, path: &Path) -> Result<Tensor, ImageError> {
        self.load_batch(&[path])
    }

    /// Decodes and preprocesses several images into one `[N, 3, crop, crop]` batch, in order.
    pub fn load_batch<P: AsRef<Path>>(&self, paths: &[P]) -> Result<Tensor, ImageError> {
        if paths.is_empty() {
            return Err(ImageError::NoImages);
        }
        let mut data = Vec::with_capacity(paths.len() * 3 * self.crop * self.crop);
        for path in paths {
            data.extend(self.apply(&decode_rgb(path.as_ref())?));
        }
        Ok(Tensor::new([paths.len(), 3, self.crop, self.crop], data)?)
    }
}

/// `round_half_even((size - crop) / 2)`: torchvision's `CenterCrop` offset (`int(round(…))` in
/// Python 3 rounds halves to even). `size ≥ crop`.
fn center_offset(size: usize, crop: usize) -> usize {
    let excess = size - crop;
    let half = excess / 2;
    if excess % 2 == 1 && half % 2 == 1 {
        half + 1
    } else {
        half
    }
}

/// Reads and decodes an image file to 8-bit RGB (gray replicated, alpha dropped).
pub fn decode_rgb(path: &Path) -> Result<Pixels, ImageError> {
    let file = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| ImageError::Io {
        path: file.clone(),
        source,
    })?;
    let decoded = image::load_from_memory(&bytes).map_err(|e| ImageError::Decode {
        path: file.clone(),
        reason: e.to_string(),
    })?;
    let rgb = decoded.to_rgb8();
    let (width, height) = (rgb.width() as usize, rgb.height() as usize);
    if width == 0 || height == 0 {
        return Err(ImageError::Decode {
            path: file,
            reason: format!("the image is {width} x {height} pixels"),
        });
    }
    Ok(Pixels {
        width,
        height,
        channels: 3,
        data: rgb.into_raw(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crop_offsets_round_halves_to_even_like_python() {
        // (257 - 224) / 2 = 16.5 -> 16; (259 - 224) / 2 = 17.5 -> 18; (256 - 224) / 2 = 16.
        assert_eq!(center_offset(257, 224), 16);
        assert_eq!(center_offset(259, 224), 18);
        assert_eq!(center_offset(256, 224), 16);
        assert_eq!(center_offset(224, 224), 0);
        assert_eq!(center_offset(225, 224), 0);
    }

    #[test]
    fn resize_target_follows_crop_fraction() {
        assert_eq!(Preprocess::timm_eval().resize_shorter(), 256);
        assert_eq!(Preprocess::timm_eval_at(320).unwrap().resize_shorter(), 365);
        assert!(matches!(
            Preprocess::timm_eval_at(0),
            Err(ImageError::BadCrop { crop: 0 })
        ));
    }

    #[test]
    fn normalization_maps_the_mean_to_zero() {
        let pre = Preprocess::timm_eval_at(4).unwrap();
        // A constant 300 x 200 image of the (rounded) ImageNet mean colour.
        let mean = [124u8, 116, 104];
        let rgb = Pixels {
            width: 300,
            height: 200,
            channels: 3,
            data: mean.repeat(300 * 200),
        };
        let out = pre.apply(&rgb);
        assert_eq!(out.len(), 3 * 16);
        for (c, plane) in out.chunks(16).enumerate() {
            let expected = (f32::from(mean[c]) / 255.0 - IMAGENET_MEAN[c]) / IMAGENET_STD[c];
            assert!(plane.iter().all(|&v| v == expected), "{c}: {plane:?}");
            assert!(expected.abs() < 0.01);
        }
    }

    #[test]
    fn bad_files_are_typed_errors_naming_the_file() {
        let dir = std::env::temp_dir().join(format!("reparam-images-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let missing = dir.join("missing.png");
        let e = decode_rgb(&missing).unwrap_err();
        assert!(matches!(e, ImageError::Io { .. }), "{e}");
        assert!(e.to_string().contains("missing.png"), "{e}");
        let text = dir.join("notes.jpg");
        std::fs::write(&text, b"not an image at all").unwrap();
        let e = decode_rgb(&text).unwrap_err();
        assert!(matches!(e, ImageError::Decode { .. }), "{e}");
        assert!(e.to_string().contains("notes.jpg"), "{e}");
        assert!(matches!(
            Preprocess::timm_eval().load_batch::<&Path>(&[]),
            Err(ImageError::NoImages)
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
