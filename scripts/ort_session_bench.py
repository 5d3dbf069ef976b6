#!/usr/bin/env python3
"""Benchmark ONNX Runtime (CPU, sequential execution, default optimisations) on one model.

Usage: ort_session_bench.py MODEL.onnx [--runs N] [--threads T] [--run-count R]
Times session creation N times (default 10), then one warm-up run and R timed runs (default 20)
on seeded random input (dynamic dims resolved as in make_references.py), with T intra-op
threads (default 1; inter-op 1, ORT_SEQUENTIAL), and prints JSON:
{"create_ms_median": ..., "run_ms_median": ..., "threads": T, ...}.
"""
import argparse
import json
import statistics
import time

import onnxruntime as ort

from sqz_models import make_inputs, model_stem, session

RUNS = 20


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("--runs", type=int, default=10, help="session creations to time")
    ap.add_argument("--threads", type=int, default=1, help="intra-op threads")
    ap.add_argument("--run-count", type=int, default=RUNS, help="timed runs after the warm-up")
    args = ap.parse_args()
    threads = max(args.threads, 1)  # 0 would let ORT choose
    run_count = max(args.run_count, 1)

    create_ms = []
    for _ in range(max(args.runs, 1)):
        t0 = time.perf_counter()
        sess = session(args.model, threads=threads)
        create_ms.append((time.perf_counter() - t0) * 1e3)

    feeds = make_inputs(sess, model_stem(args.model), images=False)
    sess.run(None, feeds)  # warm-up
    run_ms = []
    for _ in range(run_count):
        t0 = time.perf_counter()
        sess.run(None, feeds)
        run_ms.append((time.perf_counter() - t0) * 1e3)

    print(json.dumps({
        "create_ms_median": round(statistics.median(create_ms), 3),
        "run_ms_median": round(statistics.median(run_ms), 3),
        "model": args.model,
        "input_shapes": [list(x.shape) for x in feeds.values()],
        "creates": len(create_ms),
        "runs": run_count,
        "threads": threads,
        "onnxruntime": ort.__version__,
    }))


if __name__ == "__main__":
    main()
