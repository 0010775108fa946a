//! Structural checks of both network forms, shared by graph construction and the fold.
//!
//! A net passes when its config is valid, its blocks match `config.blocks()` one to one, every
//! tensor has the shape its block's spec implies, every value is finite and every batch norm has
//! a finite, non-negative ε. Errors name the block (official key prefix, e.g. `stage2.1`) and
//! the offending field, so a malformed net fails here with a typed error instead of deep inside
//! a kernel.

use crate::config::{BlockSpec, Config};
use crate::error::Error;
use crate::net::{Head, PlainBlock, PlainNet, SeWeights, TrainBlock, TrainNet};
use reparam_tensor::BatchNorm;
use reparam_tensor::{Shape, Tensor, TensorError};

/// An [`Error::Tensor`] naming `field` and, in the reason, the block `name` (its official key
/// prefix such as `stage2.1`, or `head`).
pub(crate) fn block_error(name: &str, field: &'static str, reason: impl AsRef<str>) -> Error {
    Error::Tensor(TensorError::invalid(
        field,
        format!("`{name}`: {}", reason.as_ref()),
    ))
}

/// Checks a training-form net (see the [module docs](self)).
pub(crate) fn train_net(net: &TrainNet) -> Result<(), Error> {
    block_specs(&net.config, net.blocks.iter().map(|b| b.spec))?;
    net.blocks.iter().try_for_each(train_block)?;
    head(&net.head, &net.config)
}

/// Checks a deploy-form net (see the [module docs](self)).
pub(crate) fn plain_net(net: &PlainNet) -> Result<(), Error> {
    block_specs(&net.config, net.blocks.iter().map(|b| b.spec))?;
    net.blocks.iter().try_for_each(plain_block)?;
    head(&net.head, &net.config)
}

/// Checks one training-form block against its own spec.
pub(crate) fn train_block(block: &TrainBlock) -> Result<(), Error> {
    let spec = &block.spec;
    let name = spec.official_prefix();
    block_spec(&name, spec)?;
    tensor(
        &name,
        "dense.weight",
        &block.dense.weight,
        spec.conv3x3().weight_shape(),
    )?;
    batch_norm(&name, "dense.bn", &block.dense.bn, spec.out_channels)?;
    tensor(
        &name,
        "pointwise.weight",
        &block.pointwise.weight,
        spec.conv1x1().weight_shape(),
    )?;
    batch_norm(
        &name,
        "pointwise.bn",
        &block.pointwise.bn,
        spec.out_channels,
    )?;
    match (&block.identity, spec.identity) {
        (Some(bn), true) => batch_norm(&name, "identity", bn, spec.out_channels)?,
        (None, false) => {}
        (Some(_), false) => {
            return Err(block_error(
                &name,
                "identity",
                "has identity-branch weights but its spec has no identity branch",
            ));
        }
        (None, true) => {
            return Err(block_error(
                &name,
                "identity",
                "is missing its identity branch",
            ));
        }
    }
    squeeze_excite(&name, block.se.as_ref(), spec)
}

/// Checks one deploy-form block against its own spec.
pub(crate) fn plain_block(block: &PlainBlock) -> Result<(), Error> {
    let spec = &block.spec;
    let name = spec.official_prefix();
    block_spec(&name, spec)?;
    tensor(
        &name,
        "weight",
        &block.weight,
        spec.conv3x3().weight_shape(),
    )?;
    vector(&name, "bias", &block.bias, spec.out_channels)?;
    squeeze_excite(&name, block.se.as_ref(), spec)
}

/// The conv geometry is valid and the identity flag is what the channels and stride imply.
fn block_spec(name: &str, spec: &BlockSpec) -> Result<(), Error> {
    spec.conv3x3()
        .validate()
        .map_err(|e| block_error(name, "spec", e.to_string()))?;
    let implied = spec.in_channels == spec.out_channels && spec.stride == 1;
    if spec.identity != implied {
        return Err(block_error(
            name,
            "spec",
            format!(
                "identity flag {} but C_in {} -> C_out {} with stride {} implies {implied}",
                spec.identity, spec.in_channels, spec.out_channels, spec.stride
            ),
        ));
    }
    Ok(())
}

