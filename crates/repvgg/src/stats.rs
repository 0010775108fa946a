//! Per-layer statistics of the deployed network: parameters, multiply-accumulates (MACs) and
//! Winograd multiplications, counted the way the paper does (Ding et al. 2021, Tables 4/5;
//! `docs/repvgg.md#per-layer-statistics`).
//!
//! For a block with `C_in → C_out` channels, `g` groups, stride `s` and output `H_out × W_out`:
//!
//! ```text
//! params    = C_out·(C_in/g)·9 + C_out                       (fused 3x3 kernel K and bias b)
//!           + C·h + h + h·C + C                               (SE down + up, D2se only; h = C/r)
//! MACs      = C_out·(C_in/g)·9·H_out·W_out  +  2·C·h          (the SE runs on the pooled 1x1 map)
//! Wino MULs = C_out·(C_in/g)·4·H_out·W_out  if s = 1          (Winograd F(2x2,3x3): 16 instead
//!           = C_out·(C_in/g)·9·H_out·W_out  if s = 2           of 36 MULs per 2x2 tile, i.e. 4/9)
//!           + 2·C·h                                           (SE: plain products)
//! ```
//!
//! The head (global average pool, then a linear layer `F → classes`) adds `F·classes + classes`
//! params and `F·classes` MACs = MULs. Additions (bias, pooling), ReLU, and the SE's sigmoid and
//! channel scaling are not counted; the paper's "FLOPs" column is this MAC total.

use crate::config::{BlockSpec, Config, ConfigError};
use std::fmt;
use thiserror::Error;

/// The input side length every official model was trained and reported at.
pub const DEFAULT_INPUT_SIZE: usize = 224;

/// The largest input side accepted (2²⁰ pixels); larger sides are rejected as typed errors rather
/// than risking arithmetic overflow in the shape computations.
pub const MAX_INPUT_SIDE: usize = 1 << 20;

/// Spatial size of the input image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct InputSize {
    /// Height `H`.
    pub height: usize,
    /// Width `W`.
    pub width: usize,
}

impl InputSize {
    /// A `height × width` input.
    pub fn new(height: usize, width: usize) -> Self {
        Self { height, width }
    }

    /// A square `side × side` input.
    pub fn square(side: usize) -> Self {
        Self::new(side, side)
    }
}

impl Default for InputSize {
    /// 224x224.
    fn default() -> Self {
        Self::square(DEFAULT_INPUT_SIZE)
    }
}

impl fmt::Display for InputSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}x{}", self.height, self.width)
    }
}

/// Why statistics cannot be computed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum StatsError {
    /// The input size is unusable (a zero side, or one above [`MAX_INPUT_SIDE`]).
    #[error("invalid input size {input}: {reason}")]
    InputSize {
        /// The size given.
        input: InputSize,
        /// What is wrong with it.
        reason: String,
    },
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A count does not fit in `u64` (absurdly large input or widths).
    #[error("the {quantity} of `{layer}` at input {input} does not fit in 64 bits")]
    Overflow {
        /// The layer (official prefix, `linear` or `total`).
        layer: String,
        /// `params`, `MACs` or `Wino MULs`.
        quantity: &'static str,
        /// The input size.
        input: InputSize,
    },
}

/// What a row of the table describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerKind {
    /// A deployed block: one 3x3 conv + bias (+ SE) + ReLU.
    Block,
    /// Global average pool + linear classifier.
    Head,
}

/// One row of the table: a deployed block or the head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerStats {
    /// Official key prefix (`stage0`, `stage3.7`) or `linear` for the head.
    pub name: String,
    /// Block or head.
    pub kind: LayerKind,
    /// Input channels `C_in` (the head: features `F`).
    pub in_channels: usize,
    /// Output channels `C_out` (the head: classes).
    pub out_channels: usize,
    /// Groups of the 3x3 conv (1 for the head).
    pub groups: usize,
    /// Stride of the 3x3 conv (1 for the head).
    pub stride: usize,
    /// Input `(H, W)`.
    pub input_hw: (usize, usize),
    /// Output `(H, W)`; `(1, 1)` for the head.
    pub output_hw: (usize, usize),
    /// Parameters of the fused conv (weight + bias) or of the linear layer.
    pub conv_params: u64,
    /// Parameters of the squeeze-excitation (0 without SE).
    pub se_params: u64,
    /// MACs of the fused conv or the linear layer, for one image.
    pub conv_macs: u64,
    /// MACs of the squeeze-excitation's two 1x1 layers, for one image.
    pub se_macs: u64,
    /// Multiplications with Winograd F(2x2,3x3) on stride-1 3x3 convs (others: their MACs).
    pub wino_muls: u64,
    /// Whether the paper's count applies Winograd to this layer (stride-1 3x3 conv).
    pub winograd: bool,
}

