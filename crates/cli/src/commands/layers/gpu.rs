//! `reparam layers --backend gpu`: rows of `repvgg::sweep::gpu` (median device ms, wall ms,
//! GFLOP/s per layer and kernel) as a table or JSON.
//!
//! Times are device times from timestamp queries when the adapter has them (`"timing":
//! "timestamps"`), else host wall times of each submission (`"timing": "wall"`); the wall time
//! of each run (encode, submit, wait) is reported next to it either way. With `--kernel all`
//! each layer is timed with every kernel that supports it, and the whole-network total of a
//! Winograd kernel counts its stride-2 layers with direct's time (marked `winograd-f23*`).

use super::{LayerShape, LayersArgs, sweep_error, to_json, write_model_header};
use crate::commands::gpu::{SOFTWARE_DEVICE_TYPE, context};
use crate::error::CliError;
use crate::table::{Align, Table};
use reparam_tensor::ConvSpec;
use reparam_wgsl::{AdapterSummary, GpuContext, GpuKernel};
use repvgg::sweep::Layer;
use repvgg::sweep::gpu::{GpuSweep, time_layer};
use serde::Serialize;
use std::io::Write;

/// Which kernels `reparam layers --backend gpu` times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KernelChoice {
    /// One kernel (or `auto`) for every layer.
    One(GpuKernel),
    /// Every concrete kernel that supports each layer.
    All,
}

/// `auto`, `naive`, `direct`, `gemm`, `gemm-wide`, `winograd-f23`, `winograd-f43`
/// (case-insensitive) or `all`.
pub fn parse_kernel_choice(s: &str) -> Result<KernelChoice, String> {
    let name = s.trim().to_ascii_lowercase();
    if name == "all" {
        return Ok(KernelChoice::All);
    }
    GpuKernel::parse(&name).map(KernelChoice::One).map_err(|_| {
        format!("`{s}` is not a GPU kernel; use auto, naive, direct, gemm, gemm-wide, winograd-f23, winograd-f43 or all")
    })
}

/// One timed layer and kernel: a row of the table and an object of the JSON array.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    /// The layer and batch.
    #[serde(flatten)]
    pub geometry: LayerShape,
    /// The kernel asked for (`auto`, `gemm`, ...; with `--kernel all`, the kernel of the row).
    pub requested: &'static str,
    /// The kernel the plan ran (never `auto`).
    pub kernel: &'static str,
    /// True when a forced Winograd kernel could not run this layer and direct ran instead.
    pub fallback: bool,
    /// With `--autotune`: each candidate kernel and its median ms at plan time.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tuning: Vec<Candidate>,
    /// Direct-convolution flops of one run: `2·Cout·(Cin/g)·9·Hout·Wout·N`.
    pub flops: u64,
    /// Median time of one run in ms: device time (`timing: timestamps`) or wall time.
    pub median_ms: f64,
    /// Median host wall time of one run (encode, submit, wait), in ms.
    pub wall_ms: f64,
    /// `flops / median_ms`, in GFLOP/s.
    pub gflops: f64,
    /// `timestamps` (device time) or `wall` (the adapter has no timestamp queries).
    pub timing: &'static str,
    /// Adapter name.
    pub adapter: String,
}

/// One autotuning candidate.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Candidate {
    /// Kernel name.
    pub kernel: &'static str,
    /// Its median time when the plan was built, in ms.
    pub ms: f64,
}

impl Row {
    /// The kernel cell of the table: `gemm`, `direct*` (fallback), `auto: gemm`.
    fn kernel_cell(&self) -> String {
        if self.fallback {
            format!("{}*", self.kernel)
        } else if self.requested != self.kernel {
            format!("{}: {}", self.requested, self.kernel)
        } else {
            self.kernel.to_string()
        }
    }
}

/// One "whole network convs" line: Σ count·median over the layers for one kernel choice.
#[derive(Debug, Clone, PartialEq)]
pub struct Total {
    /// The kernel choice (`gemm`, `auto`, ...).
    pub requested: &'static str,
    /// Blocks summed over.
    pub blocks: usize,
    /// Σ count·median_ms.
    pub median_ms: f64,
    /// Σ count·wall_ms.
    pub wall_ms: f64,
    /// Σ count·flops / Σ count·median, in GFLOP/s.
    pub gflops: f64,
    /// True when some layers used direct's time because the choice cannot run them.
    pub borrowed: bool,
}

