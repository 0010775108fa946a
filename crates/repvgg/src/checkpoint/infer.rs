//! Architecture inference: a [`Config`] from tensor shapes alone, and the comparison with a config
//! the caller asked for.
//!
//! From the conv weight `[C_out, d, k, k]` of each block (the 3x3 one, or the deployed one):
//! - the stem gives the input channels (`d`, the stem is never grouped) and its width (`C_out`);
//! - a later block reads the previous block's width `C_in`, so its groups are `g = C_in / d`
//!   (`d` must divide `C_in`, `g` must divide `C_out`);
//! - every block of a stage has the stage's width; stages and blocks are numbered without gaps;
//! - an identity BN may only exist where `C_in == C_out` and the stride is 1;
//! - squeeze-excitation hidden widths `h = ⌊C_out / r⌋` give the reduction `r` (the largest `r`
//!   consistent with every block);
//! - the classifier weight `[classes, features]` gives the classes.
//!
//! Every shape not used here is checked afterwards against the inferred config.

use super::Form;
use super::layout::{fallback_key, main_key};
use super::naming::{BlockId, BnField, FileNames, Key, Slot};
use crate::config::{BlockSpec, Config, StageConfig};
use crate::error::CheckpointError;
use std::collections::{BTreeMap, BTreeSet};

/// The shape of every tensor in the file, by key.
pub(crate) type Shapes = BTreeMap<Key, Vec<usize>>;

fn inconsistent(names: FileNames, key: Key, reason: String) -> CheckpointError {
    CheckpointError::InconsistentArchitecture {
        key: names.of(key),
        reason,
    }
}

/// Infers the architecture of a checkpoint in `form` from its tensor shapes.
pub(crate) fn infer(
    shapes: &Shapes,
    form: Form,
    names: FileNames,
) -> Result<Config, CheckpointError> {
    let blocks = block_ids(shapes, names)?;
    let (stem_key, stem_width, in_channels) = conv_dims(shapes, form, names, BlockId::STEM)?;
    check_identity(shapes, names, BlockId::STEM, (in_channels, stem_width, 2))?;
    let mut widths = vec![(BlockId::STEM, stem_width)];
    let mut stages = Vec::new();
    let mut previous = stem_width;
    for (&stage, indices) in blocks.range(1..) {
        let mut width = 0;
        let mut groups = Vec::with_capacity(indices.len());
        for &index in indices {
            let id = BlockId { stage, index };
            let (key, out, per_group) = conv_dims(shapes, form, names, id)?;
            if previous % per_group != 0 {
                return Err(inconsistent(
                    names,
                    key,
                    format!(
                        "{per_group} input channels per group do not divide the {previous} \
                         channels the previous block produces"
                    ),
                ));
            }
            let g = previous / per_group;
            if index == 0 {
                width = out;
            } else if out != width {
                return Err(inconsistent(
                    names,
                    key,
                    format!(
                        "{out} output channels, but the stage's first block `{}` has {width}",
                        BlockId { stage, index: 0 }.prefix(names.naming)
                    ),
                ));
            }
            if out % g != 0 {
                return Err(inconsistent(
                    names,
                    key,
                    format!("{g} groups do not divide {out} output channels"),
                ));
            }
            let stride = if index == 0 { 2 } else { 1 };
            check_identity(shapes, names, id, (previous, out, stride))?;
            widths.push((id, out));
            groups.push(g);
            previous = out;
        }
        stages.push(StageConfig { width, groups });
    }
    let config = Config {
        name: "custom".to_string(),
        in_channels,
        stem_width,
        stages,
        num_classes: num_classes(shapes, names)?,
        se_reduction: se_reduction(shapes, names, &widths)?,
    };
    config
        .validate()
        .map_err(|e| inconsistent(names, stem_key, e.to_string()))?;
    Ok(config)
}

/// Stage → block indices of every block with a weight key; checks that there is a stem and that
/// stages and blocks are numbered without gaps.
fn block_ids(
    shapes: &Shapes,
    names: FileNames,
) -> Result<BTreeMap<usize, BTreeSet<usize>>, CheckpointError> {
    // The stem is always there; if its keys are absent, reading its weight reports them missing.
    let mut blocks = BTreeMap::from([(0, BTreeSet::from([0]))]);
    for key in shapes.keys() {
        if let Key::Block(id, slot) = *key
            && !slot.is_batch_counter()
        {
            blocks.entry(id.stage).or_default().insert(id.index);
        }
    }
    let gap = |found: BlockId, absent: BlockId| {
        let key = shapes
            .keys()
            .copied()
            .find(|k| k.block() == Some(found))
            .unwrap_or(Key::HeadWeight);
        inconsistent(
            names,
            key,
            format!(
                "`{}` has keys but `{}` has none; stages and blocks must be numbered without gaps",
                found.prefix(names.naming),
                absent.prefix(names.naming)
            ),
        )
    };
    for (position, (&stage, indices)) in blocks.iter().enumerate() {
        let first = indices.first().copied().unwrap_or(0);
        if stage != position {
            let absent = BlockId {
                stage: position,
                index: 0,
            };
            return Err(gap(
                BlockId {
                    stage,
                    index: first,
                },
                absent,
            ));
        }
        for (position, &index) in indices.iter().enumerate() {
            if index != position {
                let absent = BlockId {
                    stage,
                    index: position,
                };
                return Err(gap(BlockId { stage, index }, absent));
            }
        }
    }
    Ok(blocks)
}

