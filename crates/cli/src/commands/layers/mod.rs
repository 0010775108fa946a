//! `reparam layers`: time every distinct conv layer of a deployed model, one layer at a time,
//! on the CPU kernels of `reparam-winograd` (`--backend cpu`, [`cpu`]) or the WGSL kernels of
//! `reparam-wgsl` (`--backend gpu`, [`gpu`]). The layers, their synthetic weights and the timing
//! come from `repvgg::sweep`; this module parses the arguments and renders the rows.
//!
//! Layers identical in (C_in, C_out, H, W, stride, groups) are timed once and counted: A0's
//! thirteen 192→192 blocks at 14x14 are one row with count 13, named after the first such block
//! (`stage3.1`). GFLOP/s always uses the direct-convolution count
//! `2·C_out·(C_in/g)·9·H_out·W_out·N / median`, whatever ran, so rows compare across algorithms
//! and backends (`docs/winograd.md#effective-gflops-and-the-fma-peak`).
//!
//! A forced Winograd algorithm or kernel cannot run a stride-2 layer: those rows **fall back to
//! direct** and are marked (`direct*`, `"fallback": true`), so one command times the whole model.

pub mod cpu;
pub mod gpu;
pub mod peer;

use crate::args::{
    parse_algorithm, parse_batch, parse_input_size, parse_isa, parse_peak, parse_precision,
    parse_repeats, parse_threads,
};
use crate::error::CliError;
use crate::source;
use clap::{Args, ValueEnum};
use gpu::{KernelChoice, parse_kernel_choice};
use reparam_winograd::{Algorithm, ConvError, Isa, Precision};
use repvgg::stats::InputSize;
use repvgg::sweep::{self, Layer};
use serde::Serialize;
use std::io::Write;

