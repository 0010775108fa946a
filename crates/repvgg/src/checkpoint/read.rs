//! Tensor values: dtype conversion to f32, value checks, and assembly of the two net types from
//! checked values.

use super::layout::conv_shape;
use super::naming::{BlockId, BnField, Branch, FileNames, Key, Slot};
use crate::config::{BlockSpec, Config};
use crate::error::CheckpointError;
use crate::net::{ConvBn, Head, PlainBlock, PlainNet, SeWeights, TrainBlock, TrainNet};
use reparam_tensor::BatchNorm;
use reparam_tensor::Tensor;
use safetensors::Dtype;
use std::collections::HashMap;

/// Converts little-endian F32, F16 or BF16 bytes (a safetensors view's data) to f32, with the
/// `half` crate for the 16-bit formats; any other dtype is an error naming `name`.
pub fn to_f32(name: &str, dtype: Dtype, bytes: &[u8]) -> Result<Vec<f32>, CheckpointError> {
    match dtype {
        Dtype::F32 => Ok(bytes
            .as_chunks::<4>()
            .0
            .iter()
            .map(|b| f32::from_le_bytes(*b))
            .collect()),
        Dtype::F16 => Ok(bytes
            .as_chunks::<2>()
            .0
            .iter()
            .map(|b| half::f16::from_le_bytes(*b).to_f32())
            .collect()),
        Dtype::BF16 => Ok(bytes
            .as_chunks::<2>()
            .0
            .iter()
            .map(|b| half::bf16::from_le_bytes(*b).to_f32())
            .collect()),
        other => Err(CheckpointError::UnsupportedDtype {
            key: name.to_string(),
            dtype: other.to_string(),
        }),
    }
}

/// Rejects NaN and ±∞; for a running variance also negative values.
pub(crate) fn check_values(name: &str, key: Key, data: &[f32]) -> Result<(), CheckpointError> {
    if let Some((index, &value)) = data.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        return Err(CheckpointError::NonFinite {
            key: name.to_string(),
            index,
            value,
        });
    }
    let is_variance = matches!(
        key.slot(),
        Some(Slot::Bn(_, BnField::RunningVar) | Slot::Identity(BnField::RunningVar))
    );
    if is_variance && let Some((index, &value)) = data.iter().enumerate().find(|(_, v)| **v < 0.0) {
        return Err(CheckpointError::NegativeVariance {
            key: name.to_string(),
            index,
            value,
        });
    }
    Ok(())
}

/// Checked f32 values by key, consumed while building a net.
pub(crate) struct Values {
    map: HashMap<Key, Vec<f32>>,
    names: FileNames,
    eps: f64,
}

impl Values {
    /// Values whose shapes match the layout of the config they will be assembled into.
    pub(crate) fn new(map: HashMap<Key, Vec<f32>>, names: FileNames, eps: f64) -> Self {
        Self { map, names, eps }
    }

    fn take(&mut self, key: Key) -> Result<Vec<f32>, CheckpointError> {
        self.map
            .remove(&key)
            .ok_or_else(|| CheckpointError::MissingKeys {
                keys: vec![self.names.of(key)],
            })
    }

    fn tensor(&mut self, key: Key, shape: [usize; 4]) -> Result<Tensor, CheckpointError> {
        let data = self.take(key)?;
        let len = data.len();
        Tensor::new(shape, data).map_err(|_| CheckpointError::WrongShape {
            key: self.names.of(key),
            expected: shape.to_vec(),
            actual: vec![len],
        })
    }

    fn bn(
        &mut self,
        slot: impl Fn(BnField) -> Slot,
        id: BlockId,
    ) -> Result<BatchNorm, CheckpointError> {
        let mut field = |f| self.take(Key::Block(id, slot(f)));
        Ok(BatchNorm {
            gamma: field(BnField::Weight)?,
            beta: field(BnField::Bias)?,
            mean: field(BnField::RunningMean)?,
            var: field(BnField::RunningVar)?,
            eps: self.eps,
        })
    }

