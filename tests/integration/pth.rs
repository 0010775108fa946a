//! PyTorch `.pth` checkpoints (`torch.save`) against the safetensors fixtures they were made from.
//!
//! `tools/make_pth_fixtures.py` saved, for each of `tests/fixtures/{tiny,tiny-g4}`: timm's own
//! `state_dict()` (OrderedDict with `_metadata` and int64 `num_batches_tracked`), the official
//! names nested as `{"epoch": …, "state_dict": {"module." + key: …}}`, the deployed weights in
//! `channels_last` memory format (non-contiguous strides), and the deployed official weights in
//! f16 (under `model`) and bf16. Loaded, each must equal the net loaded from its safetensors
//! source exactly: f32 files bit for bit, the 16-bit ones bit for bit after rounding the source to
//! that format (the conversion to f32 is exact).

use crate::fixtures::{FIXTURES, fixture_path};
use repvgg::checkpoint::{Checkpoint, LoadOptions, Naming, load_bytes, load_file};
use repvgg::{CheckpointError, PlainNet};

fn load(fixture: &str, file: &str) -> repvgg::Loaded {
    load_file(&fixture_path(fixture, file), &LoadOptions::default())
        .unwrap_or_else(|e| panic!("{fixture}/{file}: {e}"))
}

/// Every weight of a plain net rounded through `round` (f32 → 16-bit → f32).
fn rounded(mut net: PlainNet, round: impl Fn(f32) -> f32) -> PlainNet {
    for b in &mut net.blocks {
        b.weight.data_mut().iter_mut().for_each(|v| *v = round(*v));
        b.bias.iter_mut().for_each(|v| *v = round(*v));
    }
    net.head
        .weight
        .data_mut()
        .iter_mut()
        .for_each(|v| *v = round(*v));
    net.head.bias.iter_mut().for_each(|v| *v = round(*v));
    net
}

#[test]
fn pth_files_load_to_the_same_nets_as_their_safetensors_sources() {
    for (fixture, _) in FIXTURES {
        for (pth, source, naming) in [
            ("train_time.pth", "train_time.safetensors", Naming::Timm),
            (
                "train_time_official.pth",
                "train_time_official.safetensors",
                Naming::Official,
            ),
            ("deploy.pth", "deploy.safetensors", Naming::Timm),
        ] {
            let ours = load(fixture, pth);
            let theirs = load(fixture, source);
            assert_eq!(ours.naming, naming, "{fixture}/{pth}");
            assert_eq!(
                ours.net, theirs.net,
                "{fixture}/{pth} differs from {source}"
            );
        }
        let source = load(fixture, "deploy_official.safetensors")
            .into_plain()
            .unwrap();
        for (pth, round) in [
            (
                "deploy_official_f16.pth",
                (|v| half::f16::from_f32(v).to_f32()) as fn(f32) -> f32,
            ),
            ("deploy_official_bf16.pth", |v| {
                half::bf16::from_f32(v).to_f32()
            }),
        ] {
            let ours = load(fixture, pth);
            assert_eq!(ours.naming, Naming::Official);
            let Checkpoint::Deploy(net) = ours.net else {
                panic!("{fixture}/{pth} is not a deployed net");
            };
            assert_eq!(net, rounded(source.clone(), round), "{fixture}/{pth}");
        }
    }
}

/// Rewrites the stored (uncompressed) `data.pkl` record of a `.pth` file in place: the same
/// length, so the archive stays valid apart from the CRC, which the reader checks.
fn patch(bytes: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    assert_eq!(from.len(), to.len());
    let at = bytes
        .windows(from.len())
        .position(|w| w == from)
        .expect("pattern present");
    let mut out = bytes.to_vec();
    out[at..at + to.len()].copy_from_slice(to);
    out
}

#[test]
fn malformed_pth_files_are_typed_errors() {
    let bytes = std::fs::read(fixture_path("tiny", "deploy.pth")).unwrap();
    let options = LoadOptions::default();
    // Cut anywhere: a zip without its central directory.
    for keep in [10, bytes.len() / 2, bytes.len() - 10] {
        let e = load_bytes(&bytes[..keep], &options).unwrap_err();
        assert!(
            matches!(e, CheckpointError::Torch { .. }),
            "cut at {keep}: {e}"
        );
    }
    // A corrupted pickle record fails its CRC check.
    let e = load_bytes(&patch(&bytes, b"FloatStorage", b"FloatStorxge"), &options).unwrap_err();
    assert!(matches!(e, CheckpointError::Torch { .. }), "{e}");
}

#[test]
fn pth_and_safetensors_refuse_the_same_way() {
    // A training-time net written as safetensors and as .pth-equivalent must give the same
    // errors for the same defects: here, the head loaded against the wrong config.
    let wrong = repvgg::Config::official("a0").unwrap();
    let options = LoadOptions {
        config: Some(wrong),
        ..LoadOptions::default()
    };
    let st = load_file(&fixture_path("tiny", "deploy.safetensors"), &options).unwrap_err();
    let pth = load_file(&fixture_path("tiny", "deploy.pth"), &options).unwrap_err();
    assert_eq!(st.to_string(), pth.to_string());
    assert!(
        matches!(pth, CheckpointError::ConfigMismatch { .. }),
        "{pth}"
    );
}

#[test]
fn defective_twins_are_refused_with_the_same_error_in_both_formats() {
    // tests/fixtures/tiny/invalid: the same defective tensors saved by torch.save and by
    // safetensors (tools/make_pth_fixtures.py).
    let options = LoadOptions::default();
    for (name, expect) in [
        ("nan", "non-finite"),
        ("f64", "dtype F64"),
        ("missing", "missing key(s): head.fc.bias"),
        ("extra", "unexpected key(s): head.fc.scale"),
    ] {
        let path = |ext: &str| fixture_path("tiny", &format!("invalid/{name}.{ext}"));
        let pth = load_file(&path("pth"), &options).unwrap_err();
        let st = load_file(&path("safetensors"), &options).unwrap_err();
        assert_eq!(pth.to_string(), st.to_string(), "{name}");
        assert!(pth.to_string().contains(expect), "{name}: {pth}");
    }
}
