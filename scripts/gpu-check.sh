#!/usr/bin/env bash
# The GPU check: everything a machine with a real GPU should run, in one go, writing JSON.
#
#   scripts/gpu-check.sh prepare   # here (the development machine, with cargo): build the
#                                  # binaries and gather what the GPU machine needs into .gpu-check/
#   scripts/gpu-check.sh run       # there (no cargo, no network): run it all, results in $OUT
#
# `prepare` needs the peer script ../shared/tools/torch_gpu_anchor.py (copied, not read at run
# time) and, when the GPU machine lacks a Vulkan loader, downloads into .gl/ the loader and the
# GL vendor-neutral dispatch libraries the NVIDIA driver's ICD links against (as the device
# tool's README describes; with the loader alone wgpu found no adapter on an H200). Both folders are git-ignored; send them along (the device
# tool's `carry`: [".gpu-check", ".gl"]).
#
# `run` writes at most 8 files to $OUT (default ./gpu-check-out):
#   log.txt         everything printed, with machine facts (nvidia-smi, glibc, Vulkan ICDs)
#   adapter.json    `reparam gpu info --json`
#   tests.txt       the reparam-wgsl test suite on the real GPU (REPARAM_REQUIRE_GPU=1)
#   layers.json     `reparam layers --backend gpu` for a0 and b0, batch 1 and 32, every kernel
#   network.txt     whole RepVGG-A0 / B0 runs (plain and multi-branch, batch 1 and 32)
#   torch.json      PyTorch fp32 (TF32 off) cuDNN numbers on the same layers and nets
#   criterion.txt   the criterion group conv3x3-gpu (only with GPU_CHECK_CRITERION=1)
# Every step has its own time limit so one hang cannot eat the whole lease (steps ordered by
# value: if the device tool stops the command at its 10-minute limit, what is already in $OUT
# still comes back). On an H200 the run took 37 s, and 230 s with the criterion group.
set -uo pipefail
cd "$(dirname "$0")/.."

STAGE=.gpu-check

