//! The loading pipeline: the steps listed in the [module docs](super), in order.

use super::infer::{self, Shapes};
use super::layout::{self, Entry};
use super::naming::{FileNames, Key};
use super::pth::{self, RawTensor};
use super::read::{self, Values};
use super::{Checkpoint, Form, LoadOptions, Loaded, detect};
use crate::config::Config;
use crate::error::CheckpointError;
use safetensors::{Dtype, SafeTensors};
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};

/// The tensors of a file by key.
type Tensors<'a> = BTreeMap<Key, RawTensor<'a>>;

/// Loads a checkpoint; see [`super::load_bytes`].
pub(crate) fn load(bytes: &[u8], options: &LoadOptions) -> Result<Loaded, CheckpointError> {
    let named = if pth::is_zip(bytes) {
        pth::tensors(bytes)?
    } else {
        SafeTensors::deserialize(bytes)?
            .tensors()
            .into_iter()
            .map(|(name, view)| {
                let raw = RawTensor {
                    dtype: view.dtype(),
                    shape: view.shape().to_vec(),
                    data: Cow::Borrowed(view.data()),
                };
                (name, raw)
            })
            .collect()
    };
    let (names, tensors) = parse_keys(named)?;
    let form = detect::form(tensors.keys().copied(), names)?;
    let config = resolve_config(&tensors, form, names, options.config.as_ref())?;
    let entries = layout::layout(&config, form);
    check_key_set(&entries, &tensors, names)?;
    let values = Values::new(
        read_values(entries, &tensors, names)?,
        names,
        options.bn_eps,
    );
    let net = match form {
        Form::MultiBranch => Checkpoint::Train(values.train_net(config)?),
        Form::Plain => Checkpoint::Deploy(values.plain_net(config)?),
    };
    Ok(Loaded {
        net,
        naming: names.naming,
    })
}

/// Detects prefix and scheme, and parses every key; a key of neither scheme is unexpected.
fn parse_keys(
    mut views: Vec<(String, RawTensor<'_>)>,
) -> Result<(FileNames, Tensors<'_>), CheckpointError> {
    views.sort_by(|a, b| a.0.cmp(&b.0));
    let prefix = detect::ddp_prefix(views.iter().map(|(n, _)| n.as_str()))?;
    let strip = |name: &str| name.get(prefix.len()..).unwrap_or_default().to_string();
    let stripped: Vec<String> = views.iter().map(|(n, _)| strip(n)).collect();
    let naming = detect::naming(stripped.iter().map(String::as_str))?;
    let mut tensors = Tensors::new();
    let mut unknown = Vec::new();
    for ((name, view), short) in views.into_iter().zip(&stripped) {
        match Key::parse(short, naming) {
            Some(key) => {
                tensors.insert(key, view);
            }
            None => unknown.push(name),
        }
    }
    if !unknown.is_empty() {
        return Err(CheckpointError::UnexpectedKeys { keys: unknown });
    }
    Ok((FileNames { naming, prefix }, tensors))
}

/// The inferred architecture, or the requested one after checking that they agree.
fn resolve_config(
    tensors: &Tensors<'_>,
    form: Form,
    names: FileNames,
    wanted: Option<&Config>,
) -> Result<Config, CheckpointError> {
    let shapes: Shapes = tensors
        .iter()
        .map(|(key, view)| (*key, view.shape.clone()))
        .collect();
    let found = infer::infer(&shapes, form, names)?;
    match wanted {
        Some(wanted) => {
            wanted.validate()?;
            infer::check_matches(&found, wanted, form, names)?;
            Ok(wanted.clone())
        }
        None => Ok(found),
    }
}

/// Exactly the keys of the layout, plus optional `num_batches_tracked`.
fn check_key_set(
    entries: &[Entry],
    tensors: &Tensors<'_>,
    names: FileNames,
) -> Result<(), CheckpointError> {
    let required: HashSet<Key> = entries.iter().map(|e| e.key).collect();
    let missing: Vec<Key> = entries
        .iter()
        .map(|e| e.key)
        .filter(|k| !tensors.contains_key(k))
        .collect();
    if !missing.is_empty() {
        return Err(CheckpointError::MissingKeys {
            keys: names.sorted(missing),
        });
    }
    let unexpected: Vec<Key> = tensors
        .keys()
        .copied()
        .filter(|k| !required.contains(k) && !layout::is_optional(*k, &required))
        .collect();
    if !unexpected.is_empty() {
        return Err(CheckpointError::UnexpectedKeys {
            keys: names.sorted(unexpected),
        });
    }
    Ok(())
}

/// Dtype, shape and values of every tensor of the layout, in layout order, converted to f32.
fn read_values(
    entries: Vec<Entry>,
    tensors: &Tensors<'_>,
    names: FileNames,
) -> Result<HashMap<Key, Vec<f32>>, CheckpointError> {
    let mut values = HashMap::with_capacity(entries.len());
    for Entry { key, shape } in entries {
        let name = names.of(key);
        let Some(view) = tensors.get(&key) else {
            return Err(CheckpointError::MissingKeys { keys: vec![name] });
        };
        let dtype = view.dtype;
        if !matches!(dtype, Dtype::F32 | Dtype::F16 | Dtype::BF16) {
            return Err(CheckpointError::UnsupportedDtype {
                key: name,
                dtype: dtype.to_string(),
            });
        }
        if view.shape != shape {
            return Err(CheckpointError::WrongShape {
                key: name,
                expected: shape,
                actual: view.shape.clone(),
            });
        }
        let data = read::to_f32(&name, dtype, &view.data)?;
        read::check_values(&name, key, &data)?;
        values.insert(key, data);
    }
    Ok(values)
}
