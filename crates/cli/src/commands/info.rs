//! `reparam info <MODEL|CHECKPOINT>`: the per-layer table of the deployed network.

use crate::args::parse_input_size;
use crate::error::CliError;
use crate::source;
use crate::table::{Align, Table, giga, hw, millions, thousands};
use clap::Args;
use repvgg::LoadOptions;
use repvgg::stats::{InputSize, LayerKind, LayerStats, ModelStats};
use std::io::Write;
use std::path::Path;

/// Arguments of `reparam info`.
#[derive(Debug, Args)]
#[command(
    after_help = "Counts are per image for the deployed network (one 3x3 conv + bias per \
    block), as in the RepVGG paper: MACs is its \"FLOPs\" column, Wino MULs counts Winograd \
    F(2x2,3x3) multiplications on stride-1 3x3 convs (4/9 of their MACs) and MACs elsewhere.\n\n\
    Examples:\n  reparam info a0\n  reparam info RepVGG-B1g4 --input-size 320\n  \
    reparam info repvgg_a0.safetensors"
)]
pub struct InfoArgs {
    /// An official model (A0, A1, A2, B0, B1, B1g2, B1g4, B2, B2g2, B2g4, B3, B3g2, B3g4, D2se;
    /// case-insensitive, `RepVGG-` prefix optional) or the path to a checkpoint (safetensors or PyTorch `.pth`).
    /// Names are tried first: write `./a0` for a file called `a0`.
    #[arg(value_name = "MODEL|CHECKPOINT")]
    pub target: String,
    /// Input size, H or HxW.
    #[arg(long, value_name = "H[xW]", default_value = "224", value_parser = parse_input_size)]
    pub input_size: InputSize,
}

/// Runs `reparam info`.
pub fn info(args: &InfoArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let mut header = Vec::new();
    let config = match source::official(&args.target) {
        Ok(config) => {
            header.push(format!("model:  {} (official configuration)", config.name));
            config
        }
        Err(_) if Path::new(&args.target).exists() => {
            let path = Path::new(&args.target);
            let loaded = source::load_checkpoint(path, &LoadOptions::default())?;
            header.push(format!("checkpoint: {}", path.display()));
            header.push(format!("form:   {}", source::form_name(&loaded.net)));
            header.push(format!("naming: {}", loaded.naming.name()));
            let config = loaded.net.config().clone();
            header.push(format!("model:  {}", config.name));
            config
        }
        Err(_) => {
            return Err(CliError::new(format!(
                "`{}` is neither a known model nor an existing file",
                args.target
            ))
            .hint(format!(
                "{}; or pass the path to a .safetensors or .pth checkpoint",
                source::known_models_hint()
            )));
        }
    };
    let stats = ModelStats::new(&config, args.input_size).map_err(|e| {
        CliError::new(format!("cannot size `{}`: {e}", config.name))
            .hint("use --input-size with sides of at least 1 pixel")
    })?;
    for line in header {
        writeln!(out, "{line}")?;
    }
    out.write_all(render(&stats).as_bytes())?;
    Ok(())
}

/// The per-layer table and the totals.
pub fn render(stats: &ModelStats) -> String {
    let mut table = Table::new(&[
        ("layer", Align::Left),
        ("C_in", Align::Right),
        ("C_out", Align::Right),
        ("groups", Align::Right),
        ("stride", Align::Right),
        ("input", Align::Right),
        ("output", Align::Right),
        ("params", Align::Right),
        ("MACs", Align::Right),
        ("Wino MULs", Align::Right),
        ("algorithm", Align::Left),
    ]);
    for row in stats.layers() {
        table.row(cells(row));
    }
    let t = &stats.totals;
    table.rule();
    let mut total = vec!["total".to_string()];
    total.resize(7, String::new());
    total.extend([
        thousands(t.params),
        thousands(t.macs),
        thousands(t.wino_muls),
    ]);
    table.row(total);

    let mut out = format!(
        "input:  {} (counts per image, deployed form: one 3x3 conv + bias per block)\n\n",
        stats.input
    );
    out.push_str(&table.render());
    out.push('\n');
    out.push_str(&format!(
        "params:     {:>15}  ({})\n",
        thousands(t.params),
        millions(t.params)
    ));
    if t.se_params > 0 {
        out.push_str(&format!(
            "  of which SE: {:>12}  ({}); without SE: {}\n",
            thousands(t.se_params),
            millions(t.se_params),
            thousands(t.params - t.se_params)
        ));
    }
    out.push_str(&format!(
        "MACs:       {:>15}  ({}; the paper's \"FLOPs\": stride-1 3x3 {}, stride-2 3x3 {}, \
         linear {})\n",
        thousands(t.macs),
        giga(t.macs),
        giga(t.stride1_macs),
        giga(t.stride2_macs),
        giga(t.head_macs)
    ));
    out.push_str(&format!(
        "Wino MULs:  {:>15}  ({}; Winograd F(2x2,3x3) on stride-1 3x3 convs)\n",
        thousands(t.wino_muls),
        giga(t.wino_muls)
    ));
    out
}

