//! `reparam fuse IN OUT`: re-parameterize a training-time checkpoint into a deployed one.

use crate::args::{NamingArg, parse_bn_eps};
use crate::commands::duration;
use crate::error::CliError;
use crate::source;
use clap::Args;
use repvgg::{Checkpoint, LoadOptions, Naming};
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

/// Arguments of `reparam fuse`.
#[derive(Debug, Args)]
#[command(
    after_help = "Every block y = ReLU(BN3(conv3x3 x) + BN1(conv1x1 x) + BNid(x)) becomes \
    y = ReLU(conv3x3(x; K) + b), folded in f64 and rounded to f32 once. The head is copied.\n\n\
    Examples:\n  reparam fuse repvgg_a0_train.safetensors repvgg_a0_deploy.safetensors\n  \
    reparam fuse model.safetensors deploy.safetensors --naming official"
)]
pub struct FuseArgs {
    /// The training-time (multi-branch) checkpoint to read (safetensors or PyTorch `.pth`).
    #[arg(value_name = "IN")]
    pub input: PathBuf,
    /// Where to write the deployed checkpoint (F32 safetensors).
    #[arg(value_name = "OUT")]
    pub output: PathBuf,
    /// Key names of OUT [default: the same as IN's].
    #[arg(long, value_enum)]
    pub naming: Option<NamingArg>,
    /// Batch-norm ε (not stored in checkpoints; PyTorch's default is 1e-5).
    #[arg(long, value_name = "E", default_value = "1e-5", value_parser = parse_bn_eps)]
    pub bn_eps: f64,
}

/// Runs `reparam fuse`.
pub fn fuse(args: &FuseArgs, out: &mut dyn Write) -> Result<(), CliError> {
    source::refuse_overwrite(
        &args.input,
        &args.output,
        "write the deployed checkpoint to a different path",
    )?;
    let options = LoadOptions {
        bn_eps: args.bn_eps,
        ..LoadOptions::default()
    };
    let start = Instant::now();
    let loaded = source::load_checkpoint(&args.input, &options)?;
    let load_time = start.elapsed();
    let train = match &loaded.net {
        Checkpoint::Train(train) => train,
        Checkpoint::Deploy(_) => {
            return Err(CliError::new(format!(
                "`{}` is already deployed (re-parameterized); there is nothing to fuse",
                args.input.display()
            ))
            .hint(format!(
                "run it directly: reparam run --checkpoint {}",
                args.input.display()
            )));
        }
    };
    writeln!(
        out,
        "read   {}: {} {} checkpoint, {} naming, {} blocks ({})",
        args.input.display(),
        train.config.name,
        source::form_name(&loaded.net),
        loaded.naming.name(),
        train.blocks.len(),
        duration(load_time)
    )?;

    let start = Instant::now();
    let plain = repvgg::fuse(train).map_err(|e| {
        CliError::new(format!("cannot fuse `{}`: {e}", args.input.display()))
            .hint("check that the checkpoint's batch-norm statistics are valid (σ² + ε > 0)")
    })?;
    let fuse_time = start.elapsed();
    writeln!(
        out,
        "fused  {} blocks, bn ε = {:e} ({})",
        plain.blocks.len(),
        args.bn_eps,
        duration(fuse_time)
    )?;

    let naming = args.naming.map_or(loaded.naming, Naming::from);
    source::write_checkpoint(&Checkpoint::Deploy(plain), naming, &args.output, out)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_to_overwrite_the_input() {
        let here = PathBuf::from("Cargo.toml");
        let args = FuseArgs {
            input: here.clone(),
            output: PathBuf::from("./Cargo.toml"),
            naming: None,
            bn_eps: 1e-5,
        };
        let e = fuse(&args, &mut Vec::new()).unwrap_err().to_string();
        assert!(e.contains("refusing to overwrite"), "{e}");
    }

    #[test]
    fn missing_input_is_an_error() {
        let args = FuseArgs {
            input: PathBuf::from("/no/such/train.safetensors"),
            output: PathBuf::from("/no/such/deploy.safetensors"),
            naming: Some(NamingArg::Timm),
            bn_eps: 1e-5,
        };
        let e = fuse(&args, &mut Vec::new()).unwrap_err().to_string();
        assert!(e.contains("no such file"), "{e}");
    }
}
