//! `reparam layers --backend cpu`: rows of `repvgg::sweep::cpu` (median ms, effective GFLOP/s,
//! % of the FMA peak per layer) as a table or JSON.

use super::peer::{self, Peer};
use super::{LayerShape, LayersArgs, sweep_error, to_json, write_model_header};
use crate::error::CliError;
use crate::table::{Align, Table};
use reparam_winograd::{Algorithm, ENV_ISA, Isa};
use repvgg::sweep::Layer;
use repvgg::sweep::cpu::{CpuSweep, time_layer};
use serde::Serialize;
use std::io::Write;
use std::time::Duration;

/// fp32 FMA peak of one core of the development machine, in GFLOP/s, with AVX-512F (the default
/// of `--peak-gflops` is `--threads` × this).
///
/// Machine: the project's 2-vCPU KVM guest, `Intel(R) Xeon(R) Processor` (family 6 model 207,
/// Emerald Rapids), AVX-512F with two 512-bit FMA ports, ~2.35 GHz under load. Measured with
///
/// ```text
/// gcc -O2 -mavx512f -mfma -pthread benches/fma_peak.c -o /tmp/fma_peak && /tmp/fma_peak
/// ```
///
/// (12 independent FMA chains per thread, best of 5). Best runs on a quiet machine: 1 thread
/// 147–158 GFLOP/s with zmm (64 flop/cycle), 2 threads 288–300; with ymm (AVX2+FMA) half that,
/// 73–77 and 134–141, so an `avx2fma` row can reach at most ~50 % of this peak here. This is
/// *not* a 2-vCPU AMD Zen 4 VM (117 GFLOP/s per core, AVX2 = AVX-512 there). On any other
/// machine pass `--peak-gflops` with that machine's number.
pub const PEAK_GFLOPS_PER_CORE: f64 = 150.0;

/// Runs before the timed ones: at least one, and until this much time has passed.
const WARM_UP: Duration = Duration::from_millis(50);

/// One timed layer: a row of the table and an object of the JSON array.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    /// The layer and batch.
    #[serde(flatten)]
    pub geometry: LayerShape,
    /// Rayon pool size.
    pub threads: usize,
    /// `blocked` (NCHWc in and out) or `nchw` (with layout conversions).
    pub layout: &'static str,
    /// The algorithm asked for (`auto`, `direct`, `winograd-f43`, ...).
    pub requested: &'static str,
    /// The algorithm the plan ran (never `auto`).
    pub algorithm: &'static str,
    /// The micro-kernel (`direct-avx512f-10x2`: algorithm, ISA, register block).
    pub kernel: String,
    /// True when a forced Winograd algorithm could not run this layer and direct ran instead.
    pub fallback: bool,
    /// The plan's ISA.
    pub isa: &'static str,
    /// Direct-convolution flops of one run: `2·Cout·(Cin/g)·9·Hout·Wout·N`.
    pub flops: u64,
    /// Median wall-clock time of one run, in milliseconds.
    pub median_ms: f64,
    /// `flops / median`, in GFLOP/s.
    pub gflops: f64,
    /// `gflops` as a percentage of the peak.
    pub peak_pct: f64,
    /// With `--peer`: the peer's median ms on the same layer, timed right after ours.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer_ms: Option<f64>,
    /// With `--peer`: the peer's effective GFLOP/s.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer_gflops: Option<f64>,
    /// With `--peer`: `peer_ms / median_ms` (above 1: ours is faster).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vs_peer: Option<f64>,
    /// With `--beside-batch`: the same layer timed at that batch, right after.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub beside: Option<Beside>,
}

/// A layer timed again at `--beside-batch` images.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Beside {
    /// Images per run.
    pub batch: usize,
    /// Median wall-clock time of one run, in milliseconds.
    pub median_ms: f64,
    /// Effective GFLOP/s at that batch (its flops: `batch / --batch` times the row's).
    pub gflops: f64,
    /// `gflops` over the row's GFLOP/s (above 1: the larger batch runs faster per image).
    pub ratio: f64,
}

