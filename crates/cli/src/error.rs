//! [`CliError`]: what went wrong and what to do about it.

use reparam_wgsl::GpuError;
use reparam_wgsl::context::ENV_ADAPTER;
use repvgg::CheckpointError;
use std::fmt;
use std::path::Path;

/// A failed command: a message, and a hint telling the user what to do.
#[derive(Debug)]
pub struct CliError {
    message: String,
    hint: Option<String>,
    broken_pipe: bool,
}

impl CliError {
    /// An error with `message` and no hint yet.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            hint: None,
            broken_pipe: false,
        }
    }

    /// Adds what the user should do.
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// The message (without the hint).
    #[cfg(test)]
    pub fn message(&self) -> &str {
        &self.message
    }

    /// True when writing to stdout failed because the reader closed the pipe.
    pub fn is_broken_pipe(&self) -> bool {
        self.broken_pipe
    }

    /// Reading a file failed.
    pub fn read(path: &Path, e: &std::io::Error) -> Self {
        Self::new(format!("cannot read `{}`: {e}", path.display()))
            .hint("check that the path exists and is a readable file")
    }

    /// Writing a file failed.
    pub fn write(path: &Path, e: &std::io::Error) -> Self {
        Self::new(format!("cannot write `{}`: {e}", path.display()))
            .hint("check that the directory exists and is writable")
    }

    /// Loading or writing a checkpoint failed; the hint depends on why.
    pub fn checkpoint(path: &Path, e: &CheckpointError) -> Self {
        let hint = match e {
            CheckpointError::Io { .. } => "check that the path exists and is a readable file",
            CheckpointError::Format(_) => {
                "pass a .safetensors file; convert a PyTorch .pth state dict with \
                 `safetensors.torch.save_file(state_dict, path)`"
            }
            CheckpointError::UnknownScheme { .. } => {
                "keys must use the official names (`stage0.rbr_dense.conv.weight`, \
                 `linear.weight`) or the timm names (`stem.conv_kxk.conv.weight`, `head.fc.weight`)"
            }
            CheckpointError::UnsupportedDtype { .. } => "store the tensors as F32, F16 or BF16",
            CheckpointError::NonFinite { .. } => "the checkpoint is corrupt; re-export it",
            _ => {
                "the file does not describe a consistent RepVGG network; check that it is a \
                 complete, unmodified RepVGG state dict"
            }
        };
        Self::new(format!("checkpoint `{}`: {e}", path.display())).hint(hint)
    }

    /// A GPU operation failed (`what`: what was being done); the hint depends on why.
    pub fn from_gpu(what: &str, e: &GpuError) -> Self {
        let adapter_filter = std::env::var(ENV_ADAPTER).is_ok_and(|v| !v.is_empty());
        let hint = match e {
            GpuError::NoAdapter { .. } if adapter_filter => {
                "REPARAM_GPU_ADAPTER matches no adapter: unset it, or set it to part of one of \
                 the names listed above"
            }
            GpuError::NoAdapter { .. } => {
                "install a Vulkan driver (on Debian/Ubuntu `apt-get install mesa-vulkan-drivers` \
                 gives the lavapipe software adapter, slow but complete) or use a machine with a \
                 GPU; `reparam gpu info` shows what is found"
            }
            GpuError::RequestDevice { .. } | GpuError::LimitsTooSmall { .. } => {
                "pick another adapter with REPARAM_GPU_ADAPTER=<part of its name>, or use a \
                 machine with a GPU"
            }
            GpuError::TooLarge { .. } => "use a smaller --batch or --input-size",
            GpuError::DeviceLost { .. } => {
                "the driver reset the device or ran out of memory; retry, with a smaller --batch"
            }
            _ => {
                "this is a bug in the GPU path or the driver; please report the command and the \
                 output of `reparam gpu info`"
            }
        };
        Self::new(format!("{what}: {e}")).hint(hint)
    }
}

impl From<std::io::Error> for CliError {
    /// Writing the report to stdout failed.
    fn from(e: std::io::Error) -> Self {
        Self {
            broken_pipe: e.kind() == std::io::ErrorKind::BrokenPipe,
            ..Self::new(format!("cannot write to stdout: {e}"))
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "error: {}", self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

impl std::error::Error for CliError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_has_message_and_hint() {
        let e = CliError::new("bad thing").hint("do this");
        assert_eq!(e.to_string(), "error: bad thing\n  hint: do this");
        assert_eq!(CliError::new("x").to_string(), "error: x");
        let pipe = CliError::from(std::io::Error::from(std::io::ErrorKind::BrokenPipe));
        assert!(pipe.is_broken_pipe());
        assert!(!CliError::new("x").is_broken_pipe());
    }
}
