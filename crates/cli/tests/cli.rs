//! End-to-end tests of the `reparam` binary: help, `info`, `fuse`, `run`, `layers` and their error
//! paths.
//!
//! Checkpoints are written by the tests themselves (a tiny custom net with synthetic weights) into
//! a per-test directory under `CARGO_TARGET_TMPDIR`; inputs use small sizes so the reference
//! executor finishes in milliseconds.

use repvgg::checkpoint::train_to_bytes;
use repvgg::{Config, Naming, StageConfig, TrainNet};
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Runs the binary with `args`.
fn reparam(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_reparam"))
        .args(args)
        .output()
        .expect("the reparam binary starts")
}

/// Runs a command that must succeed; returns its stdout.
fn ok(args: &[&str]) -> String {
    let out = reparam(args);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(
        out.status.success(),
        "{args:?} failed ({:?}):\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
    stdout
}

/// Runs a command that must fail with exit status 1 and an `error:` on stderr (never a panic);
/// returns its stderr.
fn fails(args: &[&str]) -> String {
    let out = reparam(args);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{args:?}: stderr:\n{stderr}");
    assert!(stderr.starts_with("error: "), "{args:?}: stderr:\n{stderr}");
    assert!(stderr.contains("hint: "), "{args:?}: no hint:\n{stderr}");
    assert!(
        !stderr.contains("panicked"),
        "{args:?}: panicked:\n{stderr}"
    );
    stderr
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A fresh, empty directory for one test.
fn workdir(test: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("cli")
        .join(test);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("temp paths are UTF-8")
}

/// Stem 8, stages 8x2, 16x2 (second block grouped), 24x1; 10 classes. Has stride-2 blocks, an
/// identity branch, a grouped block and a channel change in every stage.
fn tiny_config() -> Config {
    Config::custom(
        8,
        vec![
            StageConfig::dense(8, 2),
            StageConfig {
                width: 16,
                groups: vec![1, 2],
            },
            StageConfig::dense(24, 1),
        ],
        10,
        None,
    )
    .unwrap()
}

/// Writes the tiny net's training-time checkpoint in `naming`; returns its path.
fn write_train_checkpoint(dir: &Path, naming: Naming) -> PathBuf {
    let net = TrainNet::random(&tiny_config(), 42);
    let path = dir.join("train.safetensors");
    std::fs::write(&path, train_to_bytes(&net, naming).unwrap()).unwrap();
    path
}

/// Writes a safetensors file with one tensor.
fn write_tensor(path: &Path, key: &str, dtype: Dtype, shape: &[usize], bytes: &[u8]) {
    let view = TensorView::new(dtype, shape.to_vec(), bytes).unwrap();
    std::fs::write(path, safetensors::serialize([(key, view)], None).unwrap()).unwrap();
}

/// A deterministic image batch `[2, 3, 32, 32]` under `key`.
fn write_input(path: &Path, key: &str) {
    let data: Vec<u8> = (0..2 * 3 * 32 * 32)
        .map(|i| (i * 37 % 101) as f32 / 50.0 - 1.0)
        .flat_map(f32::to_le_bytes)
        .collect();
    write_tensor(path, key, Dtype::F32, &[2, 3, 32, 32], &data);
}

/// Reads the `logits` tensor of an `--output` file: its shape and values.
fn read_logits(path: &Path) -> (Vec<usize>, Vec<f32>) {
    let bytes = std::fs::read(path).unwrap();
    let file = SafeTensors::deserialize(&bytes).unwrap();
    let view = file.tensor("logits").unwrap();
    assert_eq!(view.dtype(), Dtype::F32);
    let values = view
        .data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    (view.shape().to_vec(), values)
}

/// The `image i: top-5 …` lines of a `run` report.
fn top5_lines(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .filter(|l| l.starts_with("image "))
        .map(str::to_string)
        .collect()
}

#[test]
fn help_for_every_command() {
    for args in [
        &["--help"][..],
        &["info", "--help"],
        &["fuse", "--help"],
        &["convert", "--help"],
        &["run", "--help"],
        &["bench", "--help"],
        &["layers", "--help"],
        &["help", "run"],
    ] {
        let stdout = ok(args);
        assert!(stdout.contains("Usage: reparam"), "{args:?}:\n{stdout}");
    }
    assert!(ok(&["run", "--help"]).contains("--form <FORM>"));
    assert!(ok(&["fuse", "--help"]).contains("--naming <NAMING>"));
    assert!(ok(&["info", "--help"]).contains("--input-size"));
    let layers = ok(&["layers", "--help"]);
    for option in [
        "--algorithm <ALG>",
        "--isa <ISA>",
        "--threads <N>",
        "--json",
        "--repeats",
    ] {
        assert!(layers.contains(option), "{option}:\n{layers}");
    }
}

#[test]
fn usage_errors_exit_with_status_2() {
    for args in [
        &["info"][..],
        &["frobnicate"],
        &["run", "--batch", "0"],
        &["run", "--input-size", "x"],
        &["run", "--form", "fused"],
        &["run", "--model", "a0", "--checkpoint", "x.safetensors"],
        &["fuse", "only-one-path"],
        &["fuse", "a", "b", "--bn-eps", "-1"],
        &["layers", "--threads", "0"],
        &["layers", "--algorithm", "f99"],
        &["layers", "--isa", "sse4"],
        &["layers", "--repeats", "0"],
    ] {
        let out = reparam(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(!text(&out.stderr).contains("panicked"), "{args:?}");
    }
}

#[test]
fn info_of_an_official_model() {
    let stdout = ok(&["info", "a0"]);
    assert!(stdout.contains("RepVGG-A0"), "{stdout}");
    assert!(stdout.contains("8,309,384"), "{stdout}");
    assert!(stdout.contains("1,361,451,008"), "{stdout}");
    assert!(stdout.contains("stage3.13"), "{stdout}");
    let b1g4 = ok(&["info", "RepVGG-B1g4", "--input-size", "320x256"]);
    assert!(b1g4.contains("input:  320x256"), "{b1g4}");
    assert!(b1g4.contains("36,125,416"), "{b1g4}");
}

#[test]
fn info_of_an_unknown_name_fails() {
    let out = reparam(&["info", "resnet50"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("`resnet50` is neither a known model nor an existing file"),
        "{stderr}"
    );
    assert!(stderr.contains("known models: A0"), "{stderr}");
}

#[test]
fn run_an_official_model_on_a_small_input() {
    let stdout = ok(&["run", "--model", "a0", "--input-size", "16"]);
    assert!(stdout.contains("model:    RepVGG-A0"), "{stdout}");
    assert!(stdout.contains("executor: cpu-"), "{stdout}");
    assert!(
        stdout.contains("image 0: top-5 class (logit): "),
        "{stdout}"
    );
    assert!(stdout.contains("fold  "), "{stdout}");
    // Same seed, same answer; the oracle ranks the classes the same way.
    let again = ok(&["run", "--model", "a0", "--input-size", "16"]);
    assert_eq!(top5_lines(&stdout), top5_lines(&again));
    let reference = ok(&[
        "run",
        "--model",
        "a0",
        "--input-size",
        "16",
        "--backend",
        "reference",
    ]);
    assert!(reference.contains("executor: reference"), "{reference}");
    assert_eq!(top5_lines(&stdout), top5_lines(&reference));
}

#[test]
fn bench_prints_both_forms_and_their_ratios() {
    let small = [
        "bench",
        "--input-size",
        "32",
        "--iters",
        "3",
        "--warmup",
        "1",
    ];
    let stdout = ok(&small);
    for needle in [
        "model RepVGG-A0",
        "machine: ",
        "median ms",
        "MB moved/img",
        "peak act MB",
        "multi-branch / plain",
    ] {
        assert!(stdout.contains(needle), "{needle}:\n{stdout}");
    }
    let profiled = ok(&[&small[..], &["--profile", "--threads", "1"]].concat());
    assert!(profiled.contains("profile: cpu-"), "{profiled}");
    assert!(profiled.contains("stage1.0.rbr_reparam"), "{profiled}");
    assert!(profiled.contains("stage1.0.rbr_dense"), "{profiled}");
    let json: serde_json::Value =
        serde_json::from_str(&ok(&[&small[..], &["--json", "--batch", "2"]].concat())).unwrap();
    let rows = json.as_array().expect("a list");
    assert_eq!(rows.len(), 2, "{json}");
    assert!(
        rows.iter()
            .all(|r| r["batch"] == 2 && r["model"] == "RepVGG-A0")
    );
    let usage = reparam(&["bench", "--iters", "0"]);
    assert_eq!(usage.status.code(), Some(2));
    assert!(text(&usage.stderr).contains("between 1"));
    let err = fails(&["bench", "--checkpoint", "/no/such.safetensors"]);
    assert!(err.contains("no such file"), "{err}");
}

#[test]
fn checkpoint_info_and_fuse() {
    let dir = workdir("fuse");
    let train = write_train_checkpoint(&dir, Naming::Official);
    let info = ok(&["info", path_str(&train), "--input-size", "32"]);
    assert!(info.contains("form:   training-time"), "{info}");
    assert!(info.contains("naming: official"), "{info}");
    assert!(info.contains("stage3.0"), "{info}");

    let deploy = dir.join("deploy.safetensors");
    let fused = ok(&["fuse", path_str(&train), path_str(&deploy)]);
    assert!(fused.contains("fused  6 blocks"), "{fused}");
    let info = ok(&["info", path_str(&deploy), "--input-size", "32"]);
    assert!(info.contains("form:   deployed"), "{info}");
    assert!(info.contains("naming: official"), "{info}");

    let timm = dir.join("deploy_timm.safetensors");
    ok(&[
        "fuse",
        path_str(&train),
        path_str(&timm),
        "--naming",
        "timm",
    ]);
    assert!(ok(&["info", path_str(&timm)]).contains("naming: timm"));

    let again = fails(&[
        "fuse",
        path_str(&deploy),
        path_str(&dir.join("x.safetensors")),
    ]);
    assert!(again.contains("already deployed"), "{again}");
    let same = fails(&["fuse", path_str(&train), path_str(&train)]);
    assert!(same.contains("refusing to overwrite"), "{same}");
}

#[test]
fn multi_branch_and_plain_agree() {
    let dir = workdir("agree");
    let train = write_train_checkpoint(&dir, Naming::Timm);
    let deploy = dir.join("deploy.safetensors");
    ok(&["fuse", path_str(&train), path_str(&deploy)]);
    let input = dir.join("input.safetensors");
    write_input(&input, "input");

    let run = |checkpoint: &Path, form: &str, output: &str| {
        let output = dir.join(output);
        let stdout = ok(&[
            "run",
            "--checkpoint",
            path_str(checkpoint),
            "--form",
            form,
            "--input",
            path_str(&input),
            "--output",
            path_str(&output),
        ]);
        (top5_lines(&stdout), read_logits(&output))
    };
    let (multi_top, (multi_shape, multi)) = run(&train, "multi-branch", "multi_logits.safetensors");
    let (plain_top, (plain_shape, plain)) = run(&train, "plain", "plain_logits.safetensors");
    let (deploy_top, (_, deployed)) = run(&deploy, "plain", "deploy_logits.safetensors");
    assert_eq!(multi_shape, [2, 10]);
    assert_eq!(plain_shape, [2, 10]);
    assert_eq!(multi_top.len(), 2);
    assert_eq!(multi_top, plain_top);
    assert_eq!(plain_top, deploy_top);
    let scale = multi.iter().fold(1f32, |m, v| m.max(v.abs()));
    for (name, other) in [("plain", &plain), ("deployed", &deployed)] {
        let worst = multi
            .iter()
            .zip(other.iter())
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(
            worst <= 1e-4 * scale,
            "{name} differs from multi-branch by {worst} (scale {scale})"
        );
    }
    // The fused checkpoint and the in-memory fold are the same computation.
    assert_eq!(plain, deployed);
}

#[test]
fn run_a_checkpoint_on_a_synthetic_batch() {
    let dir = workdir("synthetic");
    let train = write_train_checkpoint(&dir, Naming::Official);
    let stdout = ok(&[
        "run",
        "--checkpoint",
        path_str(&train),
        "--input-size",
        "32x24",
        "--batch",
        "3",
        "--seed",
        "5",
    ]);
    assert!(
        stdout.contains("input:    synthetic [3, 3, 32, 24] (seed 5)"),
        "{stdout}"
    );
    assert_eq!(top5_lines(&stdout).len(), 3, "{stdout}");
}

#[test]
fn run_error_cases() {
    let dir = workdir("errors");
    let train = write_train_checkpoint(&dir, Naming::Official);
    let deploy = dir.join("deploy.safetensors");
    ok(&["fuse", path_str(&train), path_str(&deploy)]);
    let missing = dir.join("missing.safetensors");

    let e = fails(&["run", "--checkpoint", path_str(&missing)]);
    assert!(e.contains("no such file"), "{e}");

    let garbage = dir.join("garbage.safetensors");
    std::fs::write(&garbage, b"definitely not safetensors").unwrap();
    let e = fails(&["run", "--checkpoint", path_str(&garbage)]);
    assert!(e.contains("garbage.safetensors"), "{e}");
    let e = fails(&["info", path_str(&garbage)]);
    assert!(e.contains("garbage.safetensors"), "{e}");

    let e = fails(&[
        "run",
        "--checkpoint",
        path_str(&deploy),
        "--form",
        "multi-branch",
    ]);
    assert!(e.contains("deployed"), "{e}");
    assert!(e.contains("--form plain"), "{e}");

    let ckpt = path_str(&train);
    let wrong_key = dir.join("wrong_key.safetensors");
    write_input(&wrong_key, "image");
    let e = fails(&["run", "--checkpoint", ckpt, "--input", path_str(&wrong_key)]);
    assert!(e.contains("no tensor named `input`"), "{e}");
    assert!(e.contains("image"), "{e}");

    let rank3 = dir.join("rank3.safetensors");
    write_tensor(&rank3, "input", Dtype::F32, &[3, 2, 2], &[0; 48]);
    let e = fails(&["run", "--checkpoint", ckpt, "--input", path_str(&rank3)]);
    assert!(e.contains("rank 3"), "{e}");

    let ints = dir.join("ints.safetensors");
    write_tensor(&ints, "input", Dtype::I32, &[1, 3, 2, 2], &[0; 48]);
    let e = fails(&["run", "--checkpoint", ckpt, "--input", path_str(&ints)]);
    assert!(e.contains("I32"), "{e}");

    let gray = dir.join("gray.safetensors");
    write_tensor(&gray, "input", Dtype::F32, &[1, 1, 4, 4], &[0; 64]);
    let e = fails(&["run", "--checkpoint", ckpt, "--input", path_str(&gray)]);
    assert!(e.contains("1 channels"), "{e}");

    let e = fails(&["run", "--checkpoint", ckpt, "--output", ckpt]);
    assert!(e.contains("refusing to overwrite"), "{e}");

    let e = fails(&["run", "--model", "a0", "--input", path_str(&missing)]);
    assert!(e.contains("missing.safetensors"), "{e}");

    let e = fails(&[
        "fuse",
        path_str(&missing),
        path_str(&dir.join("out.safetensors")),
    ]);
    assert!(e.contains("no such file"), "{e}");
}

#[test]
fn half_precision_input_matches_f32() {
    let dir = workdir("f16");
    let train = write_train_checkpoint(&dir, Naming::Official);
    // Values exactly representable in f16 and bf16: multiples of 1/8 in [-1, 1].
    let values: Vec<f32> = (0..3 * 16 * 16)
        .map(|i| (i % 17) as f32 / 8.0 - 1.0)
        .collect();
    let f32_path = dir.join("f32.safetensors");
    let f32_bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    write_tensor(&f32_path, "input", Dtype::F32, &[1, 3, 16, 16], &f32_bytes);
    let bf16_path = dir.join("bf16.safetensors");
    let bf16_bytes: Vec<u8> = values
        .iter()
        .flat_map(|v| ((v.to_bits() >> 16) as u16).to_le_bytes())
        .collect();
    write_tensor(
        &bf16_path,
        "input",
        Dtype::BF16,
        &[1, 3, 16, 16],
        &bf16_bytes,
    );
    let top = |p: &Path| {
        top5_lines(&ok(&[
            "run",
            "--checkpoint",
            path_str(&train),
            "--input",
            path_str(p),
        ]))
    };
    assert_eq!(top(&f32_path), top(&bf16_path));
}

#[test]
fn layers_json_has_one_row_per_distinct_layer() {
    let stdout = ok(&[
        "layers",
        "--model",
        "a0",
        "--input-size",
        "32",
        "--repeats",
        "2",
        "--json",
    ]);
    let rows: serde_json::Value = serde_json::from_str(&stdout).expect("stdout is JSON");
    let rows = rows.as_array().expect("a JSON array");
    // A0: stem, then per stage one stride-2 block and (stages 1-3) one repeated stride-1 shape.
    assert_eq!(rows.len(), 8, "{stdout}");
    for row in rows {
        for key in [
            "cin",
            "cout",
            "h",
            "w",
            "stride",
            "groups",
            "count",
            "algorithm",
            "isa",
            "threads",
            "median_ms",
            "gflops",
            "peak_pct",
            "batch",
        ] {
            assert!(row.get(key).is_some(), "missing `{key}` in {row}");
        }
        assert!(row["median_ms"].as_f64().unwrap() > 0.0, "{row}");
        assert_ne!(row["algorithm"], "auto", "{row}");
        assert_eq!(row["layout"], "blocked", "{row}");
    }
    let counts: Vec<u64> = rows.iter().map(|r| r["count"].as_u64().unwrap()).collect();
    assert_eq!(counts, [1, 1, 1, 1, 3, 1, 13, 1]);
    assert_eq!(rows[0]["h"], 32);
    assert_eq!(rows[0]["cin"], 3);
    let nchw = ok(&[
        "layers",
        "--model",
        "a0",
        "--input-size",
        "16",
        "--repeats",
        "1",
        "--layout",
        "nchw",
        "--json",
    ]);
    let nchw: serde_json::Value = serde_json::from_str(&nchw).expect("stdout is JSON");
    assert!(
        nchw.as_array()
            .expect("a JSON array")
            .iter()
            .all(|r| r["layout"] == "nchw"),
        "{nchw}"
    );
}

#[test]
fn layers_table_and_errors() {
    let stdout = ok(&[
        "layers",
        "--model",
        "b0",
        "--input-size",
        "16",
        "--repeats",
        "1",
    ]);
    assert!(stdout.contains("model:     RepVGG-B0"), "{stdout}");
    assert!(stdout.contains("256->256 1x1 s1 g1"), "{stdout}");
    assert!(stdout.contains("% peak"), "{stdout}");

    let e = fails(&["layers", "--model", "resnet50"]);
    assert!(e.contains("unknown model `resnet50`"), "{e}");
    assert!(e.contains("known models: A0"), "{e}");

    #[cfg(target_arch = "x86_64")]
    let missing = "neon";
    #[cfg(not(target_arch = "x86_64"))]
    let missing = "avx512";
    let e = fails(&["layers", "--isa", missing, "--input-size", "8"]);
    assert!(e.contains("this CPU does not support"), "{e}");
    assert!(e.contains("hint: this CPU has: "), "{e}");
}

fn image_fixture(name: &str) -> String {
    let path: PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "..",
        "..",
        "tests",
        "fixtures",
        "images",
        name,
    ]
    .iter()
    .collect();
    path.to_str().expect("UTF-8 path").to_string()
}

#[test]
fn run_classifies_images_with_imagenet_names() {
    let (png, jpg) = (image_fixture("landscape.png"), image_fixture("photo.jpg"));
    let stdout = ok(&["run", "--model", "a0", "--image", &png, "--image", &jpg]);
    assert!(
        stdout.contains("input:    2 image(s) [2, 3, 224, 224]"),
        "{stdout}"
    );
    let lines = top5_lines(&stdout);
    assert_eq!(lines.len(), 2, "{stdout}");
    assert!(
        lines[0].starts_with(&format!("image 0 ({png}): top-5")),
        "{stdout}"
    );
    assert!(
        lines[1].starts_with(&format!("image 1 ({jpg}): top-5")),
        "{stdout}"
    );
    // A0 has 1000 classes: every entry carries its ImageNet name, `index name (logit)`.
    let entries = lines[0].split_once(": top-5 class (logit): ").unwrap().1;
    assert_eq!(entries.split(", ").count(), 5, "{stdout}");
    assert!(
        entries
            .split(", ")
            .all(|e| e.split(' ').count() >= 3 && e.ends_with(')')),
        "{entries}"
    );
}

#[test]
fn bad_images_fail_naming_the_file() {
    let stderr = fails(&["run", "--model", "a0", "--image", "/no/such/cat.jpg"]);
    assert!(stderr.contains("/no/such/cat.jpg"), "{stderr}");
    let dir = workdir("bad_images");
    let text = dir.join("notes.png");
    std::fs::write(&text, b"plain text, not a PNG").unwrap();
    let stderr = fails(&["run", "--model", "a0", "--image", path_str(&text)]);
    assert!(
        stderr.contains("cannot decode image") && stderr.contains("notes.png"),
        "{stderr}"
    );
}

#[test]
fn convert_a_pth_checkpoint_and_run_it() {
    let dir = workdir("convert_pth");
    let out = dir.join("tiny.safetensors");
    let pth: PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "..",
        "..",
        "tests",
        "fixtures",
        "tiny",
    ]
    .iter()
    .collect::<PathBuf>()
    .join("train_time_official.pth");
    let stdout = ok(&["convert", path_str(&pth), path_str(&out)]);
    assert!(stdout.contains("official naming"), "{stdout}");
    let from_pth = ok(&["run", "--checkpoint", path_str(&pth), "--input-size", "33"]);
    let from_st = ok(&["run", "--checkpoint", path_str(&out), "--input-size", "33"]);
    assert_eq!(top5_lines(&from_pth), top5_lines(&from_st));
}
