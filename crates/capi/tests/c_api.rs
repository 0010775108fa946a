//! Compiles `tests/c/a0.c` against `libreparam_capi.a` with the system C compiler, runs it, and
//! compares what it wrote with the Rust engine: the RepVGG-A0 logits bitwise with `repvgg::Cpu`
//! (same net, input, ISA and thread count, and the engine is deterministic), the conv output
//! bitwise with a `Conv2dPlan` of the same layer and within the documented tolerance of
//! `reparam_tensor::reference`.
//!
//! Which library: `cargo test -p reparam-capi` and `cargo test --workspace --release` compile
//! this package's library with all its crate types before any of its integration tests run, and
//! rustc writes `libreparam_capi.a` into `target/<profile>/deps/` (no hash in the name: a cdylib or
//! staticlib has none), the folder this test executable is in. Checked with both commands: a
//! test build leaves it there and does not copy it up to `target/<profile>/` (only `cargo build`
//! does), so the test takes `deps/libreparam_capi.a`, falling back to `target/<profile>/` when deps/
//! lacks it. That is the file the same cargo invocation just brought up to date, in the same
//! profile and target dir. A nested `cargo build` from here instead would wait on the
//! build-directory lock the outer cargo holds (or, with another target dir, rebuild every
//! dependency). A missing library fails the test; only a missing C compiler skips it. The static
//! library is linked so the program runs without `LD_LIBRARY_PATH`.

use reparam_tensor::tolerance::{Tolerance, check_close};
use reparam_tensor::{ConvSpec, Epilogue, Tensor, reference};
use reparam_winograd::{Conv2dPlan, PlanOptions};
use repvgg::{Config, Cpu, CpuOptions, Engine, Graph, TrainNet, fuse};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The `libreparam_capi.a` cargo built for this test's profile (see the module docs).
fn static_library() -> Option<PathBuf> {
    let exe = std::env::current_exe().expect("the test executable's path");
    let deps = exe.parent().expect("the test executable is in deps/");
    let profile = deps.parent().expect("deps/ is in target/<profile>/");
    [
        deps.join("libreparam_capi.a"),
        profile.join("libreparam_capi.a"),
    ]
    .into_iter()
    .find(|p| p.is_file())
}

/// The same formulas as `a0.c` (integers over a power of two: exact in f32).
fn image_value(i: usize) -> f32 {
    (((i * 7919) % 2001) as i64 - 1000) as f32 / 1024.0
}
fn conv_input_value(i: usize) -> f32 {
    (((i * 13) % 89) as i64 - 44) as f32 / 64.0
}
fn weight_value(i: usize) -> f32 {
    (((i * 31) % 97) as i64 - 48) as f32 / 256.0
}
fn bias_value(o: usize) -> f32 {
    (o as f32 - 6.0) / 16.0
}

fn read_floats(path: &Path) -> Vec<f32> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    bytes
        .chunks_exact(4)
        .map(|b| f32::from_ne_bytes(b.try_into().expect("4 bytes")))
        .collect()
}

/// The A0 logits of `repvgg::Cpu` for the image of `a0.c`, with the C model's options.
fn rust_logits() -> Vec<f32> {
    let config = Config::official("RepVGG-A0").unwrap();
    let plain = fuse(&TrainNet::random(&config, 7)).unwrap();
    let graph = Graph::plain(&plain).unwrap();
    let options = CpuOptions {
        threads: Some(2),
        input_hw: (224, 224),
        ..CpuOptions::default()
    };
    let mut cpu = Cpu::new(&graph, &options).unwrap();
    let shape = [1, 3, 224, 224];
    let image = Tensor::new(shape, (0..3 * 224 * 224).map(image_value).collect()).unwrap();
    cpu.run(&image).unwrap().logits.data().to_vec()
}

/// Checks the conv output of `a0.c` against a `Conv2dPlan` (bitwise) and the oracle.
fn check_conv(actual: Vec<f32>) {
    let spec = ConvSpec::conv3x3(16, 24, 1, 2);
    let weight = Tensor::new(
        spec.weight_shape(),
        (0..24 * 8 * 9).map(weight_value).collect(),
    )
    .unwrap();
    let epilogue = Epilogue::bias_relu((0..24).map(bias_value).collect());
    let input = Tensor::new(
        [2, 16, 13, 11],
        (0..2 * 16 * 13 * 11).map(conv_input_value).collect(),
    )
    .unwrap();
    let plan = Conv2dPlan::new(spec, &weight, &epilogue, &PlanOptions::default()).unwrap();
    let mut planned = Tensor::zeros(plan.output_shape(input.shape()).unwrap()).unwrap();
    plan.run(&input, &mut planned, None).unwrap();
    assert_eq!(actual.len(), planned.len(), "conv output length");
    assert!(
        actual
            .iter()
            .zip(planned.data())
            .all(|(a, b)| a.to_bits() == b.to_bits()),
        "the C conv output differs from Conv2dPlan ({})",
        plan.algorithm()
    );
    let actual = Tensor::new(planned.shape(), actual).unwrap();
    let expected = reference::conv2d(&input, &spec, &weight, &epilogue).unwrap();
    let tolerance = Tolerance::for_reduction(8 * 9, plan.algorithm().error_factor());
    check_close(&actual, &expected, &tolerance, "C conv vs reference").unwrap();
}

#[test]
fn the_c_program_matches_the_rust_engine() {
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".to_owned());
    if Command::new(&cc).arg("--version").output().is_err() {
        println!("SKIP the_c_program_matches_the_rust_engine: no C compiler (`{cc}`)");
        return;
    }
    let lib = static_library().expect(
        "libreparam_capi.a is in neither target/<profile>/ nor its deps/: \
         cargo should have built the staticlib before this test",
    );
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("capi-{}", std::process::id()));
    std::fs::create_dir_all(&out).unwrap();
    let exe = out.join("a0");
    let compile = Command::new(&cc)
        .args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-O1", "-I"])
        .arg(crate_dir.join("../../include"))
        .arg(crate_dir.join("tests/c/a0.c"))
        .arg(&lib)
        // What the Rust standard library of a staticlib needs on Linux
        // (`rustc --print native-static-libs`).
        .args([
            "-lgcc_s",
            "-lutil",
            "-lrt",
            "-lpthread",
            "-lm",
            "-ldl",
            "-lc",
            "-o",
        ])
        .arg(&exe)
        .output()
        .unwrap();
    assert!(
        compile.status.success(),
        "compiling a0.c failed:\n{}",
        String::from_utf8_lossy(&compile.stderr)
    );
    let (logits_path, conv_path) = (out.join("logits.bin"), out.join("conv.bin"));
    let missing = out.join("no-such-checkpoint.safetensors");
    let run = Command::new(&exe)
        .arg(&logits_path)
        .arg(&conv_path)
        .arg(&missing)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success() && stdout.contains("all checks passed"),
        "a0 failed ({}):\n{stdout}\n{}",
        run.status,
        String::from_utf8_lossy(&run.stderr)
    );
    let logits = read_floats(&logits_path);
    let expected = rust_logits();
    assert_eq!(logits.len(), 1000);
    assert!(logits.iter().all(|v| v.is_finite()), "non-finite logits");
    let first_diff = logits
        .iter()
        .zip(&expected)
        .position(|(a, b)| a.to_bits() != b.to_bits());
    assert_eq!(
        first_diff, None,
        "C logits differ from repvgg::Cpu at {first_diff:?}"
    );
    check_conv(read_floats(&conv_path));
    std::fs::remove_dir_all(&out).unwrap();
}
