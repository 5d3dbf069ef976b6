#!/usr/bin/env python3
"""Benchmark ONNX Runtime (CPU, 1 intra-op thread, default optimisations) on one model.

Usage: ort_session_bench.py MODEL.onnx [--runs N]
Times session creation N times (default 10), then one warm-up run and 20 timed runs on
seeded random input (dynamic dims resolved as in make_references.py), and prints JSON:
{"create_ms_median": ..., "run_ms_median": ..., ...}.
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
    args = ap.parse_args()

    create_ms = []
    for _ in range(max(args.runs, 1)):
        t0 = time.perf_counter()
        sess = session(args.model, threads=1)
        create_ms.append((time.perf_counter() - t0) * 1e3)

    feeds = make_inputs(sess, model_stem(args.model), images=False)
    sess.run(None, feeds)  # warm-up
    run_ms = []
    for _ in range(RUNS):
        t0 = time.perf_counter()
        sess.run(None, feeds)
        run_ms.append((time.perf_counter() - t0) * 1e3)

    print(json.dumps({
        "create_ms_median": round(statistics.median(create_ms), 3),
        "run_ms_median": round(statistics.median(run_ms), 3),
        "model": args.model,
        "input_shapes": [list(x.shape) for x in feeds.values()],
        "creates": len(create_ms),
        "runs": RUNS,
        "onnxruntime": ort.__version__,
    }))


if __name__ == "__main__":
    main()
