//! `reparam convert IN OUT`: rewrite a checkpoint (safetensors or PyTorch `.pth`) as safetensors.

use crate::args::NamingArg;
use crate::commands::duration;
use crate::error::CliError;
use crate::source;
use clap::Args;
use repvgg::{LoadOptions, Naming};
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

/// Arguments of `reparam convert`.
#[derive(Debug, Args)]
#[command(
    after_help = "IN is read with every check `run` and `fuse` apply (key names, shapes, dtypes, \
    finite values); OUT holds the same form (training-time or deployed) as F32 safetensors, \
    without `num_batches_tracked`.\n\n\
    Examples:\n  reparam convert RepVGG-A0-train.pth repvgg_a0.safetensors\n  \
    reparam convert checkpoint.pth model.safetensors --naming timm"
)]
pub struct ConvertArgs {
    /// The checkpoint to read: a `torch.save` state dict (`.pth` / `.pt`, also nested under
    /// `state_dict` or `model`, with or without the `module.` prefix) or safetensors.
    #[arg(value_name = "IN")]
    pub input: PathBuf,
    /// Where to write the safetensors checkpoint.
    #[arg(value_name = "OUT")]
    pub output: PathBuf,
    /// Key names of OUT [default: the same as IN's].
    #[arg(long, value_enum)]
    pub naming: Option<NamingArg>,
}

/// Runs `reparam convert`.
pub fn convert(args: &ConvertArgs, out: &mut dyn Write) -> Result<(), CliError> {
    source::refuse_overwrite(
        &args.input,
        &args.output,
        "write the converted checkpoint to a different path",
    )?;
    let start = Instant::now();
    let loaded = source::load_checkpoint(&args.input, &LoadOptions::default())?;
    writeln!(
        out,
        "read   {}: {} {} checkpoint, {} naming ({})",
        args.input.display(),
        loaded.net.config().name,
        source::form_name(&loaded.net),
        loaded.naming.name(),
        duration(start.elapsed())
    )?;
    let naming = args.naming.map_or(loaded.naming, Naming::from);
    source::write_checkpoint(&loaded.net, naming, &args.output, out)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(file: &str) -> PathBuf {
        [
            env!("CARGO_MANIFEST_DIR"),
            "..",
            "..",
            "tests",
            "fixtures",
            "tiny",
            file,
        ]
        .iter()
        .collect()
    }

    #[test]
    fn a_pth_file_converts_to_the_safetensors_it_came_from() {
        let dir = std::env::temp_dir().join(format!("reparam-convert-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let output = dir.join("train.safetensors");
        let args = ConvertArgs {
            input: fixture("train_time.pth"),
            output: output.clone(),
            naming: None,
        };
        let mut log = Vec::new();
        convert(&args, &mut log).unwrap();
        let log = String::from_utf8(log).unwrap();
        assert!(log.contains("timm naming"), "{log}");
        let options = LoadOptions::default();
        let ours = repvgg::checkpoint::load_file(&output, &options).unwrap();
        let source =
            repvgg::checkpoint::load_file(&fixture("train_time.safetensors"), &options).unwrap();
        assert_eq!(ours.net, source.net);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn refuses_to_overwrite_the_input_and_reports_missing_files() {
        let args = ConvertArgs {
            input: PathBuf::from("Cargo.toml"),
            output: PathBuf::from("./Cargo.toml"),
            naming: None,
        };
        let e = convert(&args, &mut Vec::new()).unwrap_err().to_string();
        assert!(e.contains("refusing to overwrite"), "{e}");
        let args = ConvertArgs {
            input: PathBuf::from("/no/such/model.pth"),
            output: PathBuf::from("/no/such/model.safetensors"),
            naming: Some(NamingArg::Official),
        };
        let e = convert(&args, &mut Vec::new()).unwrap_err().to_string();
        assert!(e.contains("no such file"), "{e}");
    }
}