fn cells(row: &LayerStats) -> Vec<String> {
    let algorithm = match (row.kind, row.winograd) {
        (LayerKind::Head, _) => "avg-pool + linear",
        (LayerKind::Block, true) => "Winograd F(2,3)",
        (LayerKind::Block, false) => "direct",
    };
    let name = if row.se_params > 0 {
        format!("{} +SE", row.name)
    } else {
        row.name.clone()
    };
    vec![
        name,
        row.in_channels.to_string(),
        row.out_channels.to_string(),
        row.groups.to_string(),
        row.stride.to_string(),
        hw(row.input_hw),
        hw(row.output_hw),
        thousands(row.params()),
        thousands(row.macs()),
        thousands(row.wino_muls),
        algorithm.to_string(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use repvgg::Config;

    fn a0() -> ModelStats {
        ModelStats::new(&Config::official("a0").unwrap(), InputSize::default()).unwrap()
    }

    #[test]
    fn table_rows_and_totals() {
        let text = render(&a0());
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("input:  224x224"));
        assert!(lines[2].starts_with("layer"), "{text}");
        let stem = lines.iter().find(|l| l.starts_with("stage0 ")).unwrap();
        let cols: Vec<&str> = stem.split_whitespace().collect();
        assert_eq!(
            cols,
            [
                "stage0",
                "3",
                "48",
                "1",
                "2",
                "224x224",
                "112x112",
                "1,344",
                "16,257,024",
                "16,257,024",
                "direct"
            ]
        );
        let s11 = lines.iter().find(|l| l.starts_with("stage1.1 ")).unwrap();
        assert!(s11.ends_with("Winograd F(2,3)"), "{s11}");
        let linear = lines.iter().find(|l| l.starts_with("linear ")).unwrap();
        assert!(linear.contains("1,281,000"), "{linear}");
        let total = lines.iter().find(|l| l.starts_with("total")).unwrap();
        let cols: Vec<&str> = total.split_whitespace().collect();
        assert_eq!(cols, ["total", "8,309,384", "1,361,451,008", "747,296,768"]);
        assert!(
            text.contains("params:           8,309,384  (8.31 M)"),
            "{text}"
        );
        assert!(text.contains("(1.361 G; the paper's \"FLOPs\""), "{text}");
        assert!(text.contains("(0.747 G; Winograd"), "{text}");
        // 22 blocks + head + header + 2 rules + total.
        assert_eq!(lines.iter().filter(|l| l.starts_with("stage")).count(), 22);
        // Every table line is aligned: the header and rows have the same width up to trimming.
        let width = lines[3].len();
        assert!(lines[3].chars().all(|c| c == '-'));
        assert!(lines[2..27].iter().all(|l| l.len() <= width));
    }

    #[test]
    fn se_is_marked_and_summed() {
        let d2se = ModelStats::new(&Config::official("d2se").unwrap(), InputSize::square(64));
        let text = render(&d2se.unwrap());
        assert!(text.contains("stage0 +SE"), "{text}");
        assert!(text.contains("without SE: 118,109,032"), "{text}");
    }

    #[test]
    fn unknown_target_is_an_error() {
        let args = InfoArgs {
            target: "not-a-model".into(),
            input_size: InputSize::default(),
        };
        let e = info(&args, &mut Vec::new()).unwrap_err().to_string();
        assert!(
            e.contains("neither a known model nor an existing file"),
            "{e}"
        );
        assert!(e.contains("known models: A0"), "{e}");
    }

    #[test]
    fn writes_to_the_given_sink() {
        let args = InfoArgs {
            target: "RepVGG-A0".into(),
            input_size: InputSize::new(32, 48),
        };
        let mut out = Vec::new();
        info(&args, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("model:  RepVGG-A0 (official configuration)\ninput:  32x48"));
    }
}
