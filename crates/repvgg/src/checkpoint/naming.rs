//! The one place that knows key names (`docs/repvgg.md#checkpoint-keys`).
//!
//! A key is `{block prefix}.{module}.{tensor}` or `{head}.{weight|bias}`:
//!
//! | what                 | official                  | timm                      |
//! |----------------------|---------------------------|---------------------------|
//! | stem prefix          | `stage0`                  | `stem`                    |
//! | block prefix (k ≥ 1) | `stage{k}.{j}`            | `stages.{k-1}.{j}`        |
//! | 3x3 conv + BN        | `rbr_dense.conv/bn`       | `conv_kxk.conv/bn`        |
//! | 1x1 conv + BN        | `rbr_1x1.conv/bn`         | `conv_1x1.conv/bn`        |
//! | identity BN          | `rbr_identity`            | `identity`                |
//! | deployed conv        | `rbr_reparam`             | `reparam_conv`            |
//! | SE down / up         | `se.down` / `se.up`       | `attn.fc1` / `attn.fc2`   |
//! | classifier           | `linear`                  | `head.fc`                 |
//!
//! Parsing is the inverse of rendering: a string is a key only if rendering the parsed key gives
//! the same string back, so `stage01.…` or `stages.+0.…` are not keys.

use super::Naming;

/// Module names of one scheme.
struct Modules {
    stem: &'static str,
    dense: &'static str,
    pointwise: &'static str,
    identity: &'static str,
    reparam: &'static str,
    se_down: &'static str,
    se_up: &'static str,
    head: &'static str,
}

const OFFICIAL: Modules = Modules {
    stem: "stage0",
    dense: "rbr_dense",
    pointwise: "rbr_1x1",
    identity: "rbr_identity",
    reparam: "rbr_reparam",
    se_down: "se.down",
    se_up: "se.up",
    head: "linear",
};

const TIMM: Modules = Modules {
    stem: "stem",
    dense: "conv_kxk",
    pointwise: "conv_1x1",
    identity: "identity",
    reparam: "reparam_conv",
    se_down: "attn.fc1",
    se_up: "attn.fc2",
    head: "head.fc",
};

fn modules(naming: Naming) -> &'static Modules {
    match naming {
        Naming::Official => &OFFICIAL,
        Naming::Timm => &TIMM,
    }
}

/// A block position: stage 0 is the stem (index 0); stage `k ≥ 1` is official `stage{k}`, timm
/// `stages.{k-1}` (the numbering of [`crate::config::BlockSpec::stage`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct BlockId {
    pub(crate) stage: usize,
    pub(crate) index: usize,
}

impl BlockId {
    /// The stem.
    pub(crate) const STEM: Self = Self { stage: 0, index: 0 };

    /// `stage0` / `stage{k}.{j}` or `stem` / `stages.{k-1}.{j}`.
    pub(crate) fn prefix(self, naming: Naming) -> String {
        match (self.stage, naming) {
            (0, _) => modules(naming).stem.to_string(),
            (k, Naming::Official) => format!("stage{k}.{}", self.index),
            (k, Naming::Timm) => format!("stages.{}.{}", k - 1, self.index),
        }
    }
}

/// The two conv + BN branches of a training-time block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Branch {
    /// The 3x3 branch.
    Dense,
    /// The 1x1 branch.
    Pointwise,
}

/// The tensors of a PyTorch `BatchNorm2d`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum BnField {
    /// γ.
    Weight,
    /// β.
    Bias,
    /// μ.
    RunningMean,
    /// σ².
    RunningVar,
    /// The training step counter; accepted in any dtype and ignored.
    NumBatchesTracked,
}

impl BnField {
    /// The four tensors a batch norm needs, in state-dict order.
    pub(crate) const PARAMS: [Self; 4] = [
        Self::Weight,
        Self::Bias,
        Self::RunningMean,
        Self::RunningVar,
    ];

    fn name(self) -> &'static str {
        match self {
            Self::Weight => "weight",
            Self::Bias => "bias",
            Self::RunningMean => "running_mean",
            Self::RunningVar => "running_var",
            Self::NumBatchesTracked => "num_batches_tracked",
        }
    }
}

/// One tensor of a block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Slot {
    /// `{branch}.conv.weight`.
    Conv(Branch),
    /// `{branch}.bn.{field}`.
    Bn(Branch, BnField),
    /// `{identity}.{field}`.
    Identity(BnField),
    /// `{reparam}.weight`.
    ReparamWeight,
    /// `{reparam}.bias`.
    ReparamBias,
    /// `{se_down}.weight`.
    SeDownWeight,
    /// `{se_down}.bias`.
    SeDownBias,
    /// `{se_up}.weight`.
    SeUpWeight,
    /// `{se_up}.bias`.
    SeUpBias,
}

