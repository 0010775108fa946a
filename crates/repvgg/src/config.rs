//! Architectures: every official RepVGG model and custom nets.
//!
//! A RepVGG net is a stem block (index 0, stride 2) followed by stages; every stage starts with a
//! stride-2 block and continues with stride-1 blocks. A block has an identity branch iff
//! `in_channels == out_channels` and `stride == 1`. Official widths are `min(64, ⌊64a⌋)` for the
//! stem and `⌊64a⌋, ⌊128a⌋, ⌊256a⌋, ⌊512b⌋` for the four stages (`docs/repvgg.md#architectures`).

use reparam_tensor::ConvSpec;
use thiserror::Error;

/// Why a configuration is invalid or unknown.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ConfigError {
    /// The model name is not one of [`Config::OFFICIAL_NAMES`].
    #[error("unknown model `{name}`; known models: {}", Config::OFFICIAL_NAMES.join(", "))]
    UnknownModel {
        /// The name given.
        name: String,
    },
    /// A field of a custom configuration is invalid.
    #[error("invalid config field `{field}`: {reason}")]
    Invalid {
        /// The offending field.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
}

/// One stage after the stem: its output width and the groups of each of its blocks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageConfig {
    /// Output channels of every block of the stage.
    pub width: usize,
    /// Groups per block; the length is the stage depth. The first (stride-2) block may be grouped
    /// in custom nets, though no official model does so.
    pub groups: Vec<usize>,
}

impl StageConfig {
    /// A stage of `depth` ungrouped blocks.
    pub fn dense(width: usize, depth: usize) -> Self {
        Self {
            width,
            groups: vec![1; depth],
        }
    }
}

/// A RepVGG architecture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Display name (`RepVGG-A0`, or `custom`).
    pub name: String,
    /// Channels of the input image (3 for every official model).
    pub in_channels: usize,
    /// Output channels of the stem block.
    pub stem_width: usize,
    /// The stages after the stem, in order.
    pub stages: Vec<StageConfig>,
    /// Classes of the linear head.
    pub num_classes: usize,
    /// Squeeze-excitation reduction `r` (D2se: 16): every block, stem included, gets an SE with
    /// `width / r` hidden channels, applied before the block's ReLU. `None` means no SE.
    pub se_reduction: Option<usize>,
}

/// Static description of one block: what [`Config::blocks`] yields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockSpec {
    /// 0 for the stem, `k` for stage `k` (1-based, as in the official `stage{k}` key names).
    pub stage: usize,
    /// Index inside the stage (always 0 for the stem).
    pub index: usize,
    /// Input channels.
    pub in_channels: usize,
    /// Output channels.
    pub out_channels: usize,
    /// 2 for the stem and the first block of each stage, else 1.
    pub stride: usize,
    /// Groups of both convolutions.
    pub groups: usize,
    /// Whether the training-time block has an identity-BN branch (`C_in == C_out` and stride 1).
    pub identity: bool,
    /// Hidden channels of the squeeze-excitation, if the block has one.
    pub se_hidden: Option<usize>,
}

impl BlockSpec {
    /// The 3x3 convolution of the block (padding 1); the deployed conv has exactly this spec.
    pub fn conv3x3(&self) -> ConvSpec {
        ConvSpec::conv3x3(
            self.in_channels,
            self.out_channels,
            self.stride,
            self.groups,
        )
    }

    /// The 1x1 branch of the training-time block (padding 0, same stride and groups).
    pub fn conv1x1(&self) -> ConvSpec {
        ConvSpec::conv1x1(
            self.in_channels,
            self.out_channels,
            self.stride,
            self.groups,
        )
    }

    /// Official key prefix: `stage0` or `stage{k}.{j}`.
    pub fn official_prefix(&self) -> String {
        if self.stage == 0 {
            "stage0".to_string()
        } else {
            format!("stage{}.{}", self.stage, self.index)
        }
    }

    /// timm key prefix: `stem` or `stages.{k-1}.{j}`.
    pub fn timm_prefix(&self) -> String {
        if self.stage == 0 {
            "stem".to_string()
        } else {
            format!("stages.{}.{}", self.stage - 1, self.index)
        }
    }
}

/// Depths of the A, B and D series (stages 1..4, after the stem).
const DEPTHS_A: [usize; 4] = [2, 4, 14, 1];
const DEPTHS_B: [usize; 4] = [4, 6, 16, 1];
const DEPTHS_D: [usize; 4] = [8, 14, 24, 1];