impl LayerStats {
    /// All parameters of the layer: conv (or linear) plus SE.
    pub fn params(&self) -> u64 {
        self.conv_params + self.se_params
    }

    /// All MACs of the layer for one image: conv (or linear) plus SE.
    pub fn macs(&self) -> u64 {
        self.conv_macs + self.se_macs
    }
}

/// Sums over the whole network, for one image.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    /// Every parameter of the deployed network.
    pub params: u64,
    /// Parameters of the squeeze-excitations (included in `params`).
    pub se_params: u64,
    /// Every MAC (the paper's "FLOPs" column).
    pub macs: u64,
    /// MACs of the stride-1 3x3 convs (included in `macs`).
    pub stride1_macs: u64,
    /// MACs of the stride-2 3x3 convs (included in `macs`).
    pub stride2_macs: u64,
    /// MACs of the squeeze-excitations (included in `macs`).
    pub se_macs: u64,
    /// MACs of the linear head (included in `macs`).
    pub head_macs: u64,
    /// Multiplications with Winograd F(2x2,3x3) on the stride-1 3x3 convs (the "Wino MULs" column).
    pub wino_muls: u64,
}

/// The per-layer table of a configuration at one input size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelStats {
    /// The configuration's name.
    pub model: String,
    /// The input size the counts are for.
    pub input: InputSize,
    /// One row per deployed block, in execution order.
    pub blocks: Vec<LayerStats>,
    /// The head row.
    pub head: LayerStats,
    /// Column sums.
    pub totals: Totals,
}

impl ModelStats {
    /// Computes the table for `config` at `input`.
    ///
    /// Fails on an invalid configuration, an input side of 0 or above [`MAX_INPUT_SIDE`], or a
    /// count that overflows `u64`.
    pub fn new(config: &Config, input: InputSize) -> Result<Self, StatsError> {
        config.validate()?;
        if input.height == 0 || input.width == 0 {
            return Err(StatsError::InputSize {
                input,
                reason: "both sides must be at least 1 pixel".into(),
            });
        }
        if input.height.max(input.width) > MAX_INPUT_SIDE {
            return Err(StatsError::InputSize {
                input,
                reason: format!("sides above {MAX_INPUT_SIDE} pixels are not supported"),
            });
        }
        let mut hw = (input.height, input.width);
        let mut blocks = Vec::new();
        for spec in config.blocks() {
            let row = block_stats(&spec, hw, input)?;
            hw = row.output_hw;
            blocks.push(row);
        }
        let head = head_stats(config, hw, input)?;
        let totals = totals(&blocks, &head, input)?;
        Ok(Self {
            model: config.name.clone(),
            input,
            blocks,
            head,
            totals,
        })
    }

    /// Every row: the blocks, then the head.
    pub fn layers(&self) -> impl Iterator<Item = &LayerStats> {
        self.blocks.iter().chain([&self.head])
    }
}

/// `∏ factors`, or an overflow error naming the layer and quantity.
fn product(
    factors: &[usize],
    layer: &str,
    quantity: &'static str,
    input: InputSize,
) -> Result<u64, StatsError> {
    factors
        .iter()
        .try_fold(1u64, |acc, &f| acc.checked_mul(f as u64))
        .ok_or_else(|| overflow(layer, quantity, input))
}

/// `a + b`, or an overflow error naming the layer and quantity.
fn add(
    a: u64,
    b: u64,
    layer: &str,
    quantity: &'static str,
    input: InputSize,
) -> Result<u64, StatsError> {
    a.checked_add(b)
        .ok_or_else(|| overflow(layer, quantity, input))
}

fn overflow(layer: &str, quantity: &'static str, input: InputSize) -> StatsError {
    StatsError::Overflow {
        layer: layer.to_string(),
        quantity,
        input,
    }
}