/// Validates the config and checks that `specs` equals `config.blocks()`.
fn block_specs(
    config: &Config,
    specs: impl ExactSizeIterator<Item = BlockSpec>,
) -> Result<(), Error> {
    config.validate()?;
    let expected = config.blocks();
    if specs.len() != expected.len() {
        return Err(Error::Tensor(TensorError::invalid(
            "blocks",
            format!(
                "the net has {} blocks but its config `{}` describes {}",
                specs.len(),
                config.name,
                expected.len()
            ),
        )));
    }
    for (spec, want) in specs.zip(&expected) {
        if spec != *want {
            return Err(block_error(
                &want.official_prefix(),
                "spec",
                format!("spec {spec:?} differs from the config's {want:?}"),
            ));
        }
    }
    Ok(())
}

fn tensor(name: &str, field: &'static str, t: &Tensor, shape: Shape) -> Result<(), Error> {
    if t.shape() != shape {
        return Err(block_error(
            name,
            field,
            format!("shape {:?}, expected {shape:?}", t.shape()),
        ));
    }
    finite(name, field, "tensor", t.data())
}

fn vector(name: &str, field: &'static str, v: &[f32], len: usize) -> Result<(), Error> {
    if v.len() != len {
        return Err(block_error(
            name,
            field,
            format!("length {}, expected {len}", v.len()),
        ));
    }
    finite(name, field, "vector", v)
}

/// Rejects NaN and ±∞, naming the block, the field and the element.
pub(crate) fn finite(
    name: &str,
    field: &'static str,
    what: &str,
    data: &[f32],
) -> Result<(), Error> {
    match data.iter().position(|v| !v.is_finite()) {
        None => Ok(()),
        Some(i) => Err(block_error(
            name,
            field,
            format!("element {i} of {what} is not finite ({})", data[i]),
        )),
    }
}

fn batch_norm(
    name: &str,
    field: &'static str,
    bn: &BatchNorm,
    channels: usize,
) -> Result<(), Error> {
    for (what, v) in [
        ("gamma", &bn.gamma),
        ("beta", &bn.beta),
        ("running_mean", &bn.mean),
        ("running_var", &bn.var),
    ] {
        if v.len() != channels {
            return Err(block_error(
                name,
                field,
                format!("{what} has length {}, expected {channels}", v.len()),
            ));
        }
        finite(name, field, what, v)?;
    }
    if !(bn.eps.is_finite() && bn.eps >= 0.0) {
        return Err(block_error(
            name,
            field,
            format!("eps {} is not a finite non-negative number", bn.eps),
        ));
    }
    Ok(())
}

fn squeeze_excite(name: &str, se: Option<&SeWeights>, spec: &BlockSpec) -> Result<(), Error> {
    match (se, spec.se_hidden) {
        (None, None) => Ok(()),
        (Some(se), Some(hidden)) => {
            let c = spec.out_channels;
            tensor(name, "se.down_weight", &se.down_weight, [hidden, c, 1, 1])?;
            vector(name, "se.down_bias", &se.down_bias, hidden)?;
            tensor(name, "se.up_weight", &se.up_weight, [c, hidden, 1, 1])?;
            vector(name, "se.up_bias", &se.up_bias, c)
        }
        (Some(_), None) => Err(block_error(
            name,
            "se",
            "has squeeze-excitation weights but its config has no SE",
        )),
        (None, Some(_)) => Err(block_error(
            name,
            "se",
            "is missing its squeeze-excitation weights",
        )),
    }
}

fn head(head: &Head, config: &Config) -> Result<(), Error> {
    let classes = config.num_classes;
    tensor(
        "head",
        "head.weight",
        &head.weight,
        [classes, config.feature_width(), 1, 1],
    )?;
    vector("head", "head.bias", &head.bias, classes)
}
