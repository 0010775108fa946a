//! Value parsers and enums shared by the commands; every parser returns a message clap prints
//! under the offending option.

use clap::ValueEnum;
use reparam_wgsl::GpuKernel;
use reparam_winograd::{Algorithm, Isa, Precision};
use repvgg::stats::{InputSize, MAX_INPUT_SIDE};
use repvgg::{Form, Naming};

/// Key naming scheme of a written checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum NamingArg {
    /// `DingXiaoH/RepVGG`: `stage1.0.rbr_reparam.weight`, `linear.weight`.
    Official,
    /// timm `byobnet`: `stages.0.0.reparam_conv.weight`, `head.fc.weight`.
    Timm,
}

impl From<NamingArg> for Naming {
    fn from(n: NamingArg) -> Self {
        match n {
            NamingArg::Official => Naming::Official,
            NamingArg::Timm => Naming::Timm,
        }
    }
}

/// A network form: `plain` (re-parameterized, one 3x3 conv + bias + ReLU per block) or
/// `multi-branch` (as trained: 3x3 conv + BN, 1x1 conv + BN and identity BN per block, summed).
pub fn parse_form(s: &str) -> Result<Form, String> {
    Form::parse(&s.to_ascii_lowercase())
}

/// A GPU conv kernel by [`GpuKernel::name`] (`auto` included).
pub fn parse_gpu_kernel(s: &str) -> Result<GpuKernel, String> {
    GpuKernel::parse(&s.trim().to_ascii_lowercase()).map_err(|_| {
        format!(
            "`{s}` is not a GPU kernel; use auto, naive, direct, gemm, gemm-wide, winograd-f23 or \
             winograd-f43"
        )
    })
}

/// `H` or `HxW` (also `H×W`, `H,W`), each side from 1 to [`MAX_INPUT_SIDE`].
pub fn parse_input_size(s: &str) -> Result<InputSize, String> {
    let lower = s.trim().to_ascii_lowercase();
    let parts: Vec<&str> = lower.split(['x', '×', ',']).collect();
    let side = |p: &str| -> Result<usize, String> {
        let v: usize = p
            .trim()
            .parse()
            .map_err(|_| format!("`{s}` is not a size; use H or HxW, e.g. 224 or 224x192"))?;
        if v == 0 || v > MAX_INPUT_SIDE {
            return Err(format!(
                "each side must be between 1 and {MAX_INPUT_SIDE} pixels, got {v}"
            ));
        }
        Ok(v)
    };
    match parts.as_slice() {
        [h] => Ok(InputSize::square(side(h)?)),
        [h, w] => Ok(InputSize::new(side(h)?, side(w)?)),
        _ => Err(format!(
            "`{s}` is not a size; use H or HxW, e.g. 224 or 224x192"
        )),
    }
}

/// A batch size from 1 to 4096.
pub fn parse_batch(s: &str) -> Result<usize, String> {
    const MAX: usize = 4096;
    match s.trim().parse::<usize>() {
        Ok(n) if (1..=MAX).contains(&n) => Ok(n),
        Ok(n) => Err(format!("the batch must be between 1 and {MAX}, got {n}")),
        Err(_) => Err(format!("`{s}` is not a whole number")),
    }
}

/// A batch-norm ε: finite and > 0.
pub fn parse_bn_eps(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(e) if e.is_finite() && e > 0.0 => Ok(e),
        Ok(e) => Err(format!(
            "ε must be a positive finite number (PyTorch's default is 1e-5), got {e}"
        )),
        Err(_) => Err(format!("`{s}` is not a number; e.g. 1e-5")),
    }
}

/// A thread count from 1 to 1024.
pub fn parse_threads(s: &str) -> Result<usize, String> {
    parse_count(s, "threads", 1024)
}

/// A repeat count from 1 to 100000.
pub fn parse_repeats(s: &str) -> Result<usize, String> {
    parse_count(s, "repeats", 100_000)
}

fn parse_count(s: &str, what: &str, max: usize) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        Ok(n) => Err(format!("{what} must be between 1 and {max}, got {n}")),
        Err(_) => Err(format!("`{s}` is not a whole number")),
    }
}

/// `auto`, `direct`, `f23`, `f43`, `f63` (or `winograd-f43`).
pub fn parse_algorithm(s: &str) -> Result<Algorithm, String> {
    Algorithm::parse(s).map_err(|e| e.to_string())
}

/// `f32`, `f16-weights` (also `f16`) or `bf16`.
pub fn parse_precision(s: &str) -> Result<Precision, String> {
    Precision::parse(s).map_err(|e| e.to_string())
}

/// `scalar`, `avx2`, `avx512`, `neon` (or `avx2fma`, `avx512f`). Availability is checked when the
/// command runs, so the error can list what this CPU has.
pub fn parse_isa(s: &str) -> Result<Isa, String> {
    Isa::parse(s).map_err(|_| format!("`{s}` is not an ISA; use scalar, avx2, avx512 or neon"))
}

/// A peak in GFLOP/s: finite and > 0.
pub fn parse_peak(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(x) if x.is_finite() && x > 0.0 => Ok(x),
        Ok(x) => Err(format!(
            "the peak must be a positive number of GFLOP/s, got {x}"
        )),
        Err(_) => Err(format!("`{s}` is not a number; e.g. 150")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_sizes() {
        assert_eq!(parse_input_size("224"), Ok(InputSize::square(224)));
        assert_eq!(parse_input_size("224x192"), Ok(InputSize::new(224, 192)));
        assert_eq!(parse_input_size(" 32X48 "), Ok(InputSize::new(32, 48)));
        assert_eq!(parse_input_size("7×9"), Ok(InputSize::new(7, 9)));
        assert_eq!(parse_input_size("1,1"), Ok(InputSize::new(1, 1)));
        for bad in ["", "0", "x", "224x", "-3", "1x2x3", "abc", "2000000", "3.5"] {
            let e = parse_input_size(bad).unwrap_err();
            assert!(!e.is_empty(), "{bad}");
        }
        assert!(parse_input_size("0x4").unwrap_err().contains("between 1"));
    }

    #[test]
    fn batches() {
        assert_eq!(parse_batch("1"), Ok(1));
        assert_eq!(parse_batch("4096"), Ok(4096));
        assert!(parse_batch("0").unwrap_err().contains("between"));
        assert!(parse_batch("4097").is_err());
        assert!(parse_batch("-1").unwrap_err().contains("whole number"));
    }

    #[test]
    fn bn_eps() {
        assert_eq!(parse_bn_eps("1e-5"), Ok(1e-5));
        assert_eq!(parse_bn_eps("0.001"), Ok(0.001));
        for bad in ["0", "-1e-5", "nan", "inf", "eps"] {
            assert!(parse_bn_eps(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn names() {
        assert_eq!(Naming::from(NamingArg::Timm), Naming::Timm);
    }

    #[test]
    fn forms_and_kernels() {
        assert_eq!(parse_form("multi-branch"), Ok(Form::MultiBranch));
        assert_eq!(parse_form("Plain"), Ok(Form::Plain));
        assert!(parse_form("fused").unwrap_err().contains("multi-branch"));
        assert_eq!(parse_gpu_kernel("gemm-wide"), Ok(GpuKernel::GemmWide));
        assert!(
            parse_gpu_kernel("fast")
                .unwrap_err()
                .contains("winograd-f43")
        );
    }
}