/// Arguments of `reparam layers`.
#[derive(Debug, Args)]
#[command(
    after_help = "One row per distinct 3x3 conv layer of the deployed (re-parameterized) \
    model: conv + bias + ReLU, synthetic seeded weights and input. Identical layers are timed \
    once and counted. GFLOP/s is the direct-convolution count 2·Cout·(Cin/g)·9·Hout·Wout·N over \
    the median time, whatever ran. A forced Winograd algorithm or kernel runs stride-2 layers \
    with direct instead, marked `direct*`. D2se's squeeze-excitation is not part of the timed \
    conv.\n\n\
    CPU (--backend cpu): median wall time after a warm-up, in a rayon pool of --threads; % peak \
    divides GFLOP/s by --peak-gflops. GPU (--backend gpu): one submission per run after one \
    warm-up run, device time from timestamp queries where the adapter has them, else wall time; \
    `whole network convs` sums count x median per kernel choice.\n\n\
    Examples:\n  reparam layers --model a0 --threads 1\n  \
    reparam layers --model b0 --threads 2 --algorithm f43 --isa avx2\n  \
    reparam layers --model a0 --batch 8 --json\n  \
    reparam layers --model b0 --threads 2 --beside-batch 8\n  \
    reparam layers --backend gpu --model b0 --batch 32 --kernel all\n  \
    reparam layers --backend gpu --autotune --json"
)]
pub struct LayersArgs {
    /// Which kernels to time.
    #[arg(long, value_enum, default_value_t = LayersBackend::Cpu)]
    pub backend: LayersBackend,
    /// Official model: A0, A1, A2, B0, B1, B1g2, B1g4, B2, B2g2, B2g4, B3, B3g2, B3g4, D2se
    /// (case-insensitive, `RepVGG-` prefix optional).
    #[arg(long, value_name = "NAME", default_value = "a0")]
    pub model: String,
    /// Images per run.
    #[arg(long, value_name = "N", default_value = "1", value_parser = parse_batch)]
    pub batch: usize,
    /// Input size of the network, H or HxW.
    #[arg(long, value_name = "H[xW]", default_value = "224", value_parser = parse_input_size)]
    pub input_size: InputSize,
    /// Timed runs per layer (after a warm-up); the median is reported.
    #[arg(long, value_name = "R", default_value = "20", value_parser = parse_repeats)]
    pub repeats: usize,
    /// Seed of the synthetic weights and input.
    #[arg(long, value_name = "S", default_value_t = 0)]
    pub seed: u64,
    /// Print a JSON array of rows instead of the table.
    #[arg(long)]
    pub json: bool,
    /// CPU: threads, the size of the rayon pool every plan runs in [default: 1].
    #[arg(long, value_name = "N", value_parser = parse_threads)]
    pub threads: Option<usize>,
    /// CPU: algorithm, auto (the kernel crate's measured thresholds), direct, f23, f43 or f63
    /// [default: auto].
    #[arg(long, value_name = "ALG", value_parser = parse_algorithm)]
    pub algorithm: Option<Algorithm>,
    /// CPU: instruction set, scalar, avx2, avx512 or neon [default: $REPARAM_ISA, else the best
    /// this CPU has]. Fails if the CPU lacks it.
    #[arg(long, value_name = "ISA", value_parser = parse_isa)]
    pub isa: Option<Isa>,
    /// CPU: precision of the Winograd layers' transform-domain GEMM: f32, f16-weights (half the
    /// weight bytes, widened to f32 as loaded) or bf16 (weights and transformed inputs in bf16,
    /// `vdpbf16ps`, on CPUs with AVX512-BF16); direct layers stay f32 [default: f32].
    #[arg(long, value_name = "P", value_parser = parse_precision)]
    pub precision: Option<Precision>,
    /// CPU: FMA peak for the `% peak` column, in GFLOP/s for all threads together [default:
    /// threads × 150, the AVX-512 peak per core of the development machine].
    #[arg(long, value_name = "X", value_parser = parse_peak)]
    pub peak_gflops: Option<f64>,
    /// CPU: tensor layout of the timed runs, `blocked` (NCHWc, as inside a network: the first
    /// layer reads the NCHW image and writes NCHWc) or `nchw` (the NCHW entry point, converting
    /// the input to NCHWc and the output back on every run) [default: blocked].
    #[arg(long, value_name = "LAYOUT", value_parser = ["blocked", "nchw"])]
    pub layout: Option<String>,
    /// CPU: also time each layer with a peer library in the same run, side by side (`ncnn`:
    /// the pip package, through `scripts/peers/ncnn_conv.py`; batch 1).
    #[arg(long, value_enum, value_name = "PEER")]
    pub peer: Option<peer::Peer>,
    /// CPU: also time every layer at this batch in the same run and print its GFLOP/s beside
    /// the --batch figure, with their ratio (e.g. 8: how far weight reuse across images lifts
    /// the small 14x14 and 7x7 layers).
    #[arg(long, value_name = "N", value_parser = parse_batch)]
    pub beside_batch: Option<usize>,
    /// GPU: kernel, auto (the crate's static choice per layer, or measured with --autotune),
    /// naive, direct, gemm, gemm-wide, winograd-f23, winograd-f43, or all (every kernel that
    /// supports each layer) [default: auto].
    #[arg(long, value_name = "KERNEL", value_parser = parse_kernel_choice)]
    pub kernel: Option<KernelChoice>,
    /// GPU: with --kernel auto, time every candidate kernel on the layer's real input shape when
    /// the plan is built and keep the fastest.
    #[arg(long)]
    pub autotune: bool,
}

/// The kernels `reparam layers` times.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LayersBackend {
    /// reparam-winograd's SIMD kernels.
    Cpu,
    /// reparam-wgsl's WGSL kernels on the GPU adapter of the environment.
    Gpu,
}

impl LayersArgs {
    /// The options given that the other backend owns, by flag name.
    fn foreign_options(&self) -> Vec<&'static str> {
        let given = |present: bool, flag| present.then_some(flag);
        match self.backend {
            LayersBackend::Cpu => [
                given(self.kernel.is_some(), "--kernel"),
                given(self.autotune, "--autotune"),
            ]
            .into_iter()
            .flatten()
            .collect(),
            LayersBackend::Gpu => [
                given(self.threads.is_some(), "--threads"),
                given(self.algorithm.is_some(), "--algorithm"),
                given(self.isa.is_some(), "--isa"),
                given(self.precision.is_some(), "--precision"),
                given(self.peak_gflops.is_some(), "--peak-gflops"),
                given(self.layout.is_some(), "--layout"),
                given(self.peer.is_some(), "--peer"),
                given(self.beside_batch.is_some(), "--beside-batch"),
            ]
            .into_iter()
            .flatten()
            .collect(),
        }
    }
}

/// Runs `reparam layers`.
pub fn layers(args: &LayersArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let (config, layers) = model_layers(args)?;
    match args.backend {
        LayersBackend::Cpu => cpu::layers(&config.name, &layers, args, out),
        LayersBackend::Gpu => gpu::layers(&config.name, &layers, args, out),
    }
}