fn block_stats(
    spec: &BlockSpec,
    input_hw: (usize, usize),
    input: InputSize,
) -> Result<LayerStats, StatsError> {
    let name = spec.official_prefix();
    let conv = spec.conv3x3();
    let output_hw = conv
        .output_hw(input_hw.0, input_hw.1)
        .map_err(|e| StatsError::InputSize {
            input,
            reason: format!("at `{name}`: {e}"),
        })?;
    let (c_out, d) = (spec.out_channels, conv.in_per_group());
    let (oh, ow) = output_hw;
    let weights = product(&[c_out, d, 9], &name, "params", input)?;
    let conv_params = add(weights, c_out as u64, &name, "params", input)?;
    let conv_macs = product(&[c_out, d, 9, oh, ow], &name, "MACs", input)?;
    let winograd = spec.stride == 1;
    let conv_muls = if winograd {
        product(&[c_out, d, 4, oh, ow], &name, "Wino MULs", input)?
    } else {
        conv_macs
    };
    let (se_params, se_macs) = match spec.se_hidden {
        Some(h) => {
            // down: [h, C] + [h]; up: [C, h] + [C]; both on the pooled 1x1 map.
            let one_way = product(&[c_out, h], &name, "params", input)?;
            let macs = add(one_way, one_way, &name, "MACs", input)?;
            let params = add(macs, (h + c_out) as u64, &name, "params", input)?;
            (params, macs)
        }
        None => (0, 0),
    };
    Ok(LayerStats {
        wino_muls: add(conv_muls, se_macs, &name, "Wino MULs", input)?,
        name,
        kind: LayerKind::Block,
        in_channels: spec.in_channels,
        out_channels: c_out,
        groups: spec.groups,
        stride: spec.stride,
        input_hw,
        output_hw,
        conv_params,
        se_params,
        conv_macs,
        se_macs,
        winograd,
    })
}

fn head_stats(
    config: &Config,
    input_hw: (usize, usize),
    input: InputSize,
) -> Result<LayerStats, StatsError> {
    let name = "linear";
    let (features, classes) = (config.feature_width(), config.num_classes);
    let macs = product(&[features, classes], name, "MACs", input)?;
    Ok(LayerStats {
        name: name.to_string(),
        kind: LayerKind::Head,
        in_channels: features,
        out_channels: classes,
        groups: 1,
        stride: 1,
        input_hw,
        output_hw: (1, 1),
        conv_params: add(macs, classes as u64, name, "params", input)?,
        se_params: 0,
        conv_macs: macs,
        se_macs: 0,
        wino_muls: macs,
        winograd: false,
    })
}