impl Slot {
    /// Every slot, for parsing.
    const ALL: [Self; 23] = {
        use BnField::*;
        use Branch::*;
        [
            Self::Conv(Dense),
            Self::Bn(Dense, Weight),
            Self::Bn(Dense, Bias),
            Self::Bn(Dense, RunningMean),
            Self::Bn(Dense, RunningVar),
            Self::Bn(Dense, NumBatchesTracked),
            Self::Conv(Pointwise),
            Self::Bn(Pointwise, Weight),
            Self::Bn(Pointwise, Bias),
            Self::Bn(Pointwise, RunningMean),
            Self::Bn(Pointwise, RunningVar),
            Self::Bn(Pointwise, NumBatchesTracked),
            Self::Identity(Weight),
            Self::Identity(Bias),
            Self::Identity(RunningMean),
            Self::Identity(RunningVar),
            Self::Identity(NumBatchesTracked),
            Self::ReparamWeight,
            Self::ReparamBias,
            Self::SeDownWeight,
            Self::SeDownBias,
            Self::SeUpWeight,
            Self::SeUpBias,
        ]
    };

    fn suffix(self, m: &Modules) -> String {
        let branch = |b| match b {
            Branch::Dense => m.dense,
            Branch::Pointwise => m.pointwise,
        };
        match self {
            Self::Conv(b) => format!("{}.conv.weight", branch(b)),
            Self::Bn(b, f) => format!("{}.bn.{}", branch(b), f.name()),
            Self::Identity(f) => format!("{}.{}", m.identity, f.name()),
            Self::ReparamWeight => format!("{}.weight", m.reparam),
            Self::ReparamBias => format!("{}.bias", m.reparam),
            Self::SeDownWeight => format!("{}.weight", m.se_down),
            Self::SeDownBias => format!("{}.bias", m.se_down),
            Self::SeUpWeight => format!("{}.weight", m.se_up),
            Self::SeUpBias => format!("{}.bias", m.se_up),
        }
    }

    /// The BN step counter, which carries no weights.
    pub(crate) fn is_batch_counter(self) -> bool {
        matches!(
            self,
            Self::Bn(_, BnField::NumBatchesTracked) | Self::Identity(BnField::NumBatchesTracked)
        )
    }

    /// A tensor of the training-time branches (3x3, 1x1, identity).
    pub(crate) fn is_train_branch(self) -> bool {
        matches!(self, Self::Conv(_) | Self::Bn(..) | Self::Identity(_))
    }

    /// A tensor of the deployed conv.
    pub(crate) fn is_reparam(self) -> bool {
        matches!(self, Self::ReparamWeight | Self::ReparamBias)
    }
}

/// A state-dict key, independent of the naming scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Key {
    /// A tensor of a block.
    Block(BlockId, Slot),
    /// Classifier weight `[classes, features]`.
    HeadWeight,
    /// Classifier bias `[classes]`.
    HeadBias,
}

impl Key {
    /// The block the key belongs to, if any.
    pub(crate) fn block(self) -> Option<BlockId> {
        match self {
            Self::Block(id, _) => Some(id),
            _ => None,
        }
    }

    /// The slot within its block, if any.
    pub(crate) fn slot(self) -> Option<Slot> {
        match self {
            Self::Block(_, slot) => Some(slot),
            _ => None,
        }
    }

    /// The key string in `naming` (without any `module.` prefix).
    pub(crate) fn render(self, naming: Naming) -> String {
        let m = modules(naming);
        match self {
            Self::Block(id, slot) => format!("{}.{}", id.prefix(naming), slot.suffix(m)),
            Self::HeadWeight => format!("{}.weight", m.head),
            Self::HeadBias => format!("{}.bias", m.head),
        }
    }

    /// Parses a key string (without any `module.` prefix) in `naming`.
    pub(crate) fn parse(name: &str, naming: Naming) -> Option<Self> {
        let key = Self::parse_loose(name, naming)?;
        (key.render(naming) == name).then_some(key)
    }

    /// Parses without the canonical-form check (`render` rejects what this accepts loosely).
    fn parse_loose(name: &str, naming: Naming) -> Option<Self> {
        let m = modules(naming);
        if let Some(field) = name
            .strip_prefix(m.head)
            .and_then(|rest| rest.strip_prefix('.'))
        {
            return match field {
                "weight" => Some(Self::HeadWeight),
                "bias" => Some(Self::HeadBias),
                _ => None,
            };
        }
        let (id, rest) = parse_block_prefix(name, naming)?;
        let slot = Slot::ALL.into_iter().find(|s| s.suffix(m) == rest)?;
        Some(Self::Block(id, slot))
    }
}

/// Renders keys as one file spells them: its scheme plus its optional `module.` prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FileNames {
    pub(crate) naming: Naming,
    pub(crate) prefix: &'static str,
}

impl FileNames {
    /// The full key string.
    pub(crate) fn of(self, key: Key) -> String {
        format!("{}{}", self.prefix, key.render(self.naming))
    }

    /// The full key strings, sorted.
    pub(crate) fn sorted(self, keys: impl IntoIterator<Item = Key>) -> Vec<String> {
        let mut names: Vec<String> = keys.into_iter().map(|k| self.of(k)).collect();
        names.sort();
        names
    }
}