    fn se(&mut self, spec: &BlockSpec) -> Result<Option<SeWeights>, CheckpointError> {
        let Some(hidden) = spec.se_hidden else {
            return Ok(None);
        };
        let id = BlockId::of(spec);
        let c = spec.out_channels;
        Ok(Some(SeWeights {
            down_weight: self.tensor(Key::Block(id, Slot::SeDownWeight), [hidden, c, 1, 1])?,
            down_bias: self.take(Key::Block(id, Slot::SeDownBias))?,
            up_weight: self.tensor(Key::Block(id, Slot::SeUpWeight), [c, hidden, 1, 1])?,
            up_bias: self.take(Key::Block(id, Slot::SeUpBias))?,
        }))
    }

    fn head(&mut self, config: &Config) -> Result<Head, CheckpointError> {
        let shape = [config.num_classes, config.feature_width(), 1, 1];
        Ok(Head {
            weight: self.tensor(Key::HeadWeight, shape)?,
            bias: self.take(Key::HeadBias)?,
        })
    }

    /// Builds the training-time net of `config`.
    pub(crate) fn train_net(mut self, config: Config) -> Result<TrainNet, CheckpointError> {
        let mut blocks = Vec::new();
        for spec in config.blocks() {
            let id = BlockId::of(&spec);
            let mut conv_bn = |branch, kernel| -> Result<ConvBn, CheckpointError> {
                Ok(ConvBn {
                    weight: self.tensor(
                        Key::Block(id, Slot::Conv(branch)),
                        conv_shape(&spec, kernel),
                    )?,
                    bn: self.bn(|f| Slot::Bn(branch, f), id)?,
                })
            };
            let dense = conv_bn(Branch::Dense, 3)?;
            let pointwise = conv_bn(Branch::Pointwise, 1)?;
            let identity = if spec.identity {
                Some(self.bn(Slot::Identity, id)?)
            } else {
                None
            };
            blocks.push(TrainBlock {
                spec,
                dense,
                pointwise,
                identity,
                se: self.se(&spec)?,
            });
        }
        let head = self.head(&config)?;
        Ok(TrainNet {
            config,
            blocks,
            head,
        })
    }

    /// Builds the deployed net of `config`.
    pub(crate) fn plain_net(mut self, config: Config) -> Result<PlainNet, CheckpointError> {
        let mut blocks = Vec::new();
        for spec in config.blocks() {
            let id = BlockId::of(&spec);
            blocks.push(PlainBlock {
                spec,
                weight: self.tensor(Key::Block(id, Slot::ReparamWeight), conv_shape(&spec, 3))?,
                bias: self.take(Key::Block(id, Slot::ReparamBias))?,
                se: self.se(&spec)?,
            });
        }
        let head = self.head(&config)?;
        Ok(PlainNet {
            config,
            blocks,
            head,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_the_three_float_dtypes() {
        let values = [1.5f32, -0.25, 3.0];
        let f32_bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        let f16_bytes: Vec<u8> = values
            .iter()
            .flat_map(|v| half::f16::from_f32(*v).to_le_bytes())
            .collect();
        let bf16_bytes: Vec<u8> = values
            .iter()
            .flat_map(|v| half::bf16::from_f32(*v).to_le_bytes())
            .collect();
        assert_eq!(to_f32("k", Dtype::F32, &f32_bytes).unwrap(), values);
        assert_eq!(to_f32("k", Dtype::F16, &f16_bytes).unwrap(), values);
        assert_eq!(to_f32("k", Dtype::BF16, &bf16_bytes).unwrap(), values);
        assert!(matches!(
            to_f32("k", Dtype::F64, &[0; 8]),
            Err(CheckpointError::UnsupportedDtype { key, dtype }) if key == "k" && dtype == "F64"
        ));
    }

    #[test]
    fn value_checks() {
        let weight = Key::HeadWeight;
        let var = Key::Block(BlockId::STEM, Slot::Bn(Branch::Dense, BnField::RunningVar));
        assert!(check_values("w", weight, &[-1.0, 0.0]).is_ok());
        assert!(matches!(
            check_values("w", weight, &[0.0, f32::INFINITY]),
            Err(CheckpointError::NonFinite { index: 1, .. })
        ));
        assert!(matches!(
            check_values("v", var, &[1.0, 0.0, -0.5]),
            Err(CheckpointError::NegativeVariance { index: 2, .. })
        ));
    }
}
