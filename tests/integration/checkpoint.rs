//! Checkpoint loading: round trips, naming schemes, dtypes and every malformed-file error.
//!
//! - Fixtures: the timm-produced files of `tests/fixtures/{tiny,tiny-g4}` in both forms and both
//!   namings load, infer the manifest's architecture, agree across namings, and re-serialize to
//!   the same keys and bytes.
//! - Round trips: random nets (dense, grouped, SE) through both namings and both forms, with a
//!   `module.` prefix, `num_batches_tracked`, F16 and BF16.
//! - A requested config is compared with the file.
//! - Malformed files: each error variant, including the safetensors format errors, and a
//!   property test that random corruption never panics.

use half::{bf16, f16};
use proptest::prelude::*;
use repvgg::checkpoint::{
    load_bytes, load_file, plain_to_bytes, train_to_bytes, write_plain_file, write_train_file,
};
use repvgg::{
    Checkpoint, CheckpointError, Config, Form, LoadOptions, Loaded, Naming, PlainBlock, PlainNet,
    StageConfig, TrainNet,
};
use safetensors::{Dtype, SafeTensorError, SafeTensors, View};
use std::borrow::Cow;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

const FIXTURES: [&str; 2] = ["tiny", "tiny-g4"];

fn fixture(name: &str, file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
        .join(file)
}

fn read_fixture(name: &str, file: &str) -> Vec<u8> {
    std::fs::read(fixture(name, file)).expect("fixture file")
}

fn load(bytes: &[u8]) -> Result<Loaded, CheckpointError> {
    load_bytes(bytes, &LoadOptions::default())
}

fn load_ok(bytes: &[u8]) -> Loaded {
    load(bytes).unwrap_or_else(|e| panic!("load failed: {e}"))
}

fn load_err(bytes: &[u8]) -> CheckpointError {
    match load(bytes) {
        Ok(_) => panic!("loaded a malformed checkpoint"),
        Err(e) => e,
    }
}

/// An owned tensor of a state dict, for editing files.
#[derive(Debug, Clone)]
struct Raw {
    dtype: Dtype,
    shape: Vec<usize>,
    data: Vec<u8>,
}

impl View for Raw {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.data)
    }
    fn data_len(&self) -> usize {
        self.data.len()
    }
}

impl Raw {
    fn f32(shape: &[usize], values: &[f32]) -> Self {
        Self {
            dtype: Dtype::F32,
            shape: shape.to_vec(),
            data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        }
    }

    /// The values of an F32 tensor.
    fn values(&self) -> Vec<f32> {
        assert_eq!(self.dtype, Dtype::F32);
        self.data
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect()
    }
}

type StateDict = Vec<(String, Raw)>;

fn decode(bytes: &[u8]) -> StateDict {
    let file = SafeTensors::deserialize(bytes).expect("valid safetensors");
    let mut dict: StateDict = file
        .tensors()
        .into_iter()
        .map(|(name, v)| {
            let raw = Raw {
                dtype: v.dtype(),
                shape: v.shape().to_vec(),
                data: v.data().to_vec(),
            };
            (name, raw)
        })
        .collect();
    dict.sort_by(|a, b| a.0.cmp(&b.0));
    dict
}

fn encode(dict: StateDict) -> Vec<u8> {
    safetensors::serialize(dict, None).expect("serialize")
}

fn edit(bytes: &[u8], f: impl FnOnce(&mut StateDict)) -> Vec<u8> {
    let mut dict = decode(bytes);
    f(&mut dict);
    encode(dict)
}

fn get<'a>(dict: &'a mut StateDict, name: &str) -> &'a mut Raw {
    &mut dict
        .iter_mut()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no key {name}"))
        .1
}

fn remove(dict: &mut StateDict, name: &str) -> Raw {
    let at = dict
        .iter()
        .position(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no key {name}"));
    dict.remove(at).1
}

fn key_set(bytes: &[u8]) -> BTreeSet<String> {
    decode(bytes).into_iter().map(|(n, _)| n).collect()
}

/// A safetensors file from a hand-written header.
fn raw_file(header: &[u8], data: &[u8]) -> Vec<u8> {
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header);
    bytes.extend_from_slice(data);
    bytes
}

/// Small architectures: dense, grouped (including a grouped stride-2 block), and with SE.
fn small_configs() -> Vec<Config> {
    vec![
        Config::custom(
            8,
            vec![StageConfig::dense(8, 2), StageConfig::dense(16, 1)],
            5,
            None,
        )
        .unwrap(),
        Config::custom(
            8,
            vec![
                StageConfig {
                    width: 16,
                    groups: vec![1, 2, 4],
                },
                StageConfig {
                    width: 24,
                    groups: vec![2, 3],
                },
            ],
            7,
            None,
        )
        .unwrap(),
        Config::custom(
            8,
            vec![
                StageConfig::dense(16, 2),
                StageConfig {
                    width: 32,
                    groups: vec![1, 4],
                },
            ],
            3,
            Some(4),
        )
        .unwrap(),
    ]
}

fn se_config() -> Config {
    small_configs().pop().expect("three configs")
}

/// A deployed net with arbitrary (not folded) weights of the right shapes.
fn plain_from(train: &TrainNet) -> PlainNet {
    PlainNet {
        config: train.config.clone(),
        blocks: train
            .blocks
            .iter()
            .map(|b| PlainBlock {
                spec: b.spec,
                weight: b.dense.weight.clone(),
                bias: b.dense.bn.beta.clone(),
                se: b.se.clone(),
            })
            .collect(),
        head: train.head.clone(),
    }
}

/// The SE net in timm naming, training form (the base of most malformed-file tests).
fn small_train_bytes() -> &'static [u8] {
    static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    BYTES.get_or_init(|| train_to_bytes(&TrainNet::random(&se_config(), 5), Naming::Timm).unwrap())
}

fn tiny_train() -> Vec<u8> {
    read_fixture("tiny", "train_time.safetensors")
}

// ---------------------------------------------------------------------------------------------
// Fixtures produced by timm
// ---------------------------------------------------------------------------------------------