/// What every row shares.
#[derive(Debug, Clone)]
struct Setup {
    sweep: CpuSweep,
    threads: usize,
    peak_gflops: f64,
    seed: u64,
    /// The peer and the Python it runs in.
    peer: Option<(Peer, String)>,
    /// `--beside-batch`.
    beside_batch: Option<usize>,
}

/// Times `layers` in a pool of `--threads` and writes the table or JSON.
pub fn layers(
    model: &str,
    layers: &[Layer],
    args: &LayersArgs,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let threads = args.threads.unwrap_or(1);
    let setup = Setup {
        sweep: CpuSweep {
            algorithm: args.algorithm.unwrap_or(Algorithm::Auto),
            isa: resolve_isa(args.isa)?,
            precision: args.precision.unwrap_or_default(),
            batch: args.batch,
            blocked: args.layout.as_deref() != Some("nchw"),
            repeats: args.repeats,
            warm_up: WARM_UP,
        },
        threads,
        peak_gflops: args
            .peak_gflops
            .unwrap_or(threads as f64 * PEAK_GFLOPS_PER_CORE),
        seed: args.seed,
        peer: match args.peer {
            Some(p) => {
                let python = peer::python();
                peer::check(p, &python)?;
                Some((p, python))
            }
            None => None,
        },
        beside_batch: args.beside_batch,
    };
    if !args.json {
        write_model_header(out, model, args)?;
        write_header(out, args, &setup)?;
        out.flush()?;
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| {
            CliError::new(format!("cannot start {threads} threads: {e}"))
                .hint("use fewer --threads")
        })?;
    let rows = pool.install(|| {
        layers
            .iter()
            .enumerate()
            .map(|(i, layer)| row(layer, &setup, setup.seed.wrapping_add(i as u64)))
            .collect::<Result<Vec<Row>, CliError>>()
    })?;
    if args.json {
        writeln!(out, "{}", to_json(&rows))?;
    } else {
        out.write_all(render(&rows, &setup).as_bytes())?;
    }
    Ok(())
}

/// Times one layer and makes its row.
fn row(layer: &Layer, setup: &Setup, seed: u64) -> Result<Row, CliError> {
    let t = time_layer(layer, &setup.sweep, seed).map_err(|e| sweep_error(layer, &e))?;
    let gflops = t.gflops();
    let beside = match setup.beside_batch {
        Some(batch) => {
            let sweep = CpuSweep {
                batch,
                ..setup.sweep
            };
            let b = time_layer(layer, &sweep, seed).map_err(|e| sweep_error(layer, &e))?;
            Some(Beside {
                batch,
                median_ms: b.median_ms,
                gflops: b.gflops(),
                ratio: b.gflops() / gflops,
            })
        }
        None => None,
    };
    let theirs = match &setup.peer {
        Some((p, python)) => Some(peer::time_layer(*p, python, layer, setup.threads)?),
        None => None,
    };
    Ok(Row {
        geometry: LayerShape::new(layer, setup.sweep.batch),
        threads: setup.threads,
        layout: if setup.sweep.blocked {
            "blocked"
        } else {
            "nchw"
        },
        requested: setup.sweep.algorithm.name(),
        algorithm: t.algorithm.name(),
        kernel: t.kernel,
        fallback: t.fallback,
        isa: t.isa.name(),
        flops: t.flops,
        median_ms: t.median_ms,
        gflops,
        peak_pct: 100.0 * gflops / setup.peak_gflops,
        peer_ms: theirs.map(|p| p.median_ms),
        peer_gflops: theirs.map(|p| p.gflops),
        vs_peer: theirs.map(|p| p.median_ms / t.median_ms),
        beside,
    })
}

/// The ISA every plan uses: `--isa`, else `REPARAM_ISA`, else the best available. A forced ISA
/// the CPU lacks is an error, never a silent fallback.
fn resolve_isa(forced: Option<Isa>) -> Result<Isa, CliError> {
    let available = || {
        Isa::available()
            .iter()
            .map(|i| i.name())
            .collect::<Vec<_>>()
            .join(", ")
    };
    match forced {
        Some(isa) => isa.require().map_err(|_| {
            CliError::new(format!("--isa {isa}: this CPU does not support {isa}"))
                .hint(format!("this CPU has: {}; pick one of those", available()))
        }),
        None => Isa::from_env().map_err(|e| {
            CliError::new(e.to_string()).hint(format!(
                "unset {ENV_ISA}, or set it to one this CPU has: {}",
                available()
            ))
        }),
    }
}