/// The model and its distinct layers, or a usage error (before any kernel runs).
fn model_layers(args: &LayersArgs) -> Result<(repvgg::Config, Vec<Layer>), CliError> {
    let foreign = args.foreign_options();
    if !foreign.is_empty() {
        let backend = match args.backend {
            LayersBackend::Cpu => "cpu",
            LayersBackend::Gpu => "gpu",
        };
        return Err(CliError::new(format!(
            "{} does not apply to --backend {backend}",
            foreign.join(", ")
        ))
        .hint(
            "--threads, --algorithm, --isa, --peak-gflops, --layout, --peer and --beside-batch \
             are for --backend cpu; --kernel and --autotune for --backend gpu",
        ));
    }
    if args.peer.is_some() && args.batch != 1 {
        return Err(CliError::new("--peer times batch 1 only")
            .hint("drop --batch, or drop --peer to time larger batches"));
    }
    let config = source::official(&args.model)?;
    let layers = sweep::distinct_layers(&config, args.input_size).map_err(|e| {
        CliError::new(format!("cannot size `{}`: {e}", config.name))
            .hint("use --input-size with sides between 1 and 1048576 pixels")
    })?;
    Ok((config, layers))
}

/// The geometry of a timed layer, shared by the rows of both backends (flattened into their
/// JSON objects).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LayerShape {
    /// Official name of the first block with this shape.
    pub layer: String,
    /// Input channels.
    pub cin: usize,
    /// Output channels.
    pub cout: usize,
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Output height.
    pub out_h: usize,
    /// Output width.
    pub out_w: usize,
    /// Stride.
    pub stride: usize,
    /// Groups.
    pub groups: usize,
    /// Blocks of the model with this layer.
    pub count: usize,
    /// Images per run.
    pub batch: usize,
}

impl LayerShape {
    /// The shape of `layer` run on `batch` images.
    pub fn new(layer: &Layer, batch: usize) -> Self {
        let spec = &layer.spec;
        Self {
            layer: layer.first.clone(),
            cin: spec.in_channels,
            cout: spec.out_channels,
            h: layer.input_hw.0,
            w: layer.input_hw.1,
            out_h: layer.output_hw.0,
            out_w: layer.output_hw.1,
            stride: spec.stride,
            groups: spec.groups,
            count: layer.count,
            batch,
        }
    }

    /// `48->96 56x56 s2 g1`.
    pub fn label(&self) -> String {
        format!(
            "{}->{} {}x{} s{} g{}",
            self.cin, self.cout, self.h, self.w, self.stride, self.groups
        )
    }
}

/// The header lines both backends share: model and input.
fn write_model_header(out: &mut dyn Write, model: &str, args: &LayersArgs) -> Result<(), CliError> {
    let (h, w) = (args.input_size.height, args.input_size.width);
    writeln!(
        out,
        "model:     {model}, deployed (one 3x3 conv + bias + ReLU per block)"
    )?;
    writeln!(
        out,
        "input:     [{}, 3, {h}, {w}], synthetic weights and input (seed {})",
        args.batch, args.seed
    )?;
    Ok(())
}

/// A failed layer as a CLI error with what to do about it.
fn sweep_error(layer: &Layer, e: &repvgg::Error) -> CliError {
    let what = format!("layer {}", layer.first);
    match e {
        repvgg::Error::Kernel(ConvError::IsaUnavailable { .. } | ConvError::UnknownIsa { .. }) => {
            CliError::new(format!("{what}: {e}"))
                .hint("pick an ISA this CPU has with --isa, or unset REPARAM_ISA")
        }
        repvgg::Error::Gpu(e) => CliError::from_gpu(&what, e),
        repvgg::Error::NonFiniteOutput { .. } => CliError::new(e.to_string())
            .hint("this is a bug in the kernels; please report the command"),
        _ => CliError::new(format!("{what}: {e}")).hint(
            "the layer comes from an official configuration, so this is a bug; please report \
             the command",
        ),
    }
}

