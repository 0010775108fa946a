//! What a file is, from its key strings: `module.` prefix, naming scheme, form.

use super::naming::{FileNames, Key};
use super::{Form, Naming};
use crate::error::CheckpointError;

/// The prefix PyTorch `DistributedDataParallel` puts on every key.
const DDP_PREFIX: &str = "module.";

/// `module.` if every key has it, `""` if none has; an error naming one key of each kind if mixed.
pub(crate) fn ddp_prefix<'a>(
    mut names: impl Iterator<Item = &'a str> + Clone,
) -> Result<&'static str, CheckpointError> {
    let with = names.clone().find(|n| n.starts_with(DDP_PREFIX));
    let without = names.find(|n| !n.starts_with(DDP_PREFIX));
    match (with, without) {
        (Some(a), Some(b)) => Err(CheckpointError::UnknownScheme {
            reason: format!(
                "`{a}` has the `{DDP_PREFIX}` prefix but `{b}` does not; all keys must agree"
            ),
        }),
        (Some(_), None) => Ok(DDP_PREFIX),
        _ => Ok(""),
    }
}

/// The scheme of the keys (without prefix): every key that is a RepVGG key must be one of the
/// same scheme (no key is valid in both). Keys of neither are reported later as unexpected.
pub(crate) fn naming<'a>(names: impl Iterator<Item = &'a str>) -> Result<Naming, CheckpointError> {
    let mut first = None;
    let mut official = None;
    let mut timm = None;
    for name in names {
        if official.is_none() && Key::parse(name, Naming::Official).is_some() {
            official = Some(name);
        }
        if timm.is_none() && Key::parse(name, Naming::Timm).is_some() {
            timm = Some(name);
        }
        first.get_or_insert(name);
    }
    match (official, timm) {
        (Some(o), Some(t)) => Err(CheckpointError::UnknownScheme {
            reason: format!("official (`{o}`) and timm (`{t}`) key names are mixed"),
        }),
        (Some(_), None) => Ok(Naming::Official),
        (None, Some(_)) => Ok(Naming::Timm),
        (None, None) => Err(CheckpointError::UnknownScheme {
            reason: match first {
                None => "the file holds no tensors".to_string(),
                Some(name) => {
                    format!("no key is an official or timm RepVGG key (first: `{name}`)")
                }
            },
        }),
    }
}

/// Deployed if there are `rbr_reparam` / `reparam_conv` keys, else training-time; both kinds of
/// keys together are an error.
pub(crate) fn form(
    keys: impl Iterator<Item = Key>,
    names: FileNames,
) -> Result<Form, CheckpointError> {
    let mut reparam = None;
    let mut branch = None;
    for key in keys {
        let Some(slot) = key.slot() else { continue };
        if slot.is_reparam() {
            reparam.get_or_insert(key);
        } else if slot.is_train_branch() && !slot.is_batch_counter() {
            branch.get_or_insert(key);
        }
    }
    match (reparam, branch) {
        (Some(r), Some(b)) => Err(CheckpointError::InconsistentArchitecture {
            key: names.of(r),
            reason: format!(
                "a deployed key mixed with training-time branch keys such as `{}`",
                names.of(b)
            ),
        }),
        (Some(_), None) => Ok(Form::Plain),
        _ => Ok(Form::MultiBranch),
    }
}