prepare() {
  set -e
  cargo build --release --locked -p reparam-cli
  local tests bench
  tests=$(cargo test --release --locked -p reparam-wgsl --lib --no-run --message-format=json |
    sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -1)
  bench=$(cargo bench --locked -p reparam-benches --no-run --message-format=json |
    sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -1)
  rm -rf "$STAGE"
  mkdir -p "$STAGE/bin"
  cp target/release/reparam "$STAGE/bin/reparam"
  cp "$tests" "$STAGE/bin/wgsl-tests"
  cp "$bench" "$STAGE/bin/kernels-bench"
  strip "$STAGE"/bin/* 2>/dev/null || true
  cp ../shared/tools/torch_gpu_anchor.py "$STAGE/"
  if ! ls .gl/libvulkan1_*.deb .gl/libglvnd0_*.deb >/dev/null 2>&1; then
    mkdir -p .gl /tmp/amd64/partial
    local o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
    # shellcheck disable=SC2086
    apt-get $o update >/dev/null
    # shellcheck disable=SC2086
    (cd .gl && apt-get $o download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2)
  fi
  du -sh "$STAGE" .gl
  echo "prepared: send .gpu-check and .gl along, then run: scripts/gpu-check.sh run"
}

# step NAME SECONDS COMMAND...: run with a time limit and report the exit status on stderr (so a
# step's stdout can be redirected to a JSON file); a failed step never aborts the run.
step() {
  local name=$1 limit=$2
  shift 2
  echo "== $name (limit ${limit}s)" >&2
  local start=$SECONDS
  timeout "$limit" "$@"
  local rc=$?
  echo "== $name: exit $rc after $((SECONDS - start))s" >&2
}

run() {
  OUT=${OUT:-gpu-check-out}
  mkdir -p "$OUT"
  exec > >(tee "$OUT/log.txt") 2>&1
  local bin=$STAGE/bin
  if [ ! -x "$bin/reparam" ]; then
    echo "$bin/reparam is missing: run 'scripts/gpu-check.sh prepare' on the build machine first"
    exit 1
  fi
  echo "== machine"
  date -u
  uname -a
  ldd --version | head -1
  nvidia-smi || echo "nvidia-smi: not available"
  ls /usr/share/vulkan/icd.d /etc/vulkan/icd.d /usr/local/nvidia/share/vulkan/icd.d 2>&1
  # The Vulkan loader, and the GL dispatch library the NVIDIA ICD (libGLX_nvidia) needs.
  if ! ldconfig -p | grep -q libvulkan.so.1 || ! ldconfig -p | grep -q libGLdispatch.so.0; then
    echo "== Vulkan loader or GL dispatch library missing: unpacking .gl/*.deb"
    for f in .gl/*.deb; do dpkg -x "$f" /; done
    ldconfig
  fi
  local glx
  glx=$(ldconfig -p | sed -n 's/.*libGLX_nvidia.so.0 .*=> //p' | head -1)
  if [ -n "$glx" ]; then
    echo "== $glx: $(ldd "$glx" | grep -c 'not found') libraries not found"
  fi
  local icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
  if [ -e "$icd" ]; then
    export VK_DRIVER_FILES=$icd
    cat "$icd"
  fi
  local egl=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
  if [ -e "$egl" ]; then export __EGL_VENDOR_LIBRARY_FILENAMES=$egl; fi
  export REPARAM_GPU_ADAPTER=${REPARAM_GPU_ADAPTER:-NVIDIA}
  export REPARAM_REQUIRE_GPU=1
  export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-$(mktemp -d)}

  step "adapter" 60 "$bin/reparam" gpu info --json >"$OUT/adapter.json"
  cat "$OUT/adapter.json"
  # The shader-file listing test reads the source tree's path baked in at build time; skip it.
  step "test suite" 120 "$bin/wgsl-tests" --skip every_shader_file_is_in_the_table \
    >"$OUT/tests.txt" 2>&1
  tail -3 "$OUT/tests.txt"

  local parts=()
  for model in a0 b0; do
    for batch in 1 32; do
      local f="$OUT/layers-$model-n$batch.json"
      step "layers $model batch $batch" 90 "$bin/reparam" layers --backend gpu --model "$model" \
        --batch "$batch" --kernel all --repeats 10 --json >"$f"
      parts+=("$f")
    done
  done
  python3 - "$OUT/layers.json" "${parts[@]}" <<'PY'
import json, os, sys
rows = []
for path in sys.argv[2:]:
    try:
        with open(path) as f:
            rows += json.load(f)
    except (OSError, ValueError) as e:
        print(f"{path}: {e}")
    if os.path.exists(path):
        os.remove(path)
with open(sys.argv[1], "w") as f:
    json.dump(rows, f, indent=1)
print(f"layers.json: {len(rows)} rows")
PY

  {
    for model in a0 b0; do
      for batch in 1 32; do
        for form in plain multi-branch; do
          step "network $model $form batch $batch" 45 "$bin/reparam" run --model "$model" \
            --backend gpu --form "$form" --batch "$batch"
        done
      done
    done
  } >"$OUT/network.txt" 2>&1
  grep -E "^== network|run  " "$OUT/network.txt"

  step "torch anchor" 200 python3 "$STAGE/torch_gpu_anchor.py" --out "$OUT/torch.json"

  if [ "${GPU_CHECK_CRITERION:-0}" = 1 ]; then
    step "criterion conv3x3-gpu" 300 "$bin/kernels-bench" --bench conv3x3-gpu \
      --warm-up-time 0.5 --measurement-time 1 >"$OUT/criterion.txt" 2>&1
  fi
  echo "== done: results in $OUT"
}

case "${1:-}" in
  prepare) prepare ;;
  run) run ;;
  *)
    echo "usage: $0 prepare|run" >&2
    exit 2
    ;;
esac
