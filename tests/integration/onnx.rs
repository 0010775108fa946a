//! `repvgg::onnx::to_onnx` run by ONNX Runtime against the `repvgg::Cpu` engine: the tiny timm
//! fixture's deployed checkpoint, a small net with squeeze-excitation (D2se's block structure)
//! at two input sizes through one exported file (symbolic batch, height and width), and
//! full-size RepVGG-A0 with synthetic weights.
//!
//! Each test writes the model and the input (`.npy`) under `CARGO_TARGET_TMPDIR`, runs
//! `scripts/onnx/ort_check.py` with the interpreter named by `REPARAM_PYTHON` (default
//! `python3`) and reads back the logits it saved. Where that interpreter cannot
//! `import onnxruntime` the test prints `SKIP <test>: onnxruntime not importable (set
//! REPARAM_PYTHON)` and passes, unless `REPARAM_REQUIRE_ORT=1` (CI), which makes it fail.
//!
//! # Tolerance
//! The Cpu-vs-reference bound of `cpu.rs`, `Tolerance::for_network(K, f, depth)`
//! (`reparam_tensor::tolerance`; `K` the longest reduction, `depth` the 3x3 convs plus the
//! classifier), with the factor `f = f_cpu + 1`: both engines are compared against the exact
//! result in that formula, the Cpu engine with its own algorithms' factor (`Cpu::error_factor`,
//! 16 with F(6,3)) and ONNX Runtime's f32 direct/GEMM convolutions with factor 1, and the
//! distance between the two is at most the sum of their distances to the exact result.

use crate::fixtures::{input, load_plain};
use reparam_tensor::Tensor;
use reparam_tensor::tolerance::assert_close;
use repvgg::{Config, Cpu, CpuOptions, Engine, Graph, Naming, PlainNet, TrainNet};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The `.npy` format version 1.0 header of a C-order little-endian f32 array of `shape`:
/// the magic `\x93NUMPY`, version bytes `1, 0`, the header length as a little-endian `u16`,
/// then the ASCII dict `{'descr': '<f4', 'fortran_order': False, 'shape': (..), }` padded with
/// spaces and ended by `\n` so that the data starts at a multiple of 64 bytes.
fn npy_header(shape: &[usize]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(usize::to_string).collect();
    // A Python tuple: `(2, 3, 57, 57)`, and `(5,)` for one dimension.
    let comma = if shape.len() == 1 { "," } else { "" };
    let mut dict = format!(
        "{{'descr': '<f4', 'fortran_order': False, 'shape': ({}{comma}), }}",
        dims.join(", ")
    );
    while (10 + dict.len() + 1) % 64 != 0 {
        dict.push(' ');
    }
    dict.push('\n');
    let len = u16::try_from(dict.len()).expect("an .npy v1.0 header is under 64 KiB");
    let mut header = b"\x93NUMPY\x01\x00".to_vec();
    header.extend(len.to_le_bytes());
    header.extend(dict.as_bytes());
    header
}

/// Writes `x` as an `.npy` v1.0 file (header of [`npy_header`], then the f32 data).
fn write_npy(path: &Path, x: &Tensor) {
    let mut bytes = npy_header(&x.shape());
    bytes.extend(x.data().iter().flat_map(|v| v.to_le_bytes()));
    std::fs::write(path, bytes).expect("write .npy");
}

/// Reads a 2-D f32 `.npy` v1.0 file (as `np.save` writes it) into a `[rows, cols, 1, 1]` tensor,
/// the layout of the engines' logits.
fn read_npy_matrix(path: &Path) -> Tensor {
    let bytes = std::fs::read(path).expect("read .npy");
    assert_eq!(
        &bytes[..8],
        b"\x93NUMPY\x01\x00",
        "{}: not .npy v1.0",
        path.display()
    );
    let len = usize::from(u16::from_le_bytes([bytes[8], bytes[9]]));
    let dict = std::str::from_utf8(&bytes[10..10 + len]).expect("ASCII header");
    assert!(dict.contains("'descr': '<f4'"), "{dict}");
    assert!(dict.contains("'fortran_order': False"), "{dict}");
    let shape = dict
        .split_once("'shape': (")
        .and_then(|(_, rest)| rest.split_once(')'))
        .expect("shape")
        .0;
    let dims: Vec<usize> = shape
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(|d| d.parse().expect("dimension"))
        .collect();
    let [rows, cols] = dims[..] else {
        panic!(
            "{}: expected a matrix, found shape {dims:?}",
            path.display()
        )
    };
    let data: Vec<f32> = bytes[10 + len..]
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    Tensor::new([rows, cols, 1, 1], data).expect("logits tensor")
}

/// The interpreter to run the script with: `REPARAM_PYTHON`, default `python3`.
fn python() -> String {
    std::env::var("REPARAM_PYTHON")
        .ok()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "python3".into())
}