/// `(key, C_out, C_in/g)` of a block's conv weight.
fn conv_dims(
    shapes: &Shapes,
    form: Form,
    names: FileNames,
    id: BlockId,
) -> Result<(Key, usize, usize), CheckpointError> {
    let candidates: Vec<Key> = [main_key(id, form)]
        .into_iter()
        .chain(fallback_key(id, form))
        .collect();
    let Some((key, shape)) = candidates
        .iter()
        .find_map(|k| shapes.get(k).map(|shape| (*k, shape)))
    else {
        return Err(CheckpointError::MissingKeys {
            keys: names.sorted(candidates),
        });
    };
    match *shape.as_slice() {
        [out, per_group, _, _] if out > 0 && per_group > 0 => Ok((key, out, per_group)),
        _ => Err(inconsistent(
            names,
            key,
            format!(
                "a conv weight is 4-D [C_out, C_in/groups, k, k] with C_out, C_in/groups ≥ 1; \
                 found shape {shape:?}"
            ),
        )),
    }
}

/// Rejects identity-BN keys on a block that cannot have that branch.
fn check_identity(
    shapes: &Shapes,
    names: FileNames,
    id: BlockId,
    (c_in, c_out, stride): (usize, usize, usize),
) -> Result<(), CheckpointError> {
    if c_in == c_out && stride == 1 {
        return Ok(());
    }
    let present = BnField::PARAMS
        .into_iter()
        .map(|f| Key::Block(id, Slot::Identity(f)))
        .find(|k| shapes.contains_key(k));
    match present {
        None => Ok(()),
        Some(key) => Err(inconsistent(
            names,
            key,
            format!(
                "an identity branch needs stride 1 and C_in == C_out, but this block has stride \
                 {stride} and maps {c_in} -> {c_out} channels"
            ),
        )),
    }
}

fn num_classes(shapes: &Shapes, names: FileNames) -> Result<usize, CheckpointError> {
    let read = |key, rank: usize| {
        let shape = shapes.get(&key)?;
        Some(match (shape.len() == rank, shape.first()) {
            (true, Some(&classes)) => Ok(classes),
            _ => Err(inconsistent(
                names,
                key,
                format!("expected a {rank}-D classifier tensor; found shape {shape:?}"),
            )),
        })
    };
    read(Key::HeadWeight, 2)
        .or_else(|| read(Key::HeadBias, 1))
        .unwrap_or_else(|| {
            Err(CheckpointError::MissingKeys {
                keys: names.sorted([Key::HeadWeight, Key::HeadBias]),
            })
        })
}

/// The SE reduction `r` with `⌊width / r⌋ = hidden` for every block that has SE keys, or `None`
/// without SE. Blocks without SE keys are left to the missing-key check.
fn se_reduction(
    shapes: &Shapes,
    names: FileNames,
    widths: &[(BlockId, usize)],
) -> Result<Option<usize>, CheckpointError> {
    // Inclusive range of r values consistent with every block seen so far.
    let mut range: Option<(usize, usize)> = None;
    for &(id, width) in widths {
        let Some((key, hidden)) = se_hidden(shapes, names, id)? else {
            continue;
        };
        if hidden == 0 || hidden > width {
            return Err(inconsistent(
                names,
                key,
                format!("SE hidden width {hidden} must be between 1 and the block width {width}"),
            ));
        }
        // ⌊w / r⌋ = h  ⇔  w / (h + 1) < r ≤ w / h.
        let lo = (width as u128 / (hidden as u128 + 1)) as usize + 1;
        let hi = width / hidden;
        let (lo, hi) = range.map_or((lo, hi), |(l, h)| (l.max(lo), h.min(hi)));
        if lo > hi {
            return Err(inconsistent(
                names,
                key,
                format!(
                    "no single SE reduction r gives hidden = ⌊width / r⌋ for every block \
                     (this block: width {width}, hidden {hidden})"
                ),
            ));
        }
        range = Some((lo, hi));
    }
    Ok(range.map(|(_, hi)| hi))
}

/// `(key, hidden)` of a block's SE, from the first of its tensors present.
fn se_hidden(
    shapes: &Shapes,
    names: FileNames,
    id: BlockId,
) -> Result<Option<(Key, usize)>, CheckpointError> {
    // (slot, rank, axis that holds the hidden width)
    let sources = [
        (Slot::SeDownWeight, 4, 0),
        (Slot::SeDownBias, 1, 0),
        (Slot::SeUpWeight, 4, 1),
    ];
    for (slot, rank, axis) in sources {
        let key = Key::Block(id, slot);
        if let Some(shape) = shapes.get(&key) {
            return match shape.get(axis) {
                Some(&hidden) if shape.len() == rank => Ok(Some((key, hidden))),
                _ => Err(inconsistent(
                    names,
                    key,
                    format!("expected a {rank}-D SE tensor; found shape {shape:?}"),
                )),
            };
        }
    }
    Ok(None)
}