/// Times `layers` on the GPU of the environment and writes the table or JSON.
pub fn layers(
    model: &str,
    layers: &[Layer],
    args: &LayersArgs,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let choice = args.kernel.unwrap_or(KernelChoice::One(GpuKernel::Auto));
    if args.autotune && choice != KernelChoice::One(GpuKernel::Auto) {
        return Err(
            CliError::new("--autotune chooses the kernel, so it needs --kernel auto")
                .hint("drop --kernel, or drop --autotune to time the kernels you named"),
        );
    }
    let ctx = context()?;
    layers_on(&ctx, model, layers, args, out)
}

/// Times `layers` on `ctx` and writes the table or JSON.
fn layers_on(
    ctx: &GpuContext,
    model: &str,
    layers: &[Layer],
    args: &LayersArgs,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let choice = args.kernel.unwrap_or(KernelChoice::One(GpuKernel::Auto));
    let sweep = GpuSweep {
        batch: args.batch,
        repeats: args.repeats,
        autotune: args.autotune,
    };
    if !args.json {
        write_header(out, model, ctx.summary(), args)?;
        out.flush()?;
    }
    let mut rows = Vec::new();
    for (i, layer) in layers.iter().enumerate() {
        let seed = args.seed.wrapping_add(i as u64);
        for requested in kernels_for(choice, &layer.spec) {
            let t = time_layer(ctx, layer, requested, &sweep, seed)
                .map_err(|e| sweep_error(layer, &e))?;
            rows.push(Row {
                geometry: LayerShape::new(layer, args.batch),
                requested: requested.name(),
                kernel: t.kernel.name(),
                fallback: t.fallback,
                tuning: t
                    .tuning
                    .iter()
                    .map(|&(k, ms)| Candidate {
                        kernel: k.name(),
                        ms,
                    })
                    .collect(),
                flops: t.flops,
                median_ms: t.median_ms,
                wall_ms: t.wall_ms,
                gflops: t.gflops(),
                timing: if t.timestamps { "timestamps" } else { "wall" },
                adapter: ctx.summary().name.clone(),
            });
        }
    }
    if args.json {
        writeln!(out, "{}", to_json(&rows))?;
    } else {
        let totals = totals(&rows, &choices(choice));
        out.write_all(render(&rows, &totals).as_bytes())?;
    }
    Ok(())
}

/// The kernels asked for on one layer: the chosen one (the sweep runs direct where it cannot
/// run the layer), or every concrete kernel that supports it.
fn kernels_for(choice: KernelChoice, spec: &ConvSpec) -> Vec<GpuKernel> {
    match choice {
        KernelChoice::One(k) => vec![k],
        KernelChoice::All => GpuKernel::CONCRETE
            .into_iter()
            .filter(|k| k.supports(spec))
            .collect(),
    }
}

/// The kernel choices that get a total row.
fn choices(choice: KernelChoice) -> Vec<&'static str> {
    match choice {
        KernelChoice::One(k) => vec![k.name()],
        KernelChoice::All => GpuKernel::CONCRETE.iter().map(|k| k.name()).collect(),
    }
}