/// True when the interpreter imports numpy and onnxruntime; otherwise prints the SKIP line and
/// returns false, or panics when `REPARAM_REQUIRE_ORT=1`.
fn ort_available(test: &str) -> bool {
    let python = python();
    let ok = Command::new(&python)
        .args(["-c", "import numpy, onnxruntime"])
        .output()
        .is_ok_and(|out| out.status.success());
    if !ok {
        assert!(
            std::env::var("REPARAM_REQUIRE_ORT").as_deref() != Ok("1"),
            "{test}: `{python}` cannot import numpy and onnxruntime, and REPARAM_REQUIRE_ORT=1"
        );
        eprintln!("SKIP {test}: onnxruntime not importable (set REPARAM_PYTHON)");
    }
    ok
}

/// A fresh directory under `CARGO_TARGET_TMPDIR` for `test`.
fn workdir(test: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("onnx")
        .join(test);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create the work dir");
    dir
}

/// Runs `ort_check.py model x.npy logits.npy` and returns the logits `[N, classes, 1, 1]`.
fn run_ort(dir: &Path, model: &Path, x: &Tensor, tag: &str) -> Tensor {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/onnx/ort_check.py");
    let (x_path, y_path) = (
        dir.join(format!("{tag}.in.npy")),
        dir.join(format!("{tag}.out.npy")),
    );
    write_npy(&x_path, x);
    let out = Command::new(python())
        .arg(&script)
        .arg(model)
        .arg(&x_path)
        .arg(&y_path)
        .output()
        .expect("start the interpreter");
    assert!(
        out.status.success(),
        "{} failed ({:?}):\n{}",
        script.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    read_npy_matrix(&y_path)
}

/// Exports `net`, runs it with ONNX Runtime on each input and asserts the logits within the
/// tolerance of the module docs against the Cpu engine's.
fn check(test: &str, net: &PlainNet, inputs: &[Tensor]) {
    let dir = workdir(test);
    let model = dir.join("model.onnx");
    std::fs::write(&model, repvgg::onnx::to_onnx(net).expect("export")).expect("write .onnx");
    let graph = Graph::plain(net).expect("graph");
    for (i, x) in inputs.iter().enumerate() {
        let [_, _, h, w] = x.shape();
        let options = CpuOptions {
            input_hw: (h, w),
            ..CpuOptions::default()
        };
        let mut cpu = Cpu::new(&graph, &options).expect("prepare the CPU engine");
        let want = cpu.run(x).expect("CPU run").logits.clone();
        let tol = graph.tolerance(cpu.error_factor() + 1.0);
        let got = run_ort(&dir, &model, x, &format!("x{i}"));
        let context = format!("{test} {:?}: onnxruntime vs Cpu", x.shape());
        let cmp = assert_close(&got, &want, &tol, &context);
        println!(
            "{context}: {cmp} (bound rel_L2 {:.1e}, max r {:.1e})",
            tol.rel_l2, tol.max_rel
        );
    }
}

#[test]
fn npy_header_is_aligned_and_well_formed() {
    let header = npy_header(&[2, 3, 57, 57]);
    assert_eq!(header.len() % 64, 0);
    assert_eq!(&header[..8], b"\x93NUMPY\x01\x00");
    assert_eq!(
        usize::from(u16::from_le_bytes([header[8], header[9]])),
        header.len() - 10
    );
    let dict = std::str::from_utf8(&header[10..]).unwrap();
    assert!(
        dict.starts_with("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3, 57, 57), }"),
        "{dict}"
    );
    assert!(dict.ends_with(" \n"), "{dict:?}");
    // A 1-D shape needs the trailing comma of a Python 1-tuple.
    let one = npy_header(&[5]);
    assert!(
        std::str::from_utf8(&one[10..])
            .unwrap()
            .contains("'shape': (5,), ")
    );
}

#[test]
fn tiny_fixture_runs_on_onnx_runtime_as_on_the_cpu_engine() {
    let test = "tiny_fixture_runs_on_onnx_runtime_as_on_the_cpu_engine";
    if !ort_available(test) {
        return;
    }
    let net = load_plain("tiny", "deploy.safetensors", Naming::Timm);
    check(test, &net, &[input("tiny")]);
}

#[test]
fn a_net_with_squeeze_excitation_runs_on_onnx_runtime_as_on_the_cpu_engine() {
    let test = "a_net_with_squeeze_excitation_runs_on_onnx_runtime_as_on_the_cpu_engine";
    if !ort_available(test) {
        return;
    }
    let config = crate::cpu::small_se_config();
    let net = repvgg::fuse(&TrainNet::random(&config, 5)).expect("fuse");
    let inputs = [
        crate::cpu::random_input([2, 3, 40, 36], 6),
        crate::cpu::random_input([1, 3, 17, 23], 7),
    ];
    check(test, &net, &inputs);
}

#[test]
fn full_size_a0_runs_on_onnx_runtime_as_on_the_cpu_engine() {
    let test = "full_size_a0_runs_on_onnx_runtime_as_on_the_cpu_engine";
    if !ort_available(test) {
        return;
    }
    let train = TrainNet::random(&Config::official("a0").expect("config"), 11);
    let net = repvgg::fuse(&train).expect("fuse");
    check(
        test,
        &net,
        &[crate::cpu::random_input([1, 3, 224, 224], 11)],
    );
}