/// Checks the inferred architecture against the one asked for; the error names the first block
/// (in execution order) that differs, by its conv weight key.
pub(crate) fn check_matches(
    found: &Config,
    wanted: &Config,
    form: Form,
    names: FileNames,
) -> Result<(), CheckpointError> {
    let (have, want) = (found.blocks(), wanted.blocks());
    let mismatch = |spec: &BlockSpec, reason: String| CheckpointError::ConfigMismatch {
        key: names.of(main_key(BlockId::of(spec), form)),
        reason,
    };
    for i in 0..have.len().max(want.len()) {
        match (have.get(i), want.get(i)) {
            (Some(a), Some(b)) if a == b => {}
            (Some(a), Some(b)) => {
                return Err(mismatch(
                    a,
                    format!(
                        "the checkpoint has {}, config `{}` has {}",
                        describe(a, names),
                        wanted.name,
                        describe(b, names)
                    ),
                ));
            }
            (Some(a), None) => {
                return Err(mismatch(
                    a,
                    format!(
                        "the checkpoint has {}, config `{}` has only {} blocks",
                        describe(a, names),
                        wanted.name,
                        want.len()
                    ),
                ));
            }
            (None, Some(b)) => {
                return Err(mismatch(
                    b,
                    format!(
                        "config `{}` needs {}, the checkpoint has only {} blocks",
                        wanted.name,
                        describe(b, names),
                        have.len()
                    ),
                ));
            }
            (None, None) => break,
        }
    }
    if found.num_classes != wanted.num_classes {
        return Err(CheckpointError::ConfigMismatch {
            key: names.of(Key::HeadWeight),
            reason: format!(
                "the checkpoint has {} classes, config `{}` has {}",
                found.num_classes, wanted.name, wanted.num_classes
            ),
        });
    }
    Ok(())
}

fn describe(spec: &BlockSpec, names: FileNames) -> String {
    let se = spec
        .se_hidden
        .map_or(String::new(), |h| format!(", SE hidden {h}"));
    format!(
        "block `{}` with {} -> {} channels, stride {}, groups {}{se}",
        BlockId::of(spec).prefix(names.naming),
        spec.in_channels,
        spec.out_channels,
        spec.stride,
        spec.groups
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::Naming;
    use crate::checkpoint::layout::layout;

    const NAMES: FileNames = FileNames {
        naming: Naming::Timm,
        prefix: "",
    };

    fn shapes_of(config: &Config, form: Form) -> Shapes {
        layout(config, form)
            .into_iter()
            .map(|e| (e.key, e.shape))
            .collect()
    }

    #[test]
    fn infers_official_and_custom_configs() {
        for name in ["A0", "B1g4", "D2se"] {
            let config = Config::official(name).unwrap();
            for form in [Form::MultiBranch, Form::Plain] {
                let inferred = infer(&shapes_of(&config, form), form, NAMES).unwrap();
                assert_eq!(inferred.blocks(), config.blocks(), "{name}");
                assert_eq!(inferred.se_reduction, config.se_reduction, "{name}");
                check_matches(&inferred, &config, form, NAMES).unwrap();
            }
        }
    }

    #[test]
    fn se_reduction_is_the_largest_consistent_ratio() {
        // width 12, hidden 2: r ∈ {5, 6}; width 24, hidden 4: r ∈ {5, 6}; → 6.
        let config = Config::custom(12, vec![StageConfig::dense(24, 2)], 3, Some(6)).unwrap();
        let inferred = infer(&shapes_of(&config, Form::Plain), Form::Plain, NAMES).unwrap();
        assert_eq!(inferred.se_reduction, Some(6));
        let config = Config::custom(12, vec![StageConfig::dense(24, 2)], 3, Some(5)).unwrap();
        let inferred = infer(&shapes_of(&config, Form::Plain), Form::Plain, NAMES).unwrap();
        assert_eq!(inferred.blocks(), config.blocks());
    }

    #[test]
    fn mismatch_names_the_first_differing_block() {
        let a0 = Config::official("A0").unwrap();
        let a1 = Config::official("A1").unwrap();
        let err = check_matches(&a0, &a1, Form::MultiBranch, NAMES).unwrap_err();
        assert!(
            matches!(&err, CheckpointError::ConfigMismatch { key, .. } if key == "stem.conv_kxk.conv.weight"),
            "{err}"
        );
        let b0 = Config::official("B0").unwrap();
        let err = check_matches(&a1, &b0, Form::Plain, NAMES).unwrap_err();
        assert!(
            matches!(&err, CheckpointError::ConfigMismatch { key, .. } if key == "stages.1.0.reparam_conv.weight"),
            "{err}"
        );
    }
}