const FIXTURE_FILES: [(&str, Form, Naming); 4] = [
    ("train_time.safetensors", Form::MultiBranch, Naming::Timm),
    (
        "train_time_official.safetensors",
        Form::MultiBranch,
        Naming::Official,
    ),
    ("deploy.safetensors", Form::Plain, Naming::Timm),
    ("deploy_official.safetensors", Form::Plain, Naming::Official),
];

fn manifest(name: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(fixture(name, "manifest.json")).expect("manifest");
    serde_json::from_str(&text).expect("manifest JSON")
}

fn assert_matches_manifest(config: &Config, manifest: &serde_json::Value, what: &str) {
    let blocks = manifest["blocks"].as_array().expect("blocks");
    let specs = config.blocks();
    assert_eq!(specs.len(), blocks.len(), "{what}: block count");
    for (spec, m) in specs.iter().zip(blocks) {
        let field = |f: &str| m[f].as_u64().expect(f) as usize;
        let name = m["name"].as_str().expect("name");
        assert_eq!(
            name,
            format!("{}.reparam_conv", spec.timm_prefix()),
            "{what}"
        );
        assert_eq!(spec.in_channels, field("in_channels"), "{what}: {name}");
        assert_eq!(spec.out_channels, field("out_channels"), "{what}: {name}");
        assert_eq!(spec.stride, field("stride"), "{what}: {name}");
        assert_eq!(spec.groups, field("groups"), "{what}: {name}");
        assert_eq!(field("padding"), 1, "{what}: {name}");
        assert_eq!(
            Some(spec.identity),
            m["identity_branch"].as_bool(),
            "{what}: {name}"
        );
        assert_eq!(spec.se_hidden, None, "{what}: {name}");
    }
    assert_eq!(
        config.num_classes as u64,
        manifest["num_classes"].as_u64().expect("num_classes"),
        "{what}"
    );
}

#[test]
fn fixtures_load_in_both_forms_and_namings_with_the_manifest_architecture() {
    for name in FIXTURES {
        let manifest = manifest(name);
        for (file, form, naming) in FIXTURE_FILES {
            let what = format!("{name}/{file}");
            let loaded = load_ok(&read_fixture(name, file));
            assert_eq!(loaded.naming, naming, "{what}");
            assert_eq!(loaded.net.form(), form, "{what}");
            let config = loaded.net.config();
            assert_eq!(config.name, "custom", "{what}");
            assert_eq!(config.in_channels, 3, "{what}");
            assert_eq!(config.stem_width, 12, "{what}");
            let widths: Vec<usize> = config.stages.iter().map(|s| s.width).collect();
            let depths: Vec<usize> = config.stages.iter().map(|s| s.groups.len()).collect();
            assert_eq!(widths, [16, 32, 48, 80], "{what}");
            assert_eq!(depths, [2, 3, 4, 1], "{what}");
            assert_eq!(config.se_reduction, None, "{what}");
            assert_matches_manifest(config, &manifest, &what);
        }
    }
}