/// Splits `stage0.` / `stage{k}.{j}.` or `stem.` / `stages.{s}.{j}.` off `name`.
fn parse_block_prefix(name: &str, naming: Naming) -> Option<(BlockId, &str)> {
    let number = |s: &str| s.parse::<usize>().ok();
    match naming {
        Naming::Official => {
            let (stage, rest) = name.strip_prefix("stage")?.split_once('.')?;
            match number(stage)? {
                0 => Some((BlockId::STEM, rest)),
                stage => {
                    let (index, rest) = rest.split_once('.')?;
                    Some((
                        BlockId {
                            stage,
                            index: number(index)?,
                        },
                        rest,
                    ))
                }
            }
        }
        Naming::Timm => {
            if let Some(rest) = name.strip_prefix("stem.") {
                return Some((BlockId::STEM, rest));
            }
            let (stage, rest) = name.strip_prefix("stages.")?.split_once('.')?;
            let (index, rest) = rest.split_once('.')?;
            Some((
                BlockId {
                    stage: number(stage)?.checked_add(1)?,
                    index: number(index)?,
                },
                rest,
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAMINGS: [Naming; 2] = [Naming::Official, Naming::Timm];

    #[test]
    fn every_key_round_trips_in_both_namings() {
        let ids = [
            BlockId::STEM,
            BlockId { stage: 1, index: 0 },
            BlockId {
                stage: 3,
                index: 13,
            },
        ];
        let mut keys = vec![Key::HeadWeight, Key::HeadBias];
        for id in ids {
            keys.extend(Slot::ALL.map(|slot| Key::Block(id, slot)));
        }
        for naming in NAMINGS {
            let mut seen = std::collections::HashSet::new();
            for key in &keys {
                let name = key.render(naming);
                assert!(seen.insert(name.clone()), "duplicate {name}");
                assert_eq!(Key::parse(&name, naming), Some(*key), "{name}");
                let other = if naming == Naming::Official {
                    Naming::Timm
                } else {
                    Naming::Official
                };
                assert_eq!(Key::parse(&name, other), None, "{name} parses in both");
            }
        }
    }

    #[test]
    fn the_documented_examples() {
        let k = |s, i, slot| Key::Block(BlockId { stage: s, index: i }, slot);
        let official = [
            (
                "stage0.rbr_dense.conv.weight",
                k(0, 0, Slot::Conv(Branch::Dense)),
            ),
            (
                "stage1.0.rbr_1x1.bn.running_var",
                k(1, 0, Slot::Bn(Branch::Pointwise, BnField::RunningVar)),
            ),
            (
                "stage1.1.rbr_identity.weight",
                k(1, 1, Slot::Identity(BnField::Weight)),
            ),
            ("stage0.rbr_reparam.bias", k(0, 0, Slot::ReparamBias)),
            ("stage4.0.se.up.weight", k(4, 0, Slot::SeUpWeight)),
            ("linear.weight", Key::HeadWeight),
        ];
        let timm = [
            (
                "stem.conv_kxk.conv.weight",
                k(0, 0, Slot::Conv(Branch::Dense)),
            ),
            (
                "stages.0.0.conv_1x1.bn.bias",
                k(1, 0, Slot::Bn(Branch::Pointwise, BnField::Bias)),
            ),
            (
                "stages.0.1.identity.running_mean",
                k(1, 1, Slot::Identity(BnField::RunningMean)),
            ),
            ("stem.reparam_conv.weight", k(0, 0, Slot::ReparamWeight)),
            ("stages.2.5.attn.fc1.bias", k(3, 5, Slot::SeDownBias)),
            ("head.fc.bias", Key::HeadBias),
        ];
        for (name, key) in official {
            assert_eq!(Key::parse(name, Naming::Official), Some(key), "{name}");
        }
        for (name, key) in timm {
            assert_eq!(Key::parse(name, Naming::Timm), Some(key), "{name}");
        }
    }

    #[test]
    fn non_canonical_strings_are_not_keys() {
        for (name, naming) in [
            ("stage01.0.rbr_dense.conv.weight", Naming::Official),
            ("stage1.+0.rbr_dense.conv.weight", Naming::Official),
            ("stage0.0.rbr_dense.conv.weight", Naming::Official),
            ("stage1.rbr_dense.conv.weight", Naming::Official),
            ("stages.00.0.conv_kxk.conv.weight", Naming::Timm),
            (
                "stages.18446744073709551615.0.conv_kxk.conv.weight",
                Naming::Timm,
            ),
            (
                "stages.99999999999999999999999.0.conv_kxk.conv.weight",
                Naming::Timm,
            ),
            ("stem.conv_kxk.conv.bias", Naming::Timm),
            ("head.fc.weight.", Naming::Timm),
            ("linear.running_mean", Naming::Official),
            ("", Naming::Timm),
        ] {
            assert_eq!(Key::parse(name, naming), None, "{name}");
        }
    }
}