/// Global layer indices that are grouped in the official g2/g4 models (stem = 0).
const GROUPWISE_LAYERS: [usize; 13] = [2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26];

impl Config {
    /// Every official model, in the order of the official `func_dict`.
    pub const OFFICIAL_NAMES: [&'static str; 14] = [
        "A0", "A1", "A2", "B0", "B1", "B1g2", "B1g4", "B2", "B2g2", "B2g4", "B3", "B3g2", "B3g4",
        "D2se",
    ];

    /// An official model by name, case-insensitive, with or without a `RepVGG-` / `repvgg_`
    /// prefix: `a0`, `RepVGG-B1g4`, `repvgg_d2se`.
    pub fn official(name: &str) -> Result<Self, ConfigError> {
        let lower = name.to_ascii_lowercase();
        let short = lower
            .strip_prefix("repvgg-")
            .or_else(|| lower.strip_prefix("repvgg_"))
            .unwrap_or(&lower);
        let canonical = Self::OFFICIAL_NAMES
            .iter()
            .find(|n| n.to_ascii_lowercase() == short)
            .ok_or_else(|| ConfigError::UnknownModel {
                name: name.to_string(),
            })?;
        let (depths, a, b, groups, se) = match *canonical {
            "A0" => (DEPTHS_A, 0.75, 2.5, 1, None),
            "A1" => (DEPTHS_A, 1.0, 2.5, 1, None),
            "A2" => (DEPTHS_A, 1.5, 2.75, 1, None),
            "B0" => (DEPTHS_B, 1.0, 2.5, 1, None),
            "B1" => (DEPTHS_B, 2.0, 4.0, 1, None),
            "B1g2" => (DEPTHS_B, 2.0, 4.0, 2, None),
            "B1g4" => (DEPTHS_B, 2.0, 4.0, 4, None),
            "B2" => (DEPTHS_B, 2.5, 5.0, 1, None),
            "B2g2" => (DEPTHS_B, 2.5, 5.0, 2, None),
            "B2g4" => (DEPTHS_B, 2.5, 5.0, 4, None),
            "B3" => (DEPTHS_B, 3.0, 5.0, 1, None),
            "B3g2" => (DEPTHS_B, 3.0, 5.0, 2, None),
            "B3g4" => (DEPTHS_B, 3.0, 5.0, 4, None),
            _ => (DEPTHS_D, 2.5, 5.0, 1, Some(16)), // D2se
        };
        // int() truncation, as the official constructor does.
        let widths = [
            (64.0 * a) as usize,
            (128.0 * a) as usize,
            (256.0 * a) as usize,
            (512.0 * b) as usize,
        ];
        let mut layer = 1;
        let stages = depths
            .iter()
            .zip(widths)
            .map(|(&depth, width)| {
                let groups = (0..depth)
                    .map(|_| {
                        let g = if GROUPWISE_LAYERS.contains(&layer) {
                            groups
                        } else {
                            1
                        };
                        layer += 1;
                        g
                    })
                    .collect();
                StageConfig { width, groups }
            })
            .collect();
        Ok(Self {
            name: format!("RepVGG-{canonical}"),
            in_channels: 3,
            stem_width: 64.min((64.0 * a) as usize),
            stages,
            num_classes: 1000,
            se_reduction: se,
        })
    }

    /// A custom net; validated by [`Config::validate`].
    pub fn custom(
        stem_width: usize,
        stages: Vec<StageConfig>,
        num_classes: usize,
        se_reduction: Option<usize>,
    ) -> Result<Self, ConfigError> {
        let config = Self {
            name: "custom".to_string(),
            in_channels: 3,
            stem_width,
            stages,
            num_classes,
            se_reduction,
        };
        config.validate()?;
        Ok(config)
    }