/// One [`Total`] per kernel choice, in the order of `choices`. A layer without a row for the
/// choice (`--kernel all`: winograd-f23 on a stride-2 layer) counts with its `direct` row.
pub fn totals(rows: &[Row], choices: &[&'static str]) -> Vec<Total> {
    let mut layers: Vec<&str> = Vec::new();
    for row in rows {
        if !layers.contains(&row.geometry.layer.as_str()) {
            layers.push(&row.geometry.layer);
        }
    }
    choices
        .iter()
        .filter_map(|&choice| {
            let mut total = Total {
                requested: choice,
                blocks: 0,
                median_ms: 0.0,
                wall_ms: 0.0,
                gflops: 0.0,
                borrowed: false,
            };
            let mut flops = 0.0;
            let mut own = 0;
            for &layer in &layers {
                let find = |k: &str| {
                    rows.iter()
                        .find(|r| r.geometry.layer == layer && r.requested == k)
                };
                let row = match find(choice) {
                    Some(row) => {
                        own += 1;
                        row
                    }
                    None => {
                        total.borrowed = true;
                        find(GpuKernel::Direct.name())?
                    }
                };
                let count = row.geometry.count as f64;
                total.blocks += row.geometry.count;
                total.median_ms += count * row.median_ms;
                total.wall_ms += count * row.wall_ms;
                flops += count * row.flops as f64;
            }
            total.gflops = flops / (total.median_ms / 1e3) / 1e9;
            (own > 0).then_some(total)
        })
        .collect()
}

fn write_header(
    out: &mut dyn Write,
    model: &str,
    summary: &AdapterSummary,
    args: &LayersArgs,
) -> Result<(), CliError> {
    let kernel = match args.kernel.unwrap_or(KernelChoice::One(GpuKernel::Auto)) {
        KernelChoice::All => "all (every kernel that supports each layer)".to_string(),
        KernelChoice::One(GpuKernel::Auto) if args.autotune => {
            "auto, autotuned per layer at its input shape (fastest measured candidate)".into()
        }
        KernelChoice::One(GpuKernel::Auto) => {
            "auto (static choice: direct when Cin/g < 16, else gemm)".into()
        }
        KernelChoice::One(k) => k.name().to_string(),
    };
    let timing = if summary.timestamps {
        "device time (timestamp queries)"
    } else {
        "host wall time (this adapter has no timestamp queries)"
    };
    write_model_header(out, model, args)?;
    writeln!(
        out,
        "adapter:   {} ({}, {}), driver {}",
        summary.name,
        summary.backend,
        summary.device_type,
        summary.driver.trim()
    )?;
    writeln!(out, "kernels:   reparam-wgsl, kernel {kernel}")?;
    writeln!(
        out,
        "timing:    median of {} runs after one warm-up, {timing}; one submission per run; \
         GFLOP/s = 2·Cout·(Cin/g)·9·Hout·Wout·N / median",
        args.repeats
    )?;
    if summary.device_type == SOFTWARE_DEVICE_TYPE {
        writeln!(
            out,
            "note:      a software adapter (runs on the CPU); these timings say nothing about a GPU"
        )?;
    }
    writeln!(out)?;
    Ok(())
}

/// The table, the whole-network totals and the notes.
fn render(rows: &[Row], totals: &[Total]) -> String {
    let mut table = Table::new(&[
        ("layer", Align::Left),
        ("shape", Align::Left),
        ("count", Align::Right),
        ("kernel", Align::Left),
        ("batch", Align::Right),
        ("median ms", Align::Right),
        ("wall ms", Align::Right),
        ("GFLOP/s", Align::Right),
    ]);
    for row in rows {
        table.row(vec![
            row.geometry.layer.clone(),
            row.geometry.label(),
            row.geometry.count.to_string(),
            row.kernel_cell(),
            row.geometry.batch.to_string(),
            format!("{:.3}", row.median_ms),
            format!("{:.3}", row.wall_ms),
            format!("{:.1}", row.gflops),
        ]);
    }
    table.rule();
    let batch = rows
        .first()
        .map_or(String::new(), |r| r.geometry.batch.to_string());
    for total in totals {
        let star = if total.borrowed { "*" } else { "" };
        table.row(vec![
            "whole network convs".into(),
            String::new(),
            total.blocks.to_string(),
            format!("{}{star}", total.requested),
            batch.clone(),
            format!("{:.3}", total.median_ms),
            format!("{:.3}", total.wall_ms),
            format!("{:.1}", total.gflops),
        ]);
    }
    let mut out = table.render();
    let timing = rows.first().map_or("timestamps", |r| r.timing);
    out.push_str(&format!(
        "\nmedian ms: {}; whole network convs: sum over layers of count x median per kernel \
         choice (the convs of one forward pass, each layer in its own submission; no head)\n",
        if timing == "timestamps" {
            "device time from timestamp queries"
        } else {
            "host wall time (no timestamp queries on this adapter)"
        }
    ));
    if let Some(row) = rows.iter().find(|r| r.fallback) {
        out.push_str(&format!(
            "*: {} needs a 3x3 stride-1 layer; stride-2 layers ran direct instead\n",
            row.requested
        ));
    }
    for total in totals.iter().filter(|t| t.borrowed) {
        out.push_str(&format!(
            "{}*: layers it cannot run (stride 2) are counted with direct's time\n",
            total.requested
        ));
    }
    let tuned: Vec<&Row> = rows.iter().filter(|r| !r.tuning.is_empty()).collect();
    if !tuned.is_empty() {
        out.push_str("autotune (median ms per candidate at plan time):\n");
        for row in tuned {
            let candidates: Vec<String> = row
                .tuning
                .iter()
                .map(|c| format!("{} {:.3}", c.kernel, c.ms))
                .collect();
            out.push_str(&format!(
                "  {}: {}\n",
                row.geometry.layer,
                candidates.join(", ")
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::tests::parse;
    use super::super::{layers as run_command, model_layers};
    use super::*;
    use repvgg::stats::InputSize;

    fn parse_layers(args: &[&str]) -> Result<LayersArgs, clap::Error> {
        let argv: Vec<&str> = ["--backend", "gpu"].iter().chain(args).copied().collect();
        parse(&argv)
    }

    /// The shared context of these tests, or `None` with a printed SKIP.
    fn gpu() -> Option<&'static GpuContext> {
        reparam_wgsl::test_support::shared_context()
    }

    fn run_layers(ctx: &GpuContext, args: &[&str]) -> String {
        let args = parse_layers(args).unwrap();
        let (config, layers) = model_layers(&args).unwrap();
        let mut out = Vec::new();
        layers_on(ctx, &config.name, &layers, &args, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    fn row(layer: &str, requested: &'static str, count: usize, ms: f64) -> Row {
        Row {
            geometry: LayerShape {
                layer: layer.into(),
                cin: 8,
                cout: 8,
                h: 4,
                w: 4,
                out_h: 4,
                out_w: 4,
                stride: 1,
                groups: 1,
                count,
                batch: 1,
            },
            requested,
            kernel: requested,
            fallback: false,
            tuning: Vec::new(),
            flops: 1_000_000,
            median_ms: ms,
            wall_ms: 2.0 * ms,
            gflops: 1.0,
            timing: "timestamps",
            adapter: "test".into(),
        }
    }

    #[test]
    fn defaults() {
        let a = parse_layers(&[]).unwrap();
        assert_eq!(a.model, "a0");
        assert_eq!((a.batch, a.repeats, a.seed), (1, 20, 0));
        assert_eq!(a.kernel, None);
        assert_eq!((a.autotune, a.json), (false, false));
        assert_eq!(a.input_size, InputSize::square(224));
    }

    #[test]
    fn arguments_parse_and_validate() {
        let a = parse_layers(&[
            "--model",
            "b0",
            "--batch",
            "32",
            "--kernel",
            "winograd-f23",
            "--repeats",
            "3",
            "--input-size",
            "32",
            "--json",
        ])
        .unwrap();
        assert_eq!((a.model.as_str(), a.batch, a.repeats), ("b0", 32, 3));
        assert_eq!(a.kernel, Some(KernelChoice::One(GpuKernel::WinogradF23)));
        assert!(a.json);
        assert_eq!(
            parse_layers(&["--kernel", "ALL"]).unwrap().kernel,
            Some(KernelChoice::All)
        );
        assert_eq!(
            parse_layers(&["--kernel", "Gemm"]).unwrap().kernel,
            Some(KernelChoice::One(GpuKernel::Gemm))
        );
        assert!(parse_layers(&["--autotune"]).unwrap().autotune);
        for bad in [
            &["--kernel", "f43"][..],
            &["--kernel", ""],
            &["--batch", "0"],
            &["--repeats", "0"],
            &["--input-size", "0"],
        ] {
            assert!(parse_layers(bad).is_err(), "{bad:?}");
        }
        let e = parse_layers(&["--kernel", "f43"]).unwrap_err().to_string();
        assert!(
            e.contains(
                "use auto, naive, direct, gemm, gemm-wide, winograd-f23, winograd-f43 or all"
            ),
            "{e}"
        );
    }

    #[test]
    fn usage_errors_come_before_the_gpu() {
        let e = model_layers(&parse_layers(&["--model", "vgg16"]).unwrap()).unwrap_err();
        assert!(e.to_string().contains("unknown model `vgg16`"), "{e}");
        let args = parse_layers(&["--kernel", "gemm", "--autotune"]).unwrap();
        let e = run_command(&args, &mut Vec::new()).unwrap_err().to_string();
        assert!(e.contains("needs --kernel auto"), "{e}");
    }

    #[test]
    fn kernel_selection_per_layer() {
        let s1 = ConvSpec::conv3x3(16, 16, 1, 1);
        let s2 = ConvSpec::conv3x3(16, 32, 2, 1);
        let wino = KernelChoice::One(GpuKernel::WinogradF23);
        assert_eq!(kernels_for(wino, &s1), [GpuKernel::WinogradF23]);
        assert_eq!(kernels_for(wino, &s2), [GpuKernel::WinogradF23]);
        let all = kernels_for(KernelChoice::All, &s2);
        assert_eq!(
            all,
            [
                GpuKernel::Naive,
                GpuKernel::Direct,
                GpuKernel::Gemm,
                GpuKernel::GemmWide
            ]
        );
        assert_eq!(kernels_for(KernelChoice::All, &s1).len(), 6);
    }

    #[test]
    fn totals_sum_count_times_median_and_borrow_direct() {
        let rows = [
            row("stage0", "direct", 1, 1.0),
            row("stage0", "gemm", 1, 2.0),
            row("stage1.1", "direct", 3, 0.5),
            row("stage1.1", "gemm", 3, 0.25),
            row("stage1.1", "winograd-f23", 3, 0.125),
        ];
        let t = totals(&rows, &["naive", "direct", "gemm", "winograd-f23"]);
        assert_eq!(t.len(), 3, "naive has no rows: {t:?}");
        assert_eq!(
            (t[0].requested, t[0].blocks, t[0].median_ms),
            ("direct", 4, 2.5)
        );
        assert!(!t[0].borrowed);
        assert_eq!((t[1].median_ms, t[1].wall_ms), (2.75, 5.5));
        assert_eq!((t[2].requested, t[2].median_ms), ("winograd-f23", 1.375));
        assert!(t[2].borrowed);
        // 4 blocks of 1 Mflop in 2.5 ms.
        assert!((t[0].gflops - 1.6).abs() < 1e-12, "{}", t[0].gflops);
        let text = render(&rows, &t);
        assert!(
            text.contains("winograd-f23*: layers it cannot run"),
            "{text}"
        );
        let last = text
            .lines()
            .rfind(|l| l.starts_with("whole network convs"))
            .unwrap();
        assert!(last.contains("winograd-f23*"), "{last}");
        assert!(last.contains("1.375"), "{last}");
    }

    #[test]
    fn json_rows_have_every_key() {
        let Some(ctx) = gpu() else { return };
        let text = run_layers(
            ctx,
            &[
                "--input-size",
                "16",
                "--repeats",
                "1",
                "--kernel",
                "all",
                "--batch",
                "2",
                "--json",
            ],
        );
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        let rows = json.as_array().expect("a JSON array");
        // A0: 8 distinct layers, 5 of stride 2 (4 kernels) and 3 of stride 1 (6 kernels).
        assert_eq!(rows.len(), 5 * 4 + 3 * 6);
        for row in rows {
            for key in [
                "layer",
                "cin",
                "cout",
                "h",
                "w",
                "stride",
                "groups",
                "count",
                "kernel",
                "batch",
                "median_ms",
                "wall_ms",
                "gflops",
                "timing",
                "adapter",
            ] {
                assert!(row.get(key).is_some(), "missing `{key}` in {row}");
            }
            assert_eq!(row["batch"], 2);
            assert_eq!(row["kernel"], row["requested"]);
            assert_eq!(row["adapter"], ctx.summary().name.as_str());
            let timing = if ctx.summary().timestamps {
                "timestamps"
            } else {
                "wall"
            };
            assert_eq!(row["timing"], timing);
            assert!(row["median_ms"].as_f64().unwrap() > 0.0, "{row}");
            assert!(row["gflops"].as_f64().unwrap() > 0.0, "{row}");
        }
        assert_eq!(rows[0]["layer"], "stage0");
        // stem at 16x16, batch 2: 2·48·3·9·8·8·2 flops.
        assert_eq!(rows[0]["flops"], 2 * 48 * 3 * 9 * 8 * 8 * 2);
    }

    #[test]
    fn table_marks_fallbacks_and_sums_the_model() {
        let Some(ctx) = gpu() else { return };
        let text = run_layers(
            ctx,
            &[
                "--input-size",
                "16",
                "--repeats",
                "1",
                "--kernel",
                "winograd-f23",
            ],
        );
        assert!(text.starts_with("model:     RepVGG-A0, deployed"), "{text}");
        let stem = text.lines().find(|l| l.starts_with("stage0 ")).unwrap();
        assert!(stem.contains("3->48 16x16 s2 g1"), "{stem}");
        assert!(stem.contains("direct*"), "{stem}");
        let s31 = text.lines().find(|l| l.starts_with("stage3.1 ")).unwrap();
        assert!(s31.contains(" 13 "), "{s31}");
        assert!(s31.contains("winograd-f23 "), "{s31}");
        let total = text
            .lines()
            .find(|l| l.starts_with("whole network convs"))
            .unwrap();
        assert!(total.contains(" 22 "), "{total}");
        assert!(
            text.contains("*: winograd-f23 needs a 3x3 stride-1 layer"),
            "{text}"
        );
    }

    #[test]
    fn autotune_picks_a_measured_kernel() {
        let Some(ctx) = gpu() else { return };
        let text = run_layers(
            ctx,
            &[
                "--input-size",
                "8",
                "--repeats",
                "1",
                "--autotune",
                "--json",
            ],
        );
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        for row in json.as_array().unwrap() {
            assert_eq!(row["requested"], "auto");
            let tuning = row["tuning"].as_array().expect("candidates");
            assert!(tuning.iter().any(|c| c["kernel"] == row["kernel"]), "{row}");
        }
    }
}
