//! Serialization: every tensor of the layout, as f32, under the keys of one naming scheme.

use super::layout::{Entry, layout, main_key};
use super::naming::{BlockId, BnField, Branch, FileNames, Key, Slot};
use super::{Form, Naming};
use crate::config::{BlockSpec, Config};
use crate::error::CheckpointError;
use crate::net::{Head, PlainBlock, PlainNet, SeWeights, TrainBlock, TrainNet};
use reparam_tensor::BatchNorm;
use reparam_tensor::Tensor;
use safetensors::{Dtype, View};
use std::borrow::Cow;
use std::collections::HashMap;

/// One f32 tensor ready for [`safetensors::serialize`].
struct Stored {
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

impl View for Stored {
    fn dtype(&self) -> Dtype {
        Dtype::F32
    }

    fn shape(&self) -> &[usize] {
        &self.shape
    }

    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.bytes)
    }

    fn data_len(&self) -> usize {
        self.bytes.len()
    }
}

/// A tensor of a net as the file stores it: shape and values.
type Found<'a> = (Vec<usize>, &'a [f32]);

fn tensor(t: &Tensor) -> Found<'_> {
    (t.shape().to_vec(), t.data())
}

fn vector(v: &[f32]) -> Found<'_> {
    (vec![v.len()], v)
}

fn bn_field(bn: &BatchNorm, field: BnField) -> Option<Found<'_>> {
    match field {
        BnField::Weight => Some(vector(&bn.gamma)),
        BnField::Bias => Some(vector(&bn.beta)),
        BnField::RunningMean => Some(vector(&bn.mean)),
        BnField::RunningVar => Some(vector(&bn.var)),
        BnField::NumBatchesTracked => None,
    }
}

fn se_slot(se: Option<&SeWeights>, slot: Slot) -> Option<Found<'_>> {
    let se = se?;
    match slot {
        Slot::SeDownWeight => Some(tensor(&se.down_weight)),
        Slot::SeDownBias => Some(vector(&se.down_bias)),
        Slot::SeUpWeight => Some(tensor(&se.up_weight)),
        Slot::SeUpBias => Some(vector(&se.up_bias)),
        _ => None,
    }
}

fn train_slot(block: &TrainBlock, slot: Slot) -> Option<Found<'_>> {
    let branch = |b| match b {
        Branch::Dense => &block.dense,
        Branch::Pointwise => &block.pointwise,
    };
    match slot {
        Slot::Conv(b) => Some(tensor(&branch(b).weight)),
        Slot::Bn(b, field) => bn_field(&branch(b).bn, field),
        Slot::Identity(field) => bn_field(block.identity.as_ref()?, field),
        _ => se_slot(block.se.as_ref(), slot),
    }
}

fn plain_slot(block: &PlainBlock, slot: Slot) -> Option<Found<'_>> {
    match slot {
        Slot::ReparamWeight => Some(tensor(&block.weight)),
        Slot::ReparamBias => Some(vector(&block.bias)),
        _ => se_slot(block.se.as_ref(), slot),
    }
}

/// The classifier weight `[classes, features, 1, 1]` is stored 2-D.
fn head_slot(head: &Head, key: Key) -> Option<Found<'_>> {
    match key {
        Key::HeadWeight => {
            let (shape, data) = tensor(&head.weight);
            let shape = match *shape.as_slice() {
                [classes, features, 1, 1] => vec![classes, features],
                _ => shape,
            };
            Some((shape, data))
        }
        Key::HeadBias => Some(vector(&head.bias)),
        Key::Block(..) => None,
    }
}

/// Checks that a net's blocks are the blocks of its config, in order.
fn check_specs<'a>(
    config: &Config,
    specs: impl ExactSizeIterator<Item = &'a BlockSpec>,
    form: Form,
    names: FileNames,
) -> Result<(), CheckpointError> {
    let expected = config.blocks();
    let key = |spec: &BlockSpec| names.of(main_key(BlockId::of(spec), form));
    let len = specs.len();
    for (i, (have, want)) in specs.zip(&expected).enumerate() {
        if have != want {
            return Err(CheckpointError::InconsistentArchitecture {
                key: key(want),
                reason: format!("block {i} of the net is {have:?}, its config says {want:?}"),
            });
        }
    }
    if len == expected.len() {
        return Ok(());
    }
    Err(CheckpointError::InconsistentArchitecture {
        key: expected
            .get(len)
            .map_or_else(|| names.of(Key::HeadWeight), key),
        reason: format!("the net has {len} blocks, its config {}", expected.len()),
    })
}

/// Serializes the layout of `config` in `form`, fetching each tensor with `find`.
fn serialize<'a>(
    config: &Config,
    form: Form,
    names: FileNames,
    mut find: impl FnMut(Key) -> Option<Found<'a>>,
) -> Result<Vec<u8>, CheckpointError> {
    let mut stored = Vec::new();
    for Entry { key, shape } in layout(config, form) {
        let name = names.of(key);
        let Some((actual, data)) = find(key) else {
            return Err(CheckpointError::InconsistentArchitecture {
                key: name,
                reason: "the config needs this tensor but the net lacks it (identity or SE \
                         branch absent)"
                    .to_string(),
            });
        };
        if actual != shape {
            return Err(CheckpointError::WrongShape {
                key: name,
                expected: shape,
                actual,
            });
        }
        let bytes = data.iter().flat_map(|v| v.to_le_bytes()).collect();
        stored.push((name, Stored { shape, bytes }));
    }
    Ok(safetensors::serialize(stored, None)?)
}

fn names_for(naming: Naming) -> FileNames {
    FileNames { naming, prefix: "" }
}

/// Serializes a training-time net.
pub(crate) fn train_bytes(net: &TrainNet, naming: Naming) -> Result<Vec<u8>, CheckpointError> {
    let names = names_for(naming);
    net.config.validate()?;
    check_specs(
        &net.config,
        net.blocks.iter().map(|b| &b.spec),
        Form::MultiBranch,
        names,
    )?;
    let blocks: HashMap<BlockId, &TrainBlock> = net
        .blocks
        .iter()
        .map(|b| (BlockId::of(&b.spec), b))
        .collect();
    serialize(&net.config, Form::MultiBranch, names, |key| match key {
        Key::Block(id, slot) => train_slot(blocks.get(&id)?, slot),
        _ => head_slot(&net.head, key),
    })
}

/// Serializes a deployed net.
pub(crate) fn plain_bytes(net: &PlainNet, naming: Naming) -> Result<Vec<u8>, CheckpointError> {
    let names = names_for(naming);
    net.config.validate()?;
    check_specs(
        &net.config,
        net.blocks.iter().map(|b| &b.spec),
        Form::Plain,
        names,
    )?;
    let blocks: HashMap<BlockId, &PlainBlock> = net
        .blocks
        .iter()
        .map(|b| (BlockId::of(&b.spec), b))
        .collect();
    serialize(&net.config, Form::Plain, names, |key| match key {
        Key::Block(id, slot) => plain_slot(blocks.get(&id)?, slot),
        _ => head_slot(&net.head, key),
    })
}