/// The kernel, timing and peak lines of the header.
fn write_header(out: &mut dyn Write, args: &LayersArgs, setup: &Setup) -> Result<(), CliError> {
    let algorithm = match setup.sweep.algorithm {
        Algorithm::Auto => "auto (reparam_winograd::auto thresholds at each layer's size)",
        a => a.name(),
    };
    let threads = match setup.threads {
        1 => "1 thread".to_string(),
        t => format!("{t} threads"),
    };
    let peak = match args.peak_gflops {
        Some(p) => format!("{p} GFLOP/s (--peak-gflops)"),
        None => format!(
            "{} GFLOP/s = {threads} x {PEAK_GFLOPS_PER_CORE} (AVX-512 FMA peak per core of the \
             development machine; --peak-gflops overrides)",
            setup.peak_gflops
        ),
    };
    writeln!(
        out,
        "kernels:   reparam-winograd, ISA {}, algorithm {algorithm}, {} Winograd weights, {threads} (rayon pool)",
        setup.sweep.isa, setup.sweep.precision
    )?;
    let layout = if setup.sweep.blocked {
        "blocked NCHWc (no conversions, as inside a network: the first layer reads the NCHW \
         image and writes NCHWc, the others NCHWc in and out)"
    } else {
        "NCHW (input and output converted every run)"
    };
    writeln!(
        out,
        "timing:    median of {} runs after a warm-up, {layout} layout; GFLOP/s = \
         2·Cout·(Cin/g)·9·Hout·Wout·N / median",
        setup.sweep.repeats
    )?;
    writeln!(out, "peak:      {peak}")?;
    if let Some(n) = setup.beside_batch {
        writeln!(
            out,
            "beside:    each layer timed again at batch {n} right after (same plan options and \
             seed); b{n} / b{} = its GFLOP/s over the batch-{} GFLOP/s",
            setup.sweep.batch, setup.sweep.batch
        )?;
    }
    if let Some((_, python)) = &setup.peer {
        writeln!(
            out,
            "peer:      ncnn ({python}, scripts/peers/ncnn_conv.py): each layer right after ours, \
             same threads, batch 1; x ncnn = ncnn ms / our ms"
        )?;
    }
    writeln!(out)?;
    Ok(())
}

