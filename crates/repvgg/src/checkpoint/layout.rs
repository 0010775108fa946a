//! Which tensors an architecture has, with their shapes as stored in files. Reading and writing
//! both use this list, so a written file holds exactly the keys a loader requires.

use super::Form;
use super::naming::{BlockId, BnField, Branch, Key, Slot};
use crate::config::{BlockSpec, Config};
use std::collections::HashSet;

/// One tensor of the state dict and its shape in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) key: Key,
    pub(crate) shape: Vec<usize>,
}

impl BlockId {
    /// The position of a block of a config.
    pub(crate) fn of(spec: &BlockSpec) -> Self {
        Self {
            stage: spec.stage,
            index: spec.index,
        }
    }
}

/// Conv weight `[C_out, C_in/g, k, k]` of a block (the spec must come from a validated config).
pub(crate) fn conv_shape(spec: &BlockSpec, kernel: usize) -> [usize; 4] {
    if kernel == 1 {
        spec.conv1x1().weight_shape()
    } else {
        spec.conv3x3().weight_shape()
    }
}

/// Every tensor of `config` in `form`, in state-dict order (blocks in execution order, then the
/// head). `num_batches_tracked` is never listed: files may carry it, writers never do.
pub(crate) fn layout(config: &Config, form: Form) -> Vec<Entry> {
    let mut entries = Vec::new();
    let mut push = |key, shape: &[usize]| {
        entries.push(Entry {
            key,
            shape: shape.to_vec(),
        })
    };
    for spec in config.blocks() {
        let id = BlockId::of(&spec);
        let at = |slot| Key::Block(id, slot);
        let c = spec.out_channels;
        if let Some(hidden) = spec.se_hidden {
            push(at(Slot::SeDownWeight), &[hidden, c, 1, 1]);
            push(at(Slot::SeDownBias), &[hidden]);
            push(at(Slot::SeUpWeight), &[c, hidden, 1, 1]);
            push(at(Slot::SeUpBias), &[c]);
        }
        match form {
            Form::MultiBranch => {
                if spec.identity {
                    for field in BnField::PARAMS {
                        push(at(Slot::Identity(field)), &[c]);
                    }
                }
                for (branch, kernel) in [(Branch::Dense, 3), (Branch::Pointwise, 1)] {
                    push(at(Slot::Conv(branch)), &conv_shape(&spec, kernel));
                    for field in BnField::PARAMS {
                        push(at(Slot::Bn(branch, field)), &[c]);
                    }
                }
            }
            Form::Plain => {
                push(at(Slot::ReparamWeight), &conv_shape(&spec, 3));
                push(at(Slot::ReparamBias), &[c]);
            }
        }
    }
    push(
        Key::HeadWeight,
        &[config.num_classes, config.feature_width()],
    );
    push(Key::HeadBias, &[config.num_classes]);
    entries
}

/// Whether a file may hold `key` although [`layout`] does not list it: the `num_batches_tracked`
/// of a batch norm that is in the layout.
pub(crate) fn is_optional(key: Key, required: &HashSet<Key>) -> bool {
    match key {
        Key::Block(id, Slot::Bn(branch, BnField::NumBatchesTracked)) => {
            required.contains(&Key::Block(id, Slot::Bn(branch, BnField::Weight)))
        }
        Key::Block(id, Slot::Identity(BnField::NumBatchesTracked)) => {
            required.contains(&Key::Block(id, Slot::Identity(BnField::Weight)))
        }
        _ => false,
    }
}

/// The tensor a block's geometry (`[C_out, C_in/g, k, k]`) is read from in `form`: the 3x3 conv
/// weight, or the deployed conv weight.
pub(crate) fn main_key(id: BlockId, form: Form) -> Key {
    match form {
        Form::MultiBranch => Key::Block(id, Slot::Conv(Branch::Dense)),
        Form::Plain => Key::Block(id, Slot::ReparamWeight),
    }
}

/// Where the geometry is read from when [`main_key`] is absent (the 1x1 conv has the same
/// `[C_out, C_in/g]`), so that a missing 3x3 weight is reported as missing, not as a gap.
pub(crate) fn fallback_key(id: BlockId, form: Form) -> Option<Key> {
    (form == Form::MultiBranch).then_some(Key::Block(id, Slot::Conv(Branch::Pointwise)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::Naming;

    #[test]
    fn key_counts_match_the_reference() {
        // docs/repvgg.md#key-counts: A-series 290 training keys without num_batches_tracked, 46 deployed;
        // B-series 374 and 58.
        let count = |name: &str, form| layout(&Config::official(name).unwrap(), form).len();
        assert_eq!(count("A0", Form::MultiBranch), 290);
        assert_eq!(count("A0", Form::Plain), 46);
        assert_eq!(count("B1g4", Form::MultiBranch), 374);
        assert_eq!(count("B1g4", Form::Plain), 58);
    }

    #[test]
    fn grouped_shapes() {
        let config = Config::official("B1g4").unwrap();
        let entries = layout(&config, Form::MultiBranch);
        let find = |name: &str| {
            entries
                .iter()
                .find(|e| e.key.render(Naming::Official) == name)
                .map(|e| e.shape.clone())
        };
        assert_eq!(
            find("stage1.1.rbr_dense.conv.weight"),
            Some(vec![128, 32, 3, 3])
        );
        assert_eq!(
            find("stage1.1.rbr_1x1.conv.weight"),
            Some(vec![128, 32, 1, 1])
        );
        assert_eq!(find("linear.weight"), Some(vec![1000, 2048]));
        assert_eq!(find("stage1.0.rbr_identity.weight"), None);
    }
}