fn totals(
    blocks: &[LayerStats],
    head: &LayerStats,
    input: InputSize,
) -> Result<Totals, StatsError> {
    let sum = |quantity: &'static str, f: &dyn Fn(&LayerStats) -> u64| {
        blocks
            .iter()
            .chain([head])
            .try_fold(0u64, |acc, row| add(acc, f(row), "total", quantity, input))
    };
    let strided = |s: usize| {
        move |row: &LayerStats| {
            if row.kind == LayerKind::Block && row.stride == s {
                row.conv_macs
            } else {
                0
            }
        }
    };
    Ok(Totals {
        params: sum("params", &|r| r.params())?,
        se_params: sum("params", &|r| r.se_params)?,
        macs: sum("MACs", &|r| r.macs())?,
        stride1_macs: sum("MACs", &strided(1))?,
        stride2_macs: sum("MACs", &strided(2))?,
        se_macs: sum("MACs", &|r| r.se_macs)?,
        head_macs: head.conv_macs,
        wino_muls: sum("Wino MULs", &|r| r.wino_muls)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::StageConfig;

    fn stats(name: &str) -> ModelStats {
        ModelStats::new(&Config::official(name).unwrap(), InputSize::default()).unwrap()
    }

    /// `x / 10^9` rounded to `decimals` (the paper's presentation, `docs/repvgg.md#per-layer-statistics`).
    fn giga(x: u64, decimals: usize) -> String {
        format!("{:.*}", decimals, x as f64 / 1e9)
    }

    /// Millions truncated to 2 decimals, as the paper's params column.
    fn paper_millions(x: u64) -> String {
        let hundredths = x / 10_000;
        format!("{}.{:02}", hundredths / 100, hundredths % 100)
    }

    #[test]
    fn exact_deploy_params_match_reference_table() {
        let expected = [
            ("A0", 8_309_384, "8.30"),
            ("A1", 12_789_864, "12.78"),
            ("A2", 25_499_944, "25.49"),
            ("B0", 14_339_048, "14.33"),
            ("B1", 51_829_480, "51.82"),
            ("B1g2", 41_360_104, "41.36"),
            ("B1g4", 36_125_416, "36.12"),
            ("B2", 80_315_112, "80.31"),
            ("B2g4", 55_777_512, "55.77"),
            ("B3", 110_960_872, "110.96"),
            ("B3g4", 75_626_728, "75.62"),
        ];
        for (name, params, paper) in expected {
            let t = stats(name).totals;
            assert_eq!(t.params, params, "{name}");
            assert_eq!(t.se_params, 0, "{name}");
            assert_eq!(paper_millions(t.params), paper, "{name}");
        }
    }

    #[test]
    fn d2se_conv_and_fc_params_exclude_se() {
        let t = stats("D2se").totals;
        assert_eq!(t.params - t.se_params, 118_109_032);
        // The paper's D2se: "+ SE (≈2.28 M)" (`docs/repvgg.md#per-layer-statistics`).
        assert_eq!(format!("{:.2}", t.se_params as f64 / 1e6), "2.28");
        // Every one of the 48 blocks has an SE: 2·C·(C/16) + C/16 + C.
        let stem = &stats("D2se").blocks[0];
        assert_eq!(stem.se_params, 2 * 64 * 4 + 4 + 64);
        assert_eq!(stem.se_macs, 2 * 64 * 4);
        // D2se conv part, §3.3: 31.069 / 1.756 / 32.827 (no SE) / 15.567.
        assert_eq!(giga(t.stride1_macs, 3), "31.069");
        assert_eq!(giga(t.stride2_macs, 3), "1.756");
        assert_eq!(giga(t.macs - t.se_macs, 3), "32.827");
        assert_eq!(giga(t.wino_muls - t.se_macs, 3), "15.567");
    }

    #[test]
    fn paper_flops_and_wino_muls_tables_4_and_5() {
        let expected = [
            ("A0", "1.4", "0.7"),
            ("A1", "2.4", "1.3"),
            ("B0", "3.1", "1.6"),
            ("A2", "5.1", "2.7"),
            ("B1g4", "7.3", "3.9"),
            ("B1g2", "8.8", "4.6"),
            ("B1", "11.8", "5.9"),
            ("B2g4", "11.3", "6.0"),
            ("B2", "18.4", "9.1"),
            ("B3g4", "16.1", "8.4"),
            ("B3", "26.2", "12.9"),
        ];
        for (name, flops, wino) in expected {
            let t = stats(name).totals;
            assert_eq!(giga(t.macs, 1), flops, "{name} FLOPs");
            assert_eq!(giga(t.wino_muls, 1), wino, "{name} Wino MULs");
        }
    }

    #[test]
    fn recomputed_values_of_section_3_3() {
        // (model, 3x3 s1 MACs, 3x3 s2 MACs, total, Wino MULs), in G to 3 decimals.
        let expected = [
            ("A0", "1.105", "0.255", "1.361", "0.747"),
            ("A1", "1.965", "0.397", "2.364", "1.272"),
            ("A2", "4.422", "0.694", "5.117", "2.660"),
            ("B0", "2.659", "0.397", "3.058", "1.580"),
            ("B1", "10.636", "1.178", "11.815", "5.907"),
            ("B1g2", "7.630", "1.178", "8.810", "4.571"),
            ("B1g4", "6.127", "1.178", "7.307", "3.903"),
            ("B2", "16.618", "1.756", "18.377", "9.144"),
            ("B2g4", "9.574", "1.756", "11.332", "6.013"),
            ("B3", "23.930", "2.276", "26.209", "12.914"),
            ("B3g4", "13.786", "2.276", "16.064", "8.406"),
        ];
        for (name, s1, s2, total, wino) in expected {
            let t = stats(name).totals;
            assert_eq!(giga(t.stride1_macs, 3), s1, "{name} s1");
            assert_eq!(giga(t.stride2_macs, 3), s2, "{name} s2");
            assert_eq!(giga(t.macs, 3), total, "{name} total");
            assert_eq!(giga(t.wino_muls, 3), wino, "{name} wino");
            assert_eq!(t.macs, t.stride1_macs + t.stride2_macs + t.head_macs);
            // Wino = s1·4/9 + s2 + FC exactly.
            assert_eq!(
                t.wino_muls,
                t.stride1_macs / 9 * 4 + t.stride2_macs + t.head_macs
            );
        }
    }

    #[test]
    fn a0_rows_follow_the_reference_listing() {
        let s = stats("A0");
        assert_eq!(s.model, "RepVGG-A0");
        assert_eq!(s.blocks.len(), 22);
        let stem = &s.blocks[0];
        assert_eq!(stem.name, "stage0");
        assert_eq!((stem.in_channels, stem.out_channels), (3, 48));
        assert_eq!((stem.input_hw, stem.output_hw), ((224, 224), (112, 112)));
        assert_eq!(stem.conv_params, 48 * 3 * 9 + 48);
        assert_eq!(stem.conv_macs, 48 * 3 * 9 * 112 * 112);
        assert!(!stem.winograd);
        assert_eq!(stem.wino_muls, stem.conv_macs);
        let s11 = &s.blocks[2];
        assert_eq!(s11.name, "stage1.1");
        assert!(s11.winograd);
        assert_eq!(s11.wino_muls, 48 * 48 * 4 * 56 * 56);
        let last = &s.blocks[21];
        assert_eq!(last.name, "stage4.0");
        assert_eq!((last.output_hw, last.out_channels), ((7, 7), 1280));
        assert_eq!(s.head.name, "linear");
        assert_eq!(s.head.input_hw, (7, 7));
        assert_eq!(s.head.params(), 1280 * 1000 + 1000);
        assert_eq!(s.head.wino_muls, 1280 * 1000);
        assert_eq!(s.layers().count(), 23);
        assert_eq!(
            s.layers().map(LayerStats::params).sum::<u64>(),
            s.totals.params
        );
    }

    #[test]
    fn grouped_rows_divide_by_groups() {
        let s = stats("B1g4");
        let g = &s.blocks[2];
        assert_eq!((g.name.as_str(), g.groups), ("stage1.1", 4));
        assert_eq!(g.conv_params, 128 * 32 * 9 + 128);
        assert_eq!(g.conv_macs, 128 * 32 * 9 * 56 * 56);
    }

    #[test]
    fn other_input_sizes() {
        let a0 = Config::official("A0").unwrap();
        let small = ModelStats::new(&a0, InputSize::new(57, 32)).unwrap();
        assert_eq!(small.blocks[0].output_hw, (29, 16));
        assert_eq!(small.head.input_hw, (2, 1));
        // Params do not depend on the input size.
        assert_eq!(small.totals.params, 8_309_384);
        let one = ModelStats::new(&a0, InputSize::square(1)).unwrap();
        assert!(one.blocks.iter().all(|b| b.output_hw == (1, 1)));
        assert_eq!(InputSize::new(3, 5).to_string(), "3x5");
        assert_eq!(InputSize::default(), InputSize::square(224));
    }

    #[test]
    fn invalid_inputs_are_typed_errors() {
        let a0 = Config::official("A0").unwrap();
        for input in [InputSize::new(0, 224), InputSize::new(224, 0)] {
            assert!(matches!(
                ModelStats::new(&a0, input),
                Err(StatsError::InputSize { .. })
            ));
        }
        for side in [MAX_INPUT_SIDE + 1, usize::MAX] {
            assert!(matches!(
                ModelStats::new(&a0, InputSize::new(side, 224)),
                Err(StatsError::InputSize { .. })
            ));
        }
        assert!(ModelStats::new(&a0, InputSize::square(MAX_INPUT_SIDE)).is_ok());
        let wide = Config::custom(1 << 40, vec![StageConfig::dense(1 << 40, 1)], 10, None).unwrap();
        let huge = ModelStats::new(&wide, InputSize::default());
        assert!(matches!(huge, Err(StatsError::Overflow { .. })), "{huge:?}");
        let mut bad = Config::custom(8, vec![StageConfig::dense(16, 2)], 10, None).unwrap();
        bad.stages[0].groups[1] = 3;
        assert!(matches!(
            ModelStats::new(&bad, InputSize::default()),
            Err(StatsError::Config(_))
        ));
    }
}