/// The table, the model total and the fallback note.
fn render(rows: &[Row], setup: &Setup) -> String {
    let mut columns = vec![
        ("layer", Align::Left),
        ("shape", Align::Left),
        ("count", Align::Right),
        ("kernel", Align::Left),
        ("median ms", Align::Right),
        ("GFLOP/s", Align::Right),
        ("% peak", Align::Right),
    ];
    let peer = setup.peer.is_some();
    if peer {
        columns.extend([
            ("ncnn ms", Align::Right),
            ("ncnn GFLOP/s", Align::Right),
            ("x ncnn", Align::Right),
        ]);
    }
    let beside_names = setup.beside_batch.map(|n| {
        (
            format!("b{n} ms"),
            format!("b{n} GFLOP/s"),
            format!("b{n} / b{}", setup.sweep.batch),
        )
    });
    if let Some((ms, gflops, ratio)) = &beside_names {
        columns.extend([
            (ms.as_str(), Align::Right),
            (gflops.as_str(), Align::Right),
            (ratio.as_str(), Align::Right),
        ]);
    }
    let mut table = Table::new(&columns);
    let cell = |v: Option<f64>, digits: usize| v.map_or(String::new(), |v| format!("{v:.digits$}"));
    for row in rows {
        let star = if row.fallback { "*" } else { "" };
        let mut cells = vec![
            row.geometry.layer.clone(),
            row.geometry.label(),
            row.geometry.count.to_string(),
            format!("{}{star}", row.kernel),
            format!("{:.3}", row.median_ms),
            format!("{:.1}", row.gflops),
            format!("{:.0}", row.peak_pct),
        ];
        if peer {
            cells.extend([
                cell(row.peer_ms, 3),
                cell(row.peer_gflops, 1),
                cell(row.vs_peer, 2),
            ]);
        }
        if beside_names.is_some() {
            cells.extend([
                cell(row.beside.map(|b| b.median_ms), 3),
                cell(row.beside.map(|b| b.gflops), 1),
                cell(row.beside.map(|b| b.ratio), 2),
            ]);
        }
        table.row(cells);
    }
    let total_ms: f64 = rows
        .iter()
        .map(|r| r.geometry.count as f64 * r.median_ms)
        .sum();
    let total_flops: u64 = rows.iter().map(|r| r.geometry.count as u64 * r.flops).sum();
    let total_gflops = total_flops as f64 / (total_ms / 1e3) / 1e9;
    let blocks: usize = rows.iter().map(|r| r.geometry.count).sum();
    table.rule();
    let mut total = vec![
        "total".into(),
        String::new(),
        blocks.to_string(),
        String::new(),
        format!("{total_ms:.3}"),
        format!("{total_gflops:.1}"),
        format!("{:.0}", 100.0 * total_gflops / setup.peak_gflops),
    ];
    if peer {
        let peer_ms: f64 = rows
            .iter()
            .map(|r| r.geometry.count as f64 * r.peer_ms.unwrap_or(f64::NAN))
            .sum();
        let peer_gflops = total_flops as f64 / (peer_ms / 1e3) / 1e9;
        total.extend([
            format!("{peer_ms:.3}"),
            format!("{peer_gflops:.1}"),
            format!("{:.2}", peer_ms / total_ms),
        ]);
    }
    if let Some(batch) = setup.beside_batch {
        let beside_ms: f64 = rows
            .iter()
            .map(|r| r.geometry.count as f64 * r.beside.map_or(f64::NAN, |b| b.median_ms))
            .sum();
        let beside_gflops =
            total_flops as f64 * batch as f64 / setup.sweep.batch as f64 / (beside_ms / 1e3) / 1e9;
        total.extend([
            format!("{beside_ms:.3}"),
            format!("{beside_gflops:.1}"),
            format!("{:.2}", beside_gflops / total_gflops),
        ]);
    }
    table.row(total);
    let mut out = table.render();
    out.push_str(
        "\ntotal: sum over rows of count x median: the convs of one forward pass (no head, no \
         layout changes between layers)\n",
    );
    if rows.iter().any(|r| r.fallback) {
        out.push_str(&format!(
            "*: {} needs stride 1; these stride-2 layers ran direct instead\n",
            setup.sweep.algorithm
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::layers as run_layers;
    use super::super::tests::parse;
    use super::*;

    fn run_json(args: &[&str]) -> serde_json::Value {
        let mut out = Vec::new();
        run_layers(&parse(args).unwrap(), &mut out).unwrap();
        serde_json::from_slice(&out).unwrap()
    }

    #[test]
    fn arguments_parse_and_validate() {
        let a = parse(&[
            "--model",
            "b0",
            "--threads",
            "2",
            "--algorithm",
            "f43",
            "--isa",
            "avx2",
            "--batch",
            "8",
            "--input-size",
            "32x48",
            "--repeats",
            "3",
            "--peak-gflops",
            "117.5",
            "--layout",
            "nchw",
            "--json",
        ])
        .unwrap();
        assert_eq!((a.model.as_str(), a.threads, a.batch), ("b0", Some(2), 8));
        assert_eq!(
            (a.algorithm, a.isa),
            (Some(Algorithm::WinogradF43), Some(Isa::Avx2Fma))
        );
        assert_eq!((a.repeats, a.peak_gflops, a.json), (3, Some(117.5), true));
        assert_eq!(a.layout.as_deref(), Some("nchw"));
        assert_eq!(
            parse(&["--algorithm", "winograd-f63"]).unwrap().algorithm,
            Some(Algorithm::WinogradF63)
        );
        assert_eq!(parse(&["--isa", "AVX512"]).unwrap().isa, Some(Isa::Avx512f));
        for bad in [
            &["--threads", "0"][..],
            &["--threads", "1025"],
            &["--threads", "two"],
            &["--repeats", "0"],
            &["--algorithm", "f99"],
            &["--algorithm", "winograd"],
            &["--isa", "sse4"],
            &["--batch", "0"],
            &["--input-size", "0"],
            &["--peak-gflops", "0"],
            &["--peak-gflops", "-3"],
            &["--peak-gflops", "inf"],
            &["--layout", "nhwc"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
        let e = parse(&["--algorithm", "f99"]).unwrap_err().to_string();
        assert!(e.contains("use auto, direct, f23, f43 or f63"), "{e}");
        let e = parse(&["--isa", "sse4"]).unwrap_err().to_string();
        assert!(e.contains("use scalar, avx2, avx512 or neon"), "{e}");
    }

    /// A small, fast sweep: A0 at 16x16, one timed run per layer, scalar kernels.
    const QUICK: [&str; 6] = ["--input-size", "16", "--repeats", "1", "--isa", "scalar"];

    #[test]
    fn f16_weights_name_their_winograd_kernels() {
        let args = [&QUICK[..], &["--json", "--precision", "f16-weights"]].concat();
        let rows = run_json(&args);
        let rows = rows.as_array().expect("a JSON array");
        for row in rows {
            let kernel = row["kernel"].as_str().unwrap();
            let winograd = row["algorithm"].as_str().unwrap().starts_with("winograd");
            assert_eq!(kernel.ends_with("-f16w"), winograd, "{row}");
        }
        assert!(
            rows.iter()
                .any(|r| r["kernel"].as_str().unwrap().ends_with("-f16w")),
            "no Winograd layer in the sweep"
        );
        assert!(parse(&["--precision", "fp8"]).is_err());
    }

    #[test]
    fn json_rows_have_every_key() {
        let rows = run_json(&[&QUICK[..], &["--json"]].concat());
        let rows = rows.as_array().expect("a JSON array");
        assert_eq!(rows.len(), 8);
        for row in rows {
            for key in [
                "layer",
                "cin",
                "cout",
                "h",
                "w",
                "out_h",
                "out_w",
                "stride",
                "groups",
                "count",
                "batch",
                "threads",
                "layout",
                "requested",
                "algorithm",
                "kernel",
                "fallback",
                "isa",
                "flops",
                "median_ms",
                "gflops",
                "peak_pct",
            ] {
                assert!(row.get(key).is_some(), "missing `{key}` in {row}");
            }
            assert_eq!(row["isa"], "scalar");
            assert_eq!(
                (row["threads"].as_u64(), row["layout"].as_str()),
                (Some(1), Some("blocked"))
            );
            assert_eq!(row["requested"], "auto");
            assert_eq!(row["fallback"], false);
            let kernel = row["kernel"].as_str().unwrap();
            let prefix = format!("{}-scalar-", row["algorithm"].as_str().unwrap());
            assert!(kernel.starts_with(&prefix), "{row}");
            assert!(row["median_ms"].as_f64().unwrap() > 0.0, "{row}");
            assert!(row["gflops"].as_f64().unwrap() > 0.0, "{row}");
        }
        assert_eq!(rows[0]["layer"], "stage0");
        assert_eq!(
            (rows[0]["h"].as_u64(), rows[0]["out_h"].as_u64()),
            (Some(16), Some(8))
        );
        // stem: 2·48·3·9·8·8 flops.
        assert_eq!(rows[0]["flops"], 2 * 48 * 3 * 9 * 8 * 8);
        assert_eq!(rows[6]["count"], 13);
    }

    #[test]
    fn forced_winograd_falls_back_to_direct_on_stride_2() {
        let rows = run_json(&[
            "--input-size",
            "16",
            "--repeats",
            "1",
            "--isa",
            "scalar",
            "--algorithm",
            "f43",
            "--batch",
            "2",
            "--layout",
            "nchw",
            "--json",
        ]);
        for row in rows.as_array().unwrap() {
            let stride2 = row["stride"] == 2;
            assert_eq!(row["fallback"], stride2, "{row}");
            let expected = if stride2 { "direct" } else { "winograd-f43" };
            assert_eq!(row["algorithm"], expected, "{row}");
            assert_eq!(row["requested"], "winograd-f43");
            assert_eq!(
                (row["batch"].as_u64(), row["layout"].as_str()),
                (Some(2), Some("nchw"))
            );
        }
    }

    #[test]
    fn table_marks_fallbacks_and_sums_the_model() {
        let mut out = Vec::new();
        let args = parse(&[
            "--input-size",
            "16",
            "--repeats",
            "1",
            "--isa",
            "scalar",
            "--algorithm",
            "f23",
            "--peak-gflops",
            "10",
        ])
        .unwrap();
        run_layers(&args, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("model:     RepVGG-A0, deployed"), "{text}");
        assert!(
            text.contains("peak:      10 GFLOP/s (--peak-gflops)"),
            "{text}"
        );
        let stem = text.lines().find(|l| l.starts_with("stage0 ")).unwrap();
        assert!(stem.contains("3->48 16x16 s2 g1"), "{stem}");
        assert!(stem.contains("direct-scalar-"), "{stem}");
        assert!(stem.contains('*'), "{stem}");
        let s31 = text.lines().find(|l| l.starts_with("stage3.1 ")).unwrap();
        assert!(s31.contains(" 13 "), "{s31}");
        assert!(s31.contains("winograd-f23-scalar-"), "{s31}");
        let total = text.lines().find(|l| l.starts_with("total ")).unwrap();
        assert_eq!(total.split_whitespace().nth(1), Some("22"), "{total}");
        assert!(text.contains("*: winograd-f23 needs stride 1"), "{text}");
    }

    #[test]
    fn beside_batch_times_every_layer_again() {
        let args = [&QUICK[..], &["--beside-batch", "3"]].concat();
        let rows = run_json(&[&args[..], &["--json"]].concat());
        for row in rows.as_array().unwrap() {
            let beside = &row["beside"];
            assert_eq!(beside["batch"], 3, "{row}");
            let (ms, gflops) = (beside["median_ms"].as_f64(), beside["gflops"].as_f64());
            assert!(ms.unwrap() > 0.0 && gflops.unwrap() > 0.0, "{row}");
            let ratio = gflops.unwrap() / row["gflops"].as_f64().unwrap();
            assert!(
                (beside["ratio"].as_f64().unwrap() - ratio).abs() < 1e-9,
                "{row}"
            );
            // Three images: three times the flops in `median_ms`.
            let flops = 3.0 * row["flops"].as_f64().unwrap();
            let expected = flops / (ms.unwrap() / 1e3) / 1e9;
            assert!(
                (gflops.unwrap() - expected).abs() <= 1e-9 * expected,
                "{row}"
            );
        }
        let mut out = Vec::new();
        run_layers(&parse(&args).unwrap(), &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("each layer timed again at batch 3"), "{text}");
        let header = text.lines().find(|l| l.starts_with("layer ")).unwrap();
        assert!(
            header.contains("b3 GFLOP/s") && header.ends_with("b3 / b1"),
            "{header}"
        );
        let total = text.lines().find(|l| l.starts_with("total ")).unwrap();
        assert_eq!(total.split_whitespace().count(), 8, "{total}");
        let gpu = parse(&["--backend", "gpu", "--beside-batch", "8"]).unwrap();
        let e = run_layers(&gpu, &mut Vec::new()).unwrap_err().to_string();
        assert!(e.contains("--beside-batch does not apply"), "{e}");
    }

    #[test]
    fn unavailable_isa_is_an_error() {
        let missing = Isa::ALL.into_iter().find(|i| !i.is_available());
        if let Some(isa) = missing {
            let args = parse(&["--isa", isa.name(), "--input-size", "8"]).unwrap();
            let e = run_layers(&args, &mut Vec::new()).unwrap_err().to_string();
            assert!(e.contains("this CPU does not support"), "{e}");
            assert!(e.contains("hint: this CPU has: "), "{e}");
            assert!(e.contains("scalar"), "{e}");
        }
    }
}