#[test]
fn fixture_groups_are_inferred_per_block() {
    let groups = |name| {
        let loaded = load_ok(&read_fixture(name, "deploy.safetensors"));
        loaded
            .net
            .config()
            .stages
            .iter()
            .map(|s| s.groups.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        groups("tiny"),
        [vec![1, 1], vec![1, 2, 1], vec![1, 2, 1, 2], vec![1]]
    );
    assert_eq!(
        groups("tiny-g4"),
        [vec![1, 1], vec![1, 4, 1], vec![1, 4, 1, 4], vec![1]]
    );
}

#[test]
fn official_and_timm_fixtures_give_identical_nets() {
    for name in FIXTURES {
        for (timm, official) in [
            ("train_time.safetensors", "train_time_official.safetensors"),
            ("deploy.safetensors", "deploy_official.safetensors"),
        ] {
            let a = load_ok(&read_fixture(name, timm)).net;
            let b = load_ok(&read_fixture(name, official)).net;
            assert!(a == b, "{name}: {timm} and {official} differ");
        }
    }
}

#[test]
fn fixtures_reserialize_to_the_same_keys_and_bytes() {
    for name in FIXTURES {
        let manifest = manifest(name);
        let listed = |field: &str| -> BTreeSet<String> {
            manifest[field]
                .as_array()
                .expect(field)
                .iter()
                .map(|k| k.as_str().expect("key").to_string())
                .collect()
        };
        for (file, form, naming) in FIXTURE_FILES {
            let original = read_fixture(name, file);
            let net = load_ok(&original).net;
            let written = net.to_bytes(naming).unwrap();
            assert_eq!(key_set(&written), key_set(&original), "{name}/{file}");
            if naming == Naming::Timm {
                let field = match form {
                    Form::MultiBranch => "train_time_keys",
                    Form::Plain => "deploy_keys",
                };
                assert_eq!(key_set(&written), listed(field), "{name}/{file}");
            }
            for ((n1, a), (n2, b)) in decode(&written).iter().zip(decode(&original).iter()) {
                assert_eq!(n1, n2);
                assert_eq!(
                    (a.dtype, &a.shape),
                    (b.dtype, &b.shape),
                    "{name}/{file}: {n1}"
                );
                assert!(a.data == b.data, "{name}/{file}: {n1} values differ");
            }
        }
    }
}

#[test]
fn eps_comes_from_the_options() {
    let options = LoadOptions {
        bn_eps: 1e-3,
        ..LoadOptions::default()
    };
    let net = load_bytes(&tiny_train(), &options)
        .unwrap()
        .into_train()
        .unwrap();
    for block in &net.blocks {
        assert_eq!(block.dense.bn.eps, 1e-3);
        assert_eq!(block.pointwise.bn.eps, 1e-3);
        assert!(block.identity.iter().all(|bn| bn.eps == 1e-3));
    }
}

#[test]
fn into_train_and_into_plain_check_the_form() {
    let deploy = load_ok(&read_fixture("tiny", "deploy.safetensors"));
    assert!(deploy.clone().into_plain().is_ok());
    assert!(matches!(
        deploy.into_train(),
        Err(CheckpointError::WrongForm {
            expected: "training-time",
            found: "deployed"
        })
    ));
    let train = load_ok(&tiny_train());
    assert!(matches!(
        train.into_plain(),
        Err(CheckpointError::WrongForm { .. })
    ));
}

// ---------------------------------------------------------------------------------------------
// Round trips
// ---------------------------------------------------------------------------------------------

#[test]
fn train_nets_round_trip_in_both_namings() {
    for (seed, config) in small_configs().into_iter().enumerate() {
        let net = TrainNet::random(&config, seed as u64);
        for naming in Naming::ALL {
            let bytes = train_to_bytes(&net, naming).unwrap();
            let loaded = load_ok(&bytes);
            assert_eq!(loaded.naming, naming);
            assert!(
                loaded.net == Checkpoint::Train(net.clone()),
                "{naming} round trip of config {seed}"
            );
        }
    }
}

#[test]
fn plain_nets_round_trip_in_both_namings() {
    for (seed, config) in small_configs().into_iter().enumerate() {
        let net = plain_from(&TrainNet::random(&config, seed as u64 + 10));
        for naming in Naming::ALL {
            let bytes = plain_to_bytes(&net, naming).unwrap();
            let loaded = load_ok(&bytes);
            assert_eq!(loaded.naming, naming);
            assert!(
                loaded.net == Checkpoint::Deploy(net.clone()),
                "{naming} round trip of config {seed}"
            );
        }
    }
}

#[test]
fn written_keys_follow_the_documented_names() {
    let net = TrainNet::random(&se_config(), 1);
    let official = key_set(&train_to_bytes(&net, Naming::Official).unwrap());
    for key in [
        "stage0.rbr_dense.conv.weight",
        "stage0.rbr_1x1.bn.running_var",
        "stage0.se.down.weight",
        "stage1.1.rbr_identity.weight",
        "stage2.1.se.up.bias",
        "linear.weight",
        "linear.bias",
    ] {
        assert!(official.contains(key), "{key}");
    }
    let timm = key_set(&train_to_bytes(&net, Naming::Timm).unwrap());
    for key in [
        "stem.conv_kxk.conv.weight",
        "stages.0.0.conv_1x1.bn.bias",
        "stages.0.1.identity.running_mean",
        "stages.1.1.attn.fc1.weight",
        "head.fc.weight",
    ] {
        assert!(timm.contains(key), "{key}");
    }
    assert!(!timm.iter().any(|k| k.contains("num_batches_tracked")));
    let plain = plain_from(&net);
    let deployed = key_set(&plain_to_bytes(&plain, Naming::Official).unwrap());
    assert!(deployed.contains("stage0.rbr_reparam.weight"));
    assert!(deployed.contains("stage2.1.rbr_reparam.bias"));
    let deployed = key_set(&plain_to_bytes(&plain, Naming::Timm).unwrap());
    assert!(deployed.contains("stem.reparam_conv.weight"));
    assert!(deployed.contains("stages.1.1.reparam_conv.bias"));
    // Head stored 2-D.
    let dict = decode(&plain_to_bytes(&plain, Naming::Timm).unwrap());
    let head = &dict.iter().find(|(n, _)| n == "head.fc.weight").unwrap().1;
    assert_eq!(head.shape, [3, 32]);
}

#[test]
fn module_prefix_is_stripped_when_every_key_has_it() {
    let net = TrainNet::random(&se_config(), 2);
    for naming in Naming::ALL {
        let bytes = edit(&train_to_bytes(&net, naming).unwrap(), |dict| {
            for (name, _) in dict.iter_mut() {
                *name = format!("module.{name}");
            }
        });
        let loaded = load_ok(&bytes);
        assert_eq!(loaded.naming, naming);
        assert!(loaded.net == Checkpoint::Train(net.clone()));
    }
    // Errors name the key as the file spells it.
    let bytes = edit(small_train_bytes(), |dict| {
        for (name, _) in dict.iter_mut() {
            *name = format!("module.{name}");
        }
        remove(dict, "module.stem.conv_1x1.bn.bias");
    });
    assert!(matches!(
        load_err(&bytes),
        CheckpointError::MissingKeys { keys } if keys == ["module.stem.conv_1x1.bn.bias"]
    ));
}

#[test]
fn mixed_module_prefix_is_rejected() {
    let bytes = edit(small_train_bytes(), |dict| {
        dict[0].0 = format!("module.{}", dict[0].0);
    });
    assert!(matches!(
        load_err(&bytes),
        CheckpointError::UnknownScheme { .. }
    ));
}

#[test]
fn num_batches_tracked_is_accepted_in_any_dtype_and_ignored() {
    let net = TrainNet::random(&se_config(), 3);
    for naming in Naming::ALL {
        let bytes = edit(&train_to_bytes(&net, naming).unwrap(), |dict| {
            let bns: Vec<String> = dict
                .iter()
                .filter_map(|(n, _)| n.strip_suffix(".running_var").map(str::to_string))
                .collect();
            // Not all-or-nothing: every other batch norm gets a counter, in varying dtypes.
            for (i, bn) in bns.iter().enumerate().filter(|(i, _)| i % 2 == 0) {
                let raw = match i % 3 {
                    0 => Raw {
                        dtype: Dtype::I64,
                        shape: vec![],
                        data: 1234i64.to_le_bytes().to_vec(),
                    },
                    1 => Raw {
                        dtype: Dtype::I32,
                        shape: vec![1],
                        data: 7i32.to_le_bytes().to_vec(),
                    },
                    _ => Raw::f32(&[], &[f32::NAN]),
                };
                dict.push((format!("{bn}.num_batches_tracked"), raw));
            }
        });
        assert!(
            key_set(&bytes)
                .iter()
                .any(|k| k.ends_with("num_batches_tracked"))
        );
        assert!(
            load_ok(&bytes).net == Checkpoint::Train(net.clone()),
            "{naming}"
        );
    }
}

#[test]
fn num_batches_tracked_of_an_absent_batch_norm_is_unexpected() {
    // stages.0.0 is a stride-2 block: no identity branch.
    let bytes = edit(small_train_bytes(), |dict| {
        dict.push((
            "stages.0.0.identity.num_batches_tracked".to_string(),
            Raw {
                dtype: Dtype::I64,
                shape: vec![],
                data: vec![0; 8],
            },
        ));
    });
    assert!(matches!(
        load_err(&bytes),
        CheckpointError::UnexpectedKeys { keys } if keys == ["stages.0.0.identity.num_batches_tracked"]
    ));
    // A deployed file has no batch norms at all.
    let plain = plain_to_bytes(
        &plain_from(&TrainNet::random(&se_config(), 3)),
        Naming::Timm,
    );
    let bytes = edit(&plain.unwrap(), |dict| {
        dict.push((
            "stem.conv_kxk.bn.num_batches_tracked".to_string(),
            Raw {
                dtype: Dtype::I64,
                shape: vec![],
                data: vec![0; 8],
            },
        ));
    });
    assert!(matches!(
        load_err(&bytes),
        CheckpointError::UnexpectedKeys { keys } if keys == ["stem.conv_kxk.bn.num_batches_tracked"]
    ));
}

/// Re-encodes every F32 tensor as `dtype` (F16 or BF16), and, for comparison, as F32 holding the
/// same rounded values.
fn half_precision(bytes: &[u8], dtype: Dtype) -> (Vec<u8>, Vec<u8>) {
    let round = |v: f32| -> (Vec<u8>, f32) {
        match dtype {
            Dtype::F16 => {
                let h = f16::from_f32(v);
                (h.to_le_bytes().to_vec(), h.to_f32())
            }
            _ => {
                let h = bf16::from_f32(v);
                (h.to_le_bytes().to_vec(), h.to_f32())
            }
        }
    };
    let dict = decode(bytes);
    let mut low = Vec::new();
    let mut rounded = Vec::new();
    for (name, raw) in dict {
        let (data, values): (Vec<Vec<u8>>, Vec<f32>) = raw.values().into_iter().map(round).unzip();
        low.push((
            name.clone(),
            Raw {
                dtype,
                shape: raw.shape.clone(),
                data: data.concat(),
            },
        ));
        rounded.push((name, Raw::f32(&raw.shape, &values)));
    }
    (encode(low), encode(rounded))
}

#[test]
fn f16_and_bf16_tensors_are_converted_to_f32() {
    let net = TrainNet::random(&se_config(), 4);
    for naming in Naming::ALL {
        let f32_bytes = train_to_bytes(&net, naming).unwrap();
        for dtype in [Dtype::F16, Dtype::BF16] {
            let (low, rounded) = half_precision(&f32_bytes, dtype);
            let from_low = load_ok(&low);
            assert!(from_low.net == load_ok(&rounded).net, "{naming} {dtype}");
            assert!(
                from_low.net != Checkpoint::Train(net.clone()),
                "values were rounded"
            );
            // Close to the original.
            let loaded = from_low.into_train().unwrap();
            let (a, b) = (
                loaded.blocks[0].dense.weight.data(),
                net.blocks[0].dense.weight.data(),
            );
            let worst = a
                .iter()
                .zip(b)
                .map(|(x, y)| (x - y).abs())
                .fold(0.0, f32::max);
            assert!(worst < 1e-2, "{dtype}: {worst}");
        }
    }
    // Dtypes may be mixed within one file.
    let f32_bytes = train_to_bytes(&net, Naming::Timm).unwrap();
    let (f16_file, f16_rounded) = half_precision(&f32_bytes, Dtype::F16);
    let mixed = edit(&f16_file, |dict| {
        let rounded = decode(&f16_rounded);
        for (i, (name, raw)) in dict.iter_mut().enumerate() {
            if i % 2 == 0 {
                *raw = rounded.iter().find(|(n, _)| n == name).unwrap().1.clone();
            }
        }
    });
    assert!(load_ok(&mixed).net == load_ok(&f16_rounded).net);
}

#[test]
fn files_are_written_and_read_from_disk() {
    let dir = std::env::temp_dir().join(format!("repvgg-checkpoint-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let train = TrainNet::random(&se_config(), 6);
    let plain = plain_from(&train);
    let (a, b) = (
        dir.join("train.safetensors"),
        dir.join("deploy.safetensors"),
    );
    write_train_file(&a, &train, Naming::Official).unwrap();
    write_plain_file(&b, &plain, Naming::Timm).unwrap();
    let options = LoadOptions::default();
    assert!(load_file(&a, &options).unwrap().net == Checkpoint::Train(train.clone()));
    assert!(load_file(&b, &options).unwrap().net == Checkpoint::Deploy(plain.clone()));
    std::fs::remove_dir_all(&dir).unwrap();

    let missing = dir.join("absent.safetensors");
    assert!(matches!(
        load_file(&missing, &options),
        Err(CheckpointError::Io { path, .. }) if path == missing.display().to_string()
    ));
    assert!(matches!(
        write_train_file(&missing, &train, Naming::Timm),
        Err(CheckpointError::Io { .. })
    ));
}

// ---------------------------------------------------------------------------------------------
// A requested config
// ---------------------------------------------------------------------------------------------

fn with_config(config: Config) -> LoadOptions {
    LoadOptions {
        config: Some(config),
        ..LoadOptions::default()
    }
}

#[test]
fn a_matching_config_is_used_with_its_name() {
    let inferred = load_ok(&tiny_train()).net.config().clone();
    let named = Config {
        name: "tiny".to_string(),
        ..inferred
    };
    let loaded = load_bytes(&tiny_train(), &with_config(named.clone())).unwrap();
    assert_eq!(loaded.net.config(), &named);
}

#[test]
fn a_mismatching_config_names_the_first_differing_key() {
    let a0 = Config::official("A0").unwrap();
    for (file, key) in [
        ("train_time.safetensors", "stem.conv_kxk.conv.weight"),
        (
            "train_time_official.safetensors",
            "stage0.rbr_dense.conv.weight",
        ),
        ("deploy.safetensors", "stem.reparam_conv.weight"),
        ("deploy_official.safetensors", "stage0.rbr_reparam.weight"),
    ] {
        let err = load_bytes(&read_fixture("tiny", file), &with_config(a0.clone())).unwrap_err();
        assert!(
            matches!(&err, CheckpointError::ConfigMismatch { key: k, .. } if k == key),
            "{file}: {err}"
        );
        assert!(err.to_string().contains("RepVGG-A0"), "{err}");
    }

    let inferred = load_ok(&tiny_train()).net.config().clone();
    let more_classes = Config {
        num_classes: 11,
        ..inferred.clone()
    };
    assert!(matches!(
        load_bytes(&tiny_train(), &with_config(more_classes)),
        Err(CheckpointError::ConfigMismatch { key, .. }) if key == "head.fc.weight"
    ));
    let mut deeper = inferred.clone();
    deeper.stages[2].groups.push(1);
    assert!(matches!(
        load_bytes(&tiny_train(), &with_config(deeper)),
        Err(CheckpointError::ConfigMismatch { key, .. }) if key == "stages.3.0.conv_kxk.conv.weight"
    ));
    let mut grouped = inferred.clone();
    grouped.stages[1].groups[2] = 4;
    assert!(matches!(
        load_bytes(&tiny_train(), &with_config(grouped)),
        Err(CheckpointError::ConfigMismatch { key, .. }) if key == "stages.1.2.conv_kxk.conv.weight"
    ));
    let mut shallower = inferred;
    shallower.stages.pop();
    assert!(matches!(
        load_bytes(&tiny_train(), &with_config(shallower)),
        Err(CheckpointError::ConfigMismatch { key, .. }) if key == "stages.3.0.conv_kxk.conv.weight"
    ));
}

#[test]
fn an_official_model_round_trips_against_its_named_config() {
    // Real size (A0: 9.1 M parameters), real key counts (docs/repvgg.md#key-counts: 290 training keys).
    let a0 = Config::official("A0").unwrap();
    let net = TrainNet::random(&a0, 21);
    let bytes = train_to_bytes(&net, Naming::Official).unwrap();
    assert_eq!(key_set(&bytes).len(), 290);
    let loaded = load_bytes(&bytes, &with_config(a0.clone())).unwrap();
    assert_eq!(loaded.net.config().name, "RepVGG-A0");
    assert!(loaded.net == Checkpoint::Train(net));
    // A1 is A0 with stem and stage-1 width 64 instead of 48.
    let a1 = Config::official("A1").unwrap();
    assert!(matches!(
        load_bytes(&bytes, &with_config(a1)),
        Err(CheckpointError::ConfigMismatch { key, .. }) if key == "stage0.rbr_dense.conv.weight"
    ));
}

#[test]
fn an_invalid_requested_config_is_a_config_error() {
    let mut bad = load_ok(&tiny_train()).net.config().clone();
    bad.stages[0].groups[1] = 0;
    assert!(matches!(
        load_bytes(&tiny_train(), &with_config(bad)),
        Err(CheckpointError::Config(_))
    ));
}

// ---------------------------------------------------------------------------------------------
// Malformed files: safetensors format errors
// ---------------------------------------------------------------------------------------------

fn format_error(bytes: &[u8]) -> SafeTensorError {
    match load_err(bytes) {
        CheckpointError::Format(e) => e,
        other => panic!("expected a format error, got {other:?}"),
    }
}

#[test]
fn empty_and_garbage_bytes() {
    assert!(matches!(format_error(&[]), SafeTensorError::HeaderTooSmall));
    assert!(matches!(
        format_error(&[1, 2, 3]),
        SafeTensorError::HeaderTooSmall
    ));
    assert!(matches!(
        format_error(b"definitely not a safetensors file"),
        SafeTensorError::HeaderTooLarge
    ));
    assert!(matches!(
        format_error(&raw_file(b"{not json", &[])),
        SafeTensorError::InvalidHeaderDeserialization(_)
    ));
    assert!(matches!(
        format_error(&raw_file(&[b'{', 0xff, 0xfe, b'}'], &[])),
        SafeTensorError::InvalidHeader(_)
    ));
    assert!(matches!(
        format_error(&raw_file(br#"{"a":{"dtype":"F32","shape":[1]}}"#, &[])),
        SafeTensorError::InvalidHeaderDeserialization(_)
    ));
}

#[test]
fn truncated_files() {
    let valid = small_train_bytes();
    // Inside the data.
    assert!(matches!(
        format_error(&valid[..valid.len() - 1]),
        SafeTensorError::MetadataIncompleteBuffer
    ));
    // Inside the header.
    assert!(matches!(
        format_error(&valid[..40]),
        SafeTensorError::InvalidHeaderLength
    ));
    // Inside the length prefix.
    assert!(matches!(
        format_error(&valid[..7]),
        SafeTensorError::HeaderTooSmall
    ));
    // Trailing bytes are as wrong as missing ones.
    let mut longer = valid.to_vec();
    longer.push(0);
    assert!(matches!(
        format_error(&longer),
        SafeTensorError::MetadataIncompleteBuffer
    ));
}

#[test]
fn header_length_beyond_the_file() {
    let mut bytes = small_train_bytes().to_vec();
    let beyond = bytes.len() as u64;
    bytes[..8].copy_from_slice(&beyond.to_le_bytes());
    assert!(matches!(
        format_error(&bytes),
        SafeTensorError::InvalidHeaderLength
    ));
    bytes[..8].copy_from_slice(&u64::MAX.to_le_bytes());
    assert!(matches!(
        format_error(&bytes),
        SafeTensorError::HeaderTooLarge
    ));
}

#[test]
fn overlapping_offsets() {
    let header = br#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#;
    assert!(matches!(
        format_error(&raw_file(header, &[0; 12])),
        SafeTensorError::InvalidOffset(name) if name == "b"
    ));
}

#[test]
fn out_of_range_offsets() {
    // The tensor's end lies beyond the data section.
    let header = br#"{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#;
    assert!(matches!(
        format_error(&raw_file(header, &[0; 8])),
        SafeTensorError::MetadataIncompleteBuffer
    ));
    // Reversed offsets.
    let header = br#"{"a":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}}"#;
    assert!(matches!(
        format_error(&raw_file(header, &[0; 8])),
        SafeTensorError::InvalidOffset(name) if name == "a"
    ));
    // Offsets that disagree with shape × dtype.
    let header = br#"{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,12]}}"#;
    assert!(matches!(
        format_error(&raw_file(header, &[0; 12])),
        SafeTensorError::TensorInvalidInfo
    ));
}

#[test]
fn huge_declared_shapes_do_not_overflow_or_allocate() {
    let header = br#"{"stem.conv_kxk.conv.weight":{"dtype":"F32","shape":[4611686018427387904,8,3,3],"data_offsets":[0,16]}}"#;
    assert!(matches!(
        format_error(&raw_file(header, &[0; 16])),
        SafeTensorError::ValidationOverflow
    ));
    // Zero elements, so the file is valid, but no RepVGG net has such a stem.
    let header = br#"{"stem.conv_kxk.conv.weight":{"dtype":"F32","shape":[18446744073709551615,0,3,3],"data_offsets":[0,0]}}"#;
    assert!(matches!(
        load_err(&raw_file(header, &[])),
        CheckpointError::InconsistentArchitecture { key, .. } if key == "stem.conv_kxk.conv.weight"
    ));
    let bytes = edit(small_train_bytes(), |dict| {
        *get(dict, "stem.conv_kxk.conv.weight") = Raw::f32(&[1, usize::MAX, 0, 3], &[]);
    });
    assert!(matches!(
        load_err(&bytes),
        CheckpointError::InconsistentArchitecture { key, .. } if key == "stages.0.0.conv_kxk.conv.weight"
    ));
    let bytes = edit(small_train_bytes(), |dict| {
        *get(dict, "stages.1.1.conv_kxk.conv.weight") = Raw::f32(&[usize::MAX, 1, 0, 3], &[]);
    });
    assert!(matches!(
        load_err(&bytes),
        CheckpointError::InconsistentArchitecture { key, .. } if key == "stages.1.1.conv_kxk.conv.weight"
    ));
    let bytes = edit(small_train_bytes(), |dict| {
        *get(dict, "head.fc.weight") = Raw::f32(&[usize::MAX, 0], &[]);
    });
    assert!(matches!(
        load_err(&bytes),
        CheckpointError::WrongShape { key, .. } if key == "head.fc.weight"
    ));
}

// ---------------------------------------------------------------------------------------------
// Malformed files: valid safetensors, wrong state dict
// ---------------------------------------------------------------------------------------------

#[test]
fn no_tensors_or_unknown_names() {
    let empty = encode(Vec::new());
    assert!(matches!(
        load_err(&empty),
        CheckpointError::UnknownScheme { .. }
    ));
    let other = encode(vec![(
        "encoder.layer.0.weight".to_string(),
        Raw::f32(&[1], &[0.0]),
    )]);
    assert!(matches!(
        load_err(&other),
        CheckpointError::UnknownScheme { .. }
    ));
}

#[test]
fn mixed_naming_schemes() {
    let bytes = edit(small_train_bytes(), |dict| {
        let bias = remove(dict, "head.fc.bias");
        dict.push(("linear.bias".to_string(), bias));
    });
    assert!(matches!(
        load_err(&bytes),
        CheckpointError::UnknownScheme { reason } if reason.contains("linear.bias")
    ));
}

#[test]
fn mixed_forms() {
    let bytes = edit(small_train_bytes(), |dict| {
        let weight = get(dict, "stem.conv_kxk.conv.weight").clone();
        dict.push(("stem.reparam_conv.weight".to_string(), weight));
    });
    assert!(matches!(
        load_err(&bytes),
        CheckpointError::InconsistentArchitecture { key, .. } if key == "stem.reparam_conv.weight"
    ));
}

#[test]
fn missing_keys() {
    let bytes = edit(small_train_bytes(), |dict| {
        remove(dict, "stages.0.1.identity.running_var");
        remove(dict, "stages.1.1.attn.fc2.bias");
    });
    assert!(matches!(
        load_err(&bytes),
        CheckpointError::MissingKeys { keys }
            if keys == ["stages.0.1.identity.running_var", "stages.1.1.attn.fc2.bias"]
    ));
    // The architecture is still inferred (from the 1x1 conv) when a 3x3 weight is absent.
    let bytes = edit(small_train_bytes(), |dict| {
        remove(dict, "stages.1.1.conv_kxk.conv.weight");
    });
    assert!(matches!(
        load_err(&bytes),
        CheckpointError::MissingKeys { keys } if keys == ["stages.1.1.conv_kxk.conv.weight"]
    ));
    let bytes = edit(small_train_bytes(), |dict| {
        remove(dict, "head.fc.weight");
    });
    assert!(matches!(
        load_err(&bytes),
        CheckpointError::MissingKeys { keys } if keys == ["head.fc.weight"]
    ));
    // A whole identity branch.
    let bytes = edit(&tiny_train(), |dict| {
        dict.retain(|(n, _)| !n.starts_with("stages.2.1.identity."));
    });
    assert!(matches!(
        load_err(&bytes),
        CheckpointError::MissingKeys { keys } if keys.len() == 4 && keys[0] == "stages.2.1.identity.bias"
    ));
}

#[test]
fn unexpected_keys() {
    let bytes = edit(small_train_bytes(), |dict| {
        dict.push((
            "stages.1.1.conv_kxk.conv.bias".to_string(),
            Raw::f32(&[32], &[0.0; 32]),
        ));
        dict.push(("optimizer.step".to_string(), Raw::f32(&[], &[0.0])));
    });
    assert!(matches!(
        load_err(&bytes),
        CheckpointError::UnexpectedKeys { keys }
            if keys == ["optimizer.step", "stages.1.1.conv_kxk.conv.bias"]
    ));
    // Official names have no classifier statistics.
    let net = TrainNet::random(&small_configs()[0], 1);
    let bytes = edit(&train_to_bytes(&net, Naming::Official).unwrap(), |dict| {
        dict.push(("linear.running_mean".to_string(), Raw::f32(&[5], &[0.0; 5])));
    });
    assert!(matches!(
        load_err(&bytes),
        CheckpointError::UnexpectedKeys { keys } if keys == ["linear.running_mean"]
    ));
}

#[test]
fn se_on_some_blocks_only_is_missing_keys() {
    let bytes = edit(small_train_bytes(), |dict| {
        dict.retain(|(n, _)| !n.starts_with("stem.attn."));
    });
    assert!(matches!(
        load_err(&bytes),
        CheckpointError::MissingKeys { keys } if keys.len() == 4 && keys[0] == "stem.attn.fc1.bias"
    ));
}

#[test]
fn wrong_shapes() {
    let bytes = edit(small_train_bytes(), |dict| {
        *get(dict, "stages.1.0.conv_1x1.bn.running_var") = Raw::f32(&[33], &[1.0; 33]);
    });
    assert!(matches!(
        load_err(&bytes),
        CheckpointError::WrongShape { key, expected, actual }
            if key == "stages.1.0.conv_1x1.bn.running_var" && expected == [32] && actual == [33]
    ));
    let bytes = edit(small_train_bytes(), |dict| {
        *get(dict, "stages.0.1.conv_kxk.conv.weight") =
            Raw::f32(&[16, 16, 5, 5], &[0.0; 16 * 16 * 25]);
    });
    assert!(matches!(
        load_err(&bytes),
        CheckpointError::WrongShape { key, expected, .. }
            if key == "stages.0.1.conv_kxk.conv.weight" && expected == [16, 16, 3, 3]
    ));
    // The classifier is 2-D in files.
    let bytes = edit(small_train_bytes(), |dict| {
        let head = get(dict, "head.fc.weight");
        head.shape = vec![3, 32, 1, 1];
    });
    assert!(matches!(
        load_err(&bytes),
        CheckpointError::InconsistentArchitecture { key, .. } if key == "head.fc.weight"
    ));
    let bytes = edit(small_train_bytes(), |dict| {
        *get(dict, "head.fc.weight") = Raw::f32(&[3, 31], &[0.0; 93]);
    });
    assert!(matches!(
        load_err(&bytes),
        CheckpointError::WrongShape { key, expected, .. } if key == "head.fc.weight" && expected == [3, 32]
    ));
    let bytes = edit(small_train_bytes(), |dict| {
        *get(dict, "stages.1.1.attn.fc1.weight") = Raw::f32(&[8, 32], &[0.0; 256]);
    });
    assert!(matches!(
        load_err(&bytes),
        CheckpointError::InconsistentArchitecture { key, .. } if key == "stages.1.1.attn.fc1.weight"
    ));
}

#[test]
fn non_finite_values() {
    let bytes = edit(small_train_bytes(), |dict| {
        let weight = get(dict, "stem.conv_kxk.conv.weight");
        let mut values = weight.values();
        values[5] = f32::NAN;
        *weight = Raw::f32(&weight.shape.clone(), &values);
    });
    assert!(matches!(
        load_err(&bytes),
        CheckpointError::NonFinite { key, index: 5, value }
            if key == "stem.conv_kxk.conv.weight" && value.is_nan()
    ));
    // f16 infinity converts to f32 infinity.
    let bytes = edit(small_train_bytes(), |dict| {
        let mut data: Vec<u8> = vec![0; 2 * 32];
        data[6..8].copy_from_slice(&f16::NEG_INFINITY.to_le_bytes());
        *get(dict, "stages.1.1.conv_1x1.bn.bias") = Raw {
            dtype: Dtype::F16,
            shape: vec![32],
            data,
        };
    });
    assert!(matches!(
        load_err(&bytes),
        CheckpointError::NonFinite { key, index: 3, value }
            if key == "stages.1.1.conv_1x1.bn.bias" && value == f32::NEG_INFINITY
    ));
}

#[test]
fn negative_running_variance() {
    let bytes = edit(small_train_bytes(), |dict| {
        let mut values = vec![1.0; 16];
        values[9] = -0.5;
        *get(dict, "stages.0.1.identity.running_var") = Raw::f32(&[16], &values);
    });
    assert!(matches!(
        load_err(&bytes),
        CheckpointError::NegativeVariance { key, index: 9, .. }
            if key == "stages.0.1.identity.running_var"
    ));
}

#[test]
fn integer_and_other_dtypes_on_parameters() {
    for (key, dtype, size) in [
        ("stem.conv_kxk.conv.weight", Dtype::I32, 4),
        ("stages.0.1.conv_1x1.bn.bias", Dtype::I64, 8),
        ("head.fc.bias", Dtype::F64, 8),
        ("stages.1.0.conv_kxk.bn.running_mean", Dtype::U8, 1),
    ] {
        let bytes = edit(small_train_bytes(), |dict| {
            let raw = get(dict, key);
            let len: usize = raw.shape.iter().product();
            *raw = Raw {
                dtype,
                shape: raw.shape.clone(),
                data: vec![0; len * size],
            };
        });
        assert!(
            matches!(
                load_err(&bytes),
                CheckpointError::UnsupportedDtype { key: k, dtype: d }
                    if k == key && d == dtype.to_string()
            ),
            "{key}"
        );
    }
}

#[test]
fn inconsistent_widths() {
    let tiny = tiny_train();
    // An output width that differs from the rest of its stage.
    let bytes = edit(&tiny, |dict| {
        *get(dict, "stages.1.1.conv_kxk.conv.weight") =
            Raw::f32(&[40, 16, 3, 3], &[0.0; 40 * 16 * 9]);
    });
    assert!(matches!(
        load_err(&bytes),
        CheckpointError::InconsistentArchitecture { key, reason }
            if key == "stages.1.1.conv_kxk.conv.weight" && reason.contains("40")
    ));
    // Input channels per group that do not divide the previous block's width.
    let bytes = edit(&tiny, |dict| {
        *get(dict, "stages.1.2.conv_kxk.conv.weight") =
            Raw::f32(&[32, 24, 3, 3], &[0.0; 32 * 24 * 9]);
    });
    assert!(matches!(
        load_err(&bytes),
        CheckpointError::InconsistentArchitecture { key, .. }
            if key == "stages.1.2.conv_kxk.conv.weight"
    ));
    // Groups that do not divide the output width: 32 -> 48 with 16 inputs per group is g = 2 …
    // fine; 48 -> 80 with 16 per group is g = 3, which does not divide 80.
    let bytes = edit(&tiny, |dict| {
        *get(dict, "stages.3.0.conv_kxk.conv.weight") =
            Raw::f32(&[80, 16, 3, 3], &[0.0; 80 * 16 * 9]);
    });
    assert!(matches!(
        load_err(&bytes),
        CheckpointError::InconsistentArchitecture { key, reason }
            if key == "stages.3.0.conv_kxk.conv.weight" && reason.contains("groups")
    ));
    // A conv weight that is not 4-D.
    let bytes = edit(&tiny, |dict| {
        *get(dict, "stem.conv_kxk.conv.weight") = Raw::f32(&[12, 27], &[0.0; 12 * 27]);
    });
    assert!(matches!(
        load_err(&bytes),
        CheckpointError::InconsistentArchitecture { key, .. } if key == "stem.conv_kxk.conv.weight"
    ));
}

#[test]
fn identity_branch_on_a_stride_2_block() {
    let bytes = edit(
        &read_fixture("tiny", "train_time_official.safetensors"),
        |dict| {
            for field in ["weight", "bias", "running_mean", "running_var"] {
                dict.push((
                    format!("stage2.0.rbr_identity.{field}"),
                    Raw::f32(&[32], &[1.0; 32]),
                ));
            }
        },
    );
    assert!(matches!(
        load_err(&bytes),
        CheckpointError::InconsistentArchitecture { key, reason }
            if key == "stage2.0.rbr_identity.weight" && reason.contains("stride 2")
    ));
}

#[test]
fn gaps_in_block_and_stage_indices() {
    let tiny = tiny_train();
    let bytes = edit(&tiny, |dict| {
        dict.retain(|(n, _)| !n.starts_with("stages.2.2."));
    });
    assert!(matches!(
        load_err(&bytes),
        CheckpointError::InconsistentArchitecture { key, reason }
            if key.starts_with("stages.2.3.") && reason.contains("stages.2.2")
    ));
    let bytes = edit(&tiny, |dict| {
        for (name, _) in dict.iter_mut() {
            if let Some(rest) = name.strip_prefix("stages.3.") {
                *name = format!("stages.4.{rest}");
            }
        }
    });
    assert!(matches!(
        load_err(&bytes),
        CheckpointError::InconsistentArchitecture { key, .. } if key.starts_with("stages.4.0.")
    ));
    let bytes = edit(&tiny, |dict| {
        dict.retain(|(n, _)| !n.starts_with("stem."));
    });
    assert!(matches!(
        load_err(&bytes),
        CheckpointError::MissingKeys { keys } if keys.contains(&"stem.conv_kxk.conv.weight".to_string())
    ));
}

// ---------------------------------------------------------------------------------------------
// Writing inconsistent nets
// ---------------------------------------------------------------------------------------------

#[test]
fn writing_checks_the_net_against_its_config() {
    let net = TrainNet::random(&se_config(), 8);
    let mut no_identity = net.clone();
    no_identity.blocks[2].identity = None;
    assert!(matches!(
        train_to_bytes(&no_identity, Naming::Official),
        Err(CheckpointError::InconsistentArchitecture { key, .. }) if key == "stage1.1.rbr_identity.weight"
    ));
    let mut bad_head = net.clone();
    bad_head.head.bias.push(0.0);
    assert!(matches!(
        train_to_bytes(&bad_head, Naming::Timm),
        Err(CheckpointError::WrongShape { key, .. }) if key == "head.fc.bias"
    ));
    let mut short = net.clone();
    short.blocks.pop();
    assert!(matches!(
        train_to_bytes(&short, Naming::Timm),
        Err(CheckpointError::InconsistentArchitecture { .. })
    ));
    let mut invalid = plain_from(&net);
    invalid.config.num_classes = 0;
    assert!(matches!(
        plain_to_bytes(&invalid, Naming::Timm),
        Err(CheckpointError::Config(_))
    ));
}

// ---------------------------------------------------------------------------------------------
// Corruption never panics
// ---------------------------------------------------------------------------------------------

fn header_len(bytes: &[u8]) -> usize {
    let mut prefix = [0u8; 8];
    prefix.copy_from_slice(&bytes[..8]);
    8 + u64::from_le_bytes(prefix) as usize
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Random byte overwrites (anywhere, or only in the header) and truncation.
    #[test]
    fn corrupted_bytes_never_panic(
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..8),
        header_only in any::<bool>(),
        cut in proptest::option::of(any::<prop::sample::Index>()),
    ) {
        let mut bytes = small_train_bytes().to_vec();
        let span = if header_only { header_len(&bytes) } else { bytes.len() };
        for (at, byte) in flips {
            bytes[at.index(span)] = byte;
        }
        if let Some(cut) = cut {
            bytes.truncate(cut.index(bytes.len() + 1));
        }
        let _ = load(&bytes);
    }

    /// Digit edits in the header change shapes and offsets while keeping valid JSON.
    #[test]
    fn header_digit_edits_never_panic(
        edits in prop::collection::vec((any::<prop::sample::Index>(), 0u8..10), 1..4),
    ) {
        let mut bytes = small_train_bytes().to_vec();
        let digits: Vec<usize> = (8..header_len(&bytes))
            .filter(|&i| bytes[i].is_ascii_digit())
            .collect();
        for (at, digit) in edits {
            bytes[digits[at.index(digits.len())]] = b'0' + digit;
        }
        let _ = load(&bytes);
    }

    /// Well-formed files with a tensor replaced by one of random shape and dtype, a key dropped
    /// or a key renamed: every outcome is Ok or a typed error.
    #[test]
    fn structural_edits_never_panic(
        target in any::<prop::sample::Index>(),
        shape in prop::collection::vec(0usize..12, 0..5),
        dtype in prop::sample::select(vec![Dtype::F32, Dtype::F16, Dtype::BF16, Dtype::I64, Dtype::U8]),
        action in 0u8..3,
        rename in prop::sample::select(vec!["stem.", "stages.0.0.", "stages.0.1.", "stages.1.1.", "stages.5.0.", "module."]),
    ) {
        let bytes = edit(small_train_bytes(), |dict| {
            let at = target.index(dict.len());
            match action {
                0 => {
                    let len: usize = shape.iter().product();
                    let size = match dtype { Dtype::F32 => 4, Dtype::F16 | Dtype::BF16 => 2, Dtype::I64 => 8, _ => 1 };
                    dict[at].1 = Raw { dtype, shape: shape.clone(), data: vec![0x3c; len * size] };
                }
                1 => { dict.remove(at); }
                _ => {
                    let name = &mut dict[at].0;
                    let rest = name.split_once('.').map_or(name.clone(), |(_, r)| r.to_string());
                    *name = format!("{rename}{rest}");
                }
            }
            dict.sort_by(|a, b| a.0.cmp(&b.0));
            dict.dedup_by(|a, b| a.0 == b.0);
        });
        let _ = load(&bytes);
    }
}
