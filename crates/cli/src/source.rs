//! Where a network comes from: an official architecture name or a checkpoint file.

use crate::error::CliError;
use repvgg::{Checkpoint, Config, LoadOptions, Loaded, Naming};
use std::path::Path;

/// An official architecture by name (`a0`, `RepVGG-B1g4`, `repvgg_d2se`).
pub fn official(name: &str) -> Result<Config, CliError> {
    Config::official(name)
        .map_err(|_| CliError::new(format!("unknown model `{name}`")).hint(known_models_hint()))
}

/// The hint listing the model names.
pub fn known_models_hint() -> String {
    format!(
        "known models: {} (case-insensitive; a `RepVGG-` or `repvgg_` prefix is optional)",
        Config::OFFICIAL_NAMES.join(", ")
    )
}

/// Loads a checkpoint (safetensors or PyTorch `.pth`), with messages that say what to do.
pub fn load_checkpoint(path: &Path, options: &LoadOptions) -> Result<Loaded, CliError> {
    if !path.exists() {
        return Err(CliError::new(format!("no such file: `{}`", path.display()))
            .hint("pass the path to a .safetensors or .pth checkpoint"));
    }
    if !path.is_file() {
        return Err(CliError::new(format!("`{}` is not a file", path.display()))
            .hint("pass the path to a .safetensors or .pth checkpoint"));
    }
    repvgg::checkpoint::load_file(path, options).map_err(|e| CliError::checkpoint(path, &e))
}

/// The network to run and a line saying where its weights came from: `checkpoint`, or the
/// official `model` (default A0) with synthetic weights seeded by `seed`.
pub fn load_net(
    model: Option<&str>,
    checkpoint: Option<&Path>,
    seed: u64,
    bn_eps: f64,
) -> Result<(Checkpoint, String), CliError> {
    match checkpoint {
        Some(path) => {
            let options = LoadOptions {
                bn_eps,
                ..LoadOptions::default()
            };
            let loaded = load_checkpoint(path, &options)?;
            let origin = format!(
                "checkpoint {}: {}, {} naming",
                path.display(),
                form_name(&loaded.net),
                loaded.naming.name()
            );
            Ok((loaded.net, origin))
        }
        None => {
            let config = official(model.unwrap_or("a0"))?;
            let net = repvgg::TrainNet::random(&config, seed);
            Ok((Checkpoint::Train(net), format!("synthetic (seed {seed})")))
        }
    }
}

/// Refuses to write `output` when it is the `input` file; `hint` says what to do instead.
pub fn refuse_overwrite(input: &Path, output: &Path, hint: &str) -> Result<(), CliError> {
    if crate::commands::same_file(input, output) {
        return Err(CliError::new(format!(
            "OUT `{}` is the input checkpoint; refusing to overwrite it",
            output.display()
        ))
        .hint(hint));
    }
    Ok(())
}

/// Writes `net` to `path` as F32 safetensors under `naming`, and reports it on `out`.
pub fn write_checkpoint(
    net: &Checkpoint,
    naming: Naming,
    path: &Path,
    out: &mut dyn std::io::Write,
) -> Result<(), CliError> {
    let bytes = net
        .to_bytes(naming)
        .map_err(|e| CliError::checkpoint(path, &e))?;
    std::fs::write(path, &bytes).map_err(|e| CliError::write(path, &e))?;
    writeln!(
        out,
        "wrote  {}: {} checkpoint, {} naming, F32 safetensors, {} bytes",
        path.display(),
        form_name(net),
        naming.name(),
        bytes.len()
    )?;
    Ok(())
}

/// The CPU's model name (`model name` of /proc/cpuinfo), or `unknown CPU`.
pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}

/// `training-time (multi-branch)` or `deployed (plain)`.
pub fn form_name(net: &Checkpoint) -> &'static str {
    match net {
        Checkpoint::Train(_) => "training-time (multi-branch)",
        Checkpoint::Deploy(_) => "deployed (plain, re-parameterized)",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn official_names_and_errors() {
        assert_eq!(official("a0").unwrap().name, "RepVGG-A0");
        assert_eq!(official("RepVGG-B1g4").unwrap().name, "RepVGG-B1g4");
        let e = official("resnet50").unwrap_err().to_string();
        assert!(e.contains("unknown model `resnet50`"), "{e}");
        assert!(e.contains("A0, A1"), "{e}");
    }

    #[test]
    fn missing_checkpoint_is_an_error_not_a_panic() {
        let e = load_checkpoint(
            Path::new("/no/such/file.safetensors"),
            &LoadOptions::default(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("no such file"), "{e}");
        let dir = load_checkpoint(Path::new("."), &LoadOptions::default()).unwrap_err();
        assert!(dir.to_string().contains("not a file"), "{dir}");
    }
}
