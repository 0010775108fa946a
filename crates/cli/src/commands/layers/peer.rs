//! `reparam layers --peer ncnn`: the strongest CPU peer timed on the same layer, in the same
//! run, by the script `scripts/peers/ncnn_conv.py` (built into the binary and fed to Python on
//! stdin), so every "x ncnn" is measured side by side on the user's machine.
//!
//! The Python interpreter is `$REPARAM_PYTHON`, else `python3`; it needs the pip packages `ncnn`
//! and `numpy`. The script builds one 3x3 conv + bias + ReLU with ncnn (fp32, Winograd allowed,
//! fp16 storage off) at batch 1, and prints its median ms and effective GFLOP/s.

use crate::error::CliError;
use clap::ValueEnum;
use repvgg::sweep::Layer;
use std::io::Write;
use std::process::{Command, Stdio};

/// The environment variable naming the Python interpreter the peer runs in.
pub const ENV_PYTHON: &str = "REPARAM_PYTHON";

/// The peer script (see the module docs).
const NCNN_CONV: &str = include_str!("../../../../../scripts/peers/ncnn_conv.py");

/// A peer library to time beside the CPU kernels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Peer {
    /// Tencent's ncnn (pip package `ncnn`).
    Ncnn,
}

/// One peer timing of a layer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PeerTiming {
    /// Median ms of one run (batch 1).
    pub median_ms: f64,
    /// Effective GFLOP/s, the direct-convolution count over the median.
    pub gflops: f64,
}

/// The interpreter to run the peer in: `$REPARAM_PYTHON`, else `python3`.
pub fn python() -> String {
    std::env::var(ENV_PYTHON)
        .ok()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "python3".into())
}

/// Checks that `python` imports the peer's packages, before any layer is timed.
pub fn check(peer: Peer, python: &str) -> Result<(), CliError> {
    let Peer::Ncnn = peer;
    let status = Command::new(python)
        .args(["-c", "import ncnn, numpy"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    match status {
        Ok(s) if s.success() => Ok(()),
        _ => Err(CliError::new(format!(
            "--peer ncnn needs the Python packages ncnn and numpy, which `{python}` cannot import"
        ))
        .hint(format!(
            "pip install ncnn numpy (e.g. in a venv), and set {ENV_PYTHON} to that venv's python"
        ))),
    }
}

/// Times `layer` with the peer in `python` on `threads` threads (batch 1).
pub fn time_layer(
    peer: Peer,
    python: &str,
    layer: &Layer,
    threads: usize,
) -> Result<PeerTiming, CliError> {
    let Peer::Ncnn = peer;
    let s = &layer.spec;
    let (h, w) = layer.input_hw;
    let args = [
        threads,
        s.in_channels,
        s.out_channels,
        h,
        w,
        s.stride,
        s.groups,
    ]
    .map(|v| v.to_string());
    let what = format!("ncnn on layer {}", layer.first);
    let failed = |reason: String| {
        CliError::new(format!("{what}: {reason}"))
            .hint("run scripts/peers/ncnn_conv.py by hand with the same arguments to see why")
    };
    let mut child = Command::new(python)
        .arg("-")
        .args(&args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| failed(format!("cannot start Python: {e}")))?;
    child
        .stdin
        .take()
        .ok_or_else(|| failed("no stdin".into()))?
        .write_all(NCNN_CONV.as_bytes())
        .map_err(|e| failed(format!("cannot send the script: {e}")))?;
    let out = child
        .wait_with_output()
        .map_err(|e| failed(format!("{e}")))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let last = stderr.lines().last().unwrap_or("no message");
        return Err(failed(format!("the script failed: {last}")));
    }
    parse(&String::from_utf8_lossy(&out.stdout)).ok_or_else(|| {
        failed(format!(
            "unexpected output `{}`",
            String::from_utf8_lossy(&out.stdout).trim()
        ))
    })
}

/// `"<ms> <gflops>"`, both finite and positive.
fn parse(stdout: &str) -> Option<PeerTiming> {
    let mut fields = stdout.split_whitespace().map(str::parse::<f64>);
    let (Some(Ok(median_ms)), Some(Ok(gflops)), None) =
        (fields.next(), fields.next(), fields.next())
    else {
        return None;
    };
    (median_ms.is_finite() && median_ms > 0.0 && gflops.is_finite() && gflops > 0.0)
        .then_some(PeerTiming { median_ms, gflops })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_parses_only_as_two_positive_numbers() {
        assert_eq!(
            parse("0.7373 176.4\n"),
            Some(PeerTiming {
                median_ms: 0.7373,
                gflops: 176.4
            })
        );
        for bad in ["", "0.7", "0.7 1 2", "x 1", "0 5", "-1 5", "nan 3"] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_script_is_built_in() {
        assert!(NCNN_CONV.contains("import ncnn"));
        assert!(NCNN_CONV.contains("print(f\"{ms:.4f} {gflops:.1f}\")"));
    }

    #[test]
    fn a_python_that_cannot_import_ncnn_is_an_error_with_a_hint() {
        // `false` fails whatever it is asked, like a Python without ncnn; `true` succeeds.
        let e = check(Peer::Ncnn, "false").unwrap_err().to_string();
        assert!(e.contains("`false` cannot import"), "{e}");
        assert!(e.contains("hint: pip install ncnn numpy"), "{e}");
        assert!(check(Peer::Ncnn, "true").is_ok());
        assert!(check(Peer::Ncnn, "/no/such/python").is_err());
    }
}