    /// Checks widths, depths, groups and the SE reduction; the error names the field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |field, reason: String| Err(ConfigError::Invalid { field, reason });
        if self.in_channels == 0 {
            return invalid("in_channels", "must be at least 1".into());
        }
        if self.stem_width == 0 {
            return invalid("stem_width", "must be at least 1".into());
        }
        if self.num_classes == 0 {
            return invalid("num_classes", "must be at least 1".into());
        }
        if let Some(r) = self.se_reduction {
            let narrowest = self
                .stages
                .iter()
                .map(|s| s.width)
                .chain([self.stem_width])
                .min()
                .unwrap_or(0);
            if r == 0 || narrowest / r == 0 {
                return invalid(
                    "se_reduction",
                    format!("{r} leaves no hidden channels for a width of {narrowest}"),
                );
            }
        }
        for (k, stage) in self.stages.iter().enumerate() {
            if stage.width == 0 {
                return invalid("stages.width", format!("stage {} has width 0", k + 1));
            }
            if stage.groups.is_empty() {
                return invalid("stages.groups", format!("stage {} has no blocks", k + 1));
            }
        }
        for block in self.blocks() {
            let g = block.groups;
            if g == 0 || block.in_channels % g != 0 || block.out_channels % g != 0 {
                return invalid(
                    "stages.groups",
                    format!(
                        "block {} has groups {g}, which does not divide {} -> {} channels",
                        block.official_prefix(),
                        block.in_channels,
                        block.out_channels
                    ),
                );
            }
        }
        Ok(())
    }

    /// Every block in execution order, stem first.
    pub fn blocks(&self) -> Vec<BlockSpec> {
        let se = |width: usize| self.se_reduction.map(|r| width / r);
        let mut blocks = vec![BlockSpec {
            stage: 0,
            index: 0,
            in_channels: self.in_channels,
            out_channels: self.stem_width,
            stride: 2,
            groups: 1,
            identity: false,
            se_hidden: se(self.stem_width),
        }];
        let mut channels = self.stem_width;
        for (k, stage) in self.stages.iter().enumerate() {
            for (j, &groups) in stage.groups.iter().enumerate() {
                let stride = if j == 0 { 2 } else { 1 };
                blocks.push(BlockSpec {
                    stage: k + 1,
                    index: j,
                    in_channels: channels,
                    out_channels: stage.width,
                    stride,
                    groups,
                    identity: channels == stage.width && stride == 1,
                    se_hidden: se(stage.width),
                });
                channels = stage.width;
            }
        }
        blocks
    }

    /// Channels entering the head (the last block's width).
    pub fn feature_width(&self) -> usize {
        self.stages.last().map_or(self.stem_width, |s| s.width)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn official_widths_match_the_reference_table() {
        let widths = |n: &str| {
            let c = Config::official(n).unwrap();
            let mut w = vec![c.stem_width];
            w.extend(c.stages.iter().map(|s| s.width));
            w
        };
        assert_eq!(widths("A0"), [48, 48, 96, 192, 1280]);
        assert_eq!(widths("A1"), [64, 64, 128, 256, 1280]);
        assert_eq!(widths("A2"), [64, 96, 192, 384, 1408]);
        assert_eq!(widths("B0"), [64, 64, 128, 256, 1280]);
        assert_eq!(widths("B1g4"), [64, 128, 256, 512, 2048]);
        assert_eq!(widths("B2"), [64, 160, 320, 640, 2560]);
        assert_eq!(widths("B3"), [64, 192, 384, 768, 2560]);
        assert_eq!(widths("D2se"), [64, 160, 320, 640, 2560]);
    }

    #[test]
    fn layer_counts_and_groups() {
        assert_eq!(Config::official("a0").unwrap().blocks().len(), 22);
        assert_eq!(Config::official("RepVGG-B0").unwrap().blocks().len(), 28);
        assert_eq!(Config::official("repvgg_d2se").unwrap().blocks().len(), 48);
        let b1g4 = Config::official("B1g4").unwrap().blocks();
        let grouped: Vec<usize> = (0..b1g4.len()).filter(|&i| b1g4[i].groups == 4).collect();
        assert_eq!(grouped, GROUPWISE_LAYERS.to_vec());
        assert!(b1g4.iter().filter(|b| b.groups > 1).all(|b| b.identity));
        // stage1.0 of A0 is 48 -> 48 but stride 2: no identity.
        let a0 = Config::official("A0").unwrap().blocks();
        assert_eq!(
            (a0[1].in_channels, a0[1].out_channels, a0[1].identity),
            (48, 48, false)
        );
        assert!(a0[2].identity);
        assert!(Config::official("C7").is_err());
    }

    #[test]
    fn custom_validation_names_the_field() {
        let bad = Config::custom(
            8,
            vec![StageConfig {
                width: 12,
                groups: vec![1, 5],
            }],
            10,
            None,
        );
        assert!(matches!(
            bad,
            Err(ConfigError::Invalid {
                field: "stages.groups",
                ..
            })
        ));
        let se = Config::custom(8, vec![StageConfig::dense(16, 2)], 10, Some(16));
        assert!(matches!(
            se,
            Err(ConfigError::Invalid {
                field: "se_reduction",
                ..
            })
        ));
        assert!(Config::custom(8, vec![StageConfig::dense(16, 2)], 10, Some(8)).is_ok());
    }
}