/// The rows as a pretty-printed JSON array.
fn to_json<T: Serialize>(rows: &[T]) -> String {
    serde_json::to_string_pretty(rows).expect("rows serialize: plain numbers and strings")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Cli;
    use clap::Parser;

    /// `reparam layers ARGS`, parsed.
    pub(super) fn parse(args: &[&str]) -> Result<LayersArgs, clap::Error> {
        let argv = ["reparam", "layers"].iter().chain(args);
        match Cli::try_parse_from(argv)?.command {
            crate::Command::Layers(a) => Ok(a),
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn defaults() {
        let a = parse(&[]).unwrap();
        assert_eq!((a.backend, a.model.as_str()), (LayersBackend::Cpu, "a0"));
        assert_eq!((a.batch, a.repeats, a.seed, a.json), (1, 20, 0, false));
        assert_eq!(a.input_size, InputSize::square(224));
        assert_eq!((a.threads, a.algorithm, a.isa), (None, None, None));
        assert_eq!((a.peak_gflops, a.layout.as_deref()), (None, None));
        assert_eq!((a.kernel, a.autotune), (None, false));
    }

    #[test]
    fn options_of_the_other_backend_are_refused() {
        let e = model_layers(&parse(&["--kernel", "gemm"]).unwrap()).unwrap_err();
        assert!(
            e.to_string()
                .contains("--kernel does not apply to --backend cpu"),
            "{e}"
        );
        let args = parse(&["--backend", "gpu", "--threads", "2", "--isa", "scalar"]).unwrap();
        let e = model_layers(&args).unwrap_err().to_string();
        assert!(
            e.contains("--threads, --isa does not apply to --backend gpu"),
            "{e}"
        );
        let args = parse(&["--backend", "gpu", "--precision", "f16"]).unwrap();
        let e = model_layers(&args).unwrap_err().to_string();
        assert!(e.contains("--precision does not apply"), "{e}");
        assert!(e.contains("hint: "), "{e}");
    }

    #[test]
    fn the_peer_is_for_the_cpu_at_batch_1() {
        let a = parse(&["--peer", "ncnn"]).unwrap();
        assert_eq!(a.peer, Some(peer::Peer::Ncnn));
        assert!(parse(&["--peer", "mnn"]).is_err());
        let e = model_layers(&parse(&["--peer", "ncnn", "--batch", "8"]).unwrap()).unwrap_err();
        assert!(e.to_string().contains("--peer times batch 1 only"), "{e}");
        let args = parse(&["--backend", "gpu", "--peer", "ncnn"]).unwrap();
        let e = model_layers(&args).unwrap_err().to_string();
        assert!(e.contains("--peer does not apply to --backend gpu"), "{e}");
    }

    #[test]
    fn a0_layers_are_grouped_and_counted() {
        let (_, layers) = model_layers(&parse(&[]).unwrap()).unwrap();
        let summary: Vec<(&str, usize, usize, usize, usize, usize)> = layers
            .iter()
            .map(|l| {
                let s = &l.spec;
                let shape = LayerShape::new(l, 1);
                assert_eq!(shape.count, l.count);
                (
                    l.first.as_str(),
                    s.in_channels,
                    s.out_channels,
                    l.input_hw.0,
                    s.stride,
                    l.count,
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("stage0", 3, 48, 224, 2, 1),
                ("stage1.0", 48, 48, 112, 2, 1),
                ("stage1.1", 48, 48, 56, 1, 1),
                ("stage2.0", 48, 96, 56, 2, 1),
                ("stage2.1", 96, 96, 28, 1, 3),
                ("stage3.0", 96, 192, 28, 2, 1),
                ("stage3.1", 192, 192, 14, 1, 13),
                ("stage4.0", 192, 1280, 14, 2, 1),
            ]
        );
        assert_eq!(layers[7].output_hw, (7, 7));
        assert_eq!(LayerShape::new(&layers[3], 2).label(), "48->96 56x56 s2 g1");
    }

    #[test]
    fn grouped_convs_are_distinct_layers() {
        // B1g2 alternates groups 1 and 2 inside a stage: same channels and size, different convs.
        let (_, layers) = model_layers(&parse(&["--model", "b1g2"]).unwrap()).unwrap();
        let stage3: Vec<(usize, usize)> = layers
            .iter()
            .filter(|l| l.first.starts_with("stage3.") && l.spec.stride == 1)
            .map(|l| (l.spec.groups, l.count))
            .collect();
        assert_eq!(stage3.len(), 2, "{stage3:?}");
        assert_eq!(stage3.iter().map(|&(_, c)| c).sum::<usize>(), 15);
    }

    #[test]
    fn unknown_model_is_an_error() {
        let e = layers(&parse(&["--model", "vgg16"]).unwrap(), &mut Vec::new()).unwrap_err();
        assert!(e.to_string().contains("unknown model `vgg16`"), "{e}");
    }
}
