#!/usr/bin/env python3
"""Run a `reparam export` ONNX model with ONNX Runtime (CPU) and save its logits.

    ort_check.py MODEL.onnx INPUT.npy OUTPUT.npy [--time ITERS] [--threads T]

INPUT.npy holds the f32 batch [N, 3, H, W] for the graph input `input`; OUTPUT.npy receives
the f32 output `logits` [N, classes]. With --time ITERS the model is run ITERS more times after
one warm-up run, and the median latency is printed as `ort median X.XXX ms over ITERS runs
(T threads)`. --threads sets ONNX Runtime's intra-op threads (default: ONNX Runtime's choice),
with one inter-op thread and sequential execution.

Needs numpy and onnxruntime. Exit status: 0 on success, 2 for a usage error, 1 otherwise.
"""

import argparse
import statistics
import sys
import time


def positive(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="the .onnx model written by `reparam export`")
    parser.add_argument("input", help=".npy file with the f32 input batch [N, 3, H, W]")
    parser.add_argument("output", help=".npy file to write the f32 logits [N, classes] to")
    parser.add_argument("--time", type=positive, metavar="ITERS",
                        help="also time ITERS runs and print the median latency in ms")
    parser.add_argument("--threads", type=positive, metavar="T",
                        help="intra-op threads of ONNX Runtime")
    args = parser.parse_args()

    import numpy as np
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.inter_op_num_threads = 1
    if args.threads is not None:
        options.intra_op_num_threads = args.threads
    session = ort.InferenceSession(args.model, sess_options=options,
                                   providers=["CPUExecutionProvider"])

    x = np.load(args.input)
    if x.dtype != np.float32 or x.ndim != 4:
        print(f"error: {args.input}: expected an f32 array [N, C, H, W], "
              f"found {x.dtype} {list(x.shape)}", file=sys.stderr)
        return 1
    feeds = {"input": np.ascontiguousarray(x)}
    (logits,) = session.run(["logits"], feeds)
    np.save(args.output, np.ascontiguousarray(logits, dtype=np.float32))

    if args.time is not None:
        times = []
        for _ in range(args.time):
            start = time.perf_counter()
            session.run(["logits"], feeds)
            times.append((time.perf_counter() - start) * 1e3)
        threads = args.threads if args.threads is not None else "default"
        print(f"ort median {statistics.median(times):.3f} ms over {args.time} runs "
              f"({threads} threads, onnxruntime {ort.__version__}, input {list(x.shape)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
