#!/usr/bin/env python3
"""Benchmark squeeze against ONNX Runtime and tract; write docs/BENCHMARKS.md.

Run it through scripts/bench.sh (which fetches the test data and builds `squeeze` and the
`tract_bench` example in release), or directly with the venv python:
    ~/.cache/squeeze/venv/bin/python scripts/bench.py [--models a,b] [--out FILE] [--keep]

Per model, interleaved (all measurements of one model before the next model starts):
  * .onnx bytes and .sqz bytes for every weight storage mode (f32, f16, int8, palette4),
    with the byte-shuffle filter (default) and without (--no-filter), and for f32 in-place
    (--in-place: raw f32, no filter, no zstd);
  * load-to-ready of the int8, f32 (zstd) and f32 in-place .sqz (`squeeze bench --json`, median
    of 20 loads, with the "prepare" phase: kernel choice, weight prepacking, memory plan),
    ONNX Runtime session creation (scripts/ort_session_bench.py) and tract load+optimize
    (examples/tract_bench.rs);
  * run latency at 1 thread: squeeze (f32 and int8 .sqz), ORT and tract; then at 2 threads:
    squeeze (f32 .sqz, `--threads 2`) and ORT (`intra_op_num_threads=2`). tract_bench runs
    single-threaded only (this build of tract has no multithreaded matmul), so tract is 1 thread;
  * MobileNetV2 only: f32 and int8 packed at zstd levels 3, 9 and 19 (default), size and load;
  * PP-OCRv4 det only: int8 size with --f16-kernel-max 400 (as tests/accuracy.rs packs it).
Once per run, before the models: `squeeze bench --fma-peak` (this core's clock and peak FMA
throughput, measured), and a one-node 1x1 Conv (256->256 channels on 1x256x56x56, no bias;
generated with `onnx` into $SQUEEZE_CACHE/bench/) run by `squeeze bench` at 1 thread: its
GFLOP/s against the measured peak (--no-gemm skips this).
Once per run, camera frames (--no-frames skips this): the 1920x1080 NV21 frame to MobileNetV2's
1x3x224x224 normalized f32 input, rotated 90 degrees, 1 thread: `squeeze bench --frame` (conversions
back to back, and alternating with the model as in an app) against OpenCV (opencv-python-headless,
cv2.setNumThreads(1): cvtColor, resize, rotate, normalize; INTER_AREA as squeeze averages, and
INTER_LINEAR), and the memory floor: the frame's bytes over this machine's copy bandwidth.
The accuracy figures come from $SQUEEZE_CACHE/accuracy.json, written by
`cargo test --release --test accuracy` (not run here). Any step that fails is recorded as
"n/a" with its error in a footnote; the doc is always written. Packed files go to a temporary folder under $SQUEEZE_CACHE/bench/ (removed at the end
unless --keep); the raw numbers are saved as $SQUEEZE_CACHE/bench/results-<time>.json.
$SQUEEZE_BIN overrides the squeeze binary (default target/release/squeeze).
"""
import argparse
import datetime
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import onnx
import onnxruntime as ort

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sqz_models import CACHE, MODELS_DIR, REPO, input_shape  # noqa: E402

# (label, file stem, note). EfficientNet-Lite0 stands in for EfficientNet-B0 (no B0 with real
# weights ships in a registry package); PP-OCR det runs at 320x320 (sqz_models.SHAPE_OVERRIDES).
MODELS = [
    ("MobileNetV2", "mobilenetv2", ""),
    ("MobileNetV3-small", "mobilenetv3-small", ""),
    ("SqueezeNet1.1", "squeezenet1.1", ""),
    ("ShuffleNetV2 x1.0", "shufflenetv2-x1.0", ""),
    ("ResNet18", "resnet18", ""),
    ("EfficientNet-Lite0", "efficientnet-lite0-fp32", "stand-in for EfficientNet-B0"),
    ("PP-OCRv4 det", "ppocr-det-v4", "320x320 instead of 640x640, to keep the run short"),
    ("PP-OCR cls", "ppocr-cls-mobile-v2", ""),
    ("EfficientNet-Lite0 int8", "efficientnet-lite0-int8-qop",
     "ORT's static int8 (QOperator), run as integer kernels; every storage mode keeps its int8 weights"),
]
MODES = ["f32", "f16", "int8", "palette4"]
IN_PLACE = ["--weights", "f32", "--in-place"]  # raw f32: a mapped file is used with no copy
# .sqz files whose load is timed: (label, pack results key, bench results key).
LOAD_STORAGES = [
    ("int8", "pack_int8_filter", "squeeze_int8"),
    ("f32 zstd", "pack_f32_filter", "squeeze_f32"),
    ("f32 in-place", "pack_f32_inplace", "squeeze_f32_inplace"),
]

SQZ_LOADS = 20  # timed .sqz loads (median); they take milliseconds
SQZ_LOADS_2T = 3  # loads of the 2-thread `squeeze bench` (its load is not reported)
ORT_LOADS = 10  # ORT session creations (median)
TRACT_LOADS, TRACT_RUNS = 5, 20
ORT_RUNS = 30  # `ort_session_bench.py --run-count`
MIN_RUNS, MAX_RUNS = 10, 50  # squeeze runs on the f32 .sqz, fewer when a run is slow
INT8_RUNS = 5  # squeeze runs on the int8 .sqz
RUN_BUDGET_S = 3.0  # rough time allowed for one `squeeze bench`'s runs

# zstd levels compared on one model; the default level's files are the main int8/f32 ones.
LEVEL_MODEL, LEVEL_MODES, LEVELS, DEFAULT_LEVEL = "mobilenetv2", ["f32", "int8"], [3, 9, 19], 19
# PP-OCRv4 det's int8 is packed with this --f16-kernel-max in tests/accuracy.rs (default 128).
DET_MODEL, DET_F16_KERNEL_MAX = "ppocr-det-v4", 400

# Targets (MobileNetV2, default pack = with the byte-shuffle filter).
SIZE_TARGETS = [("int8", 0.26), ("palette4", 0.15), ("f16", 0.50)]
LOAD_SPEEDUP_TARGET = 10.0  # ORT session creation / squeeze .sqz load
# Speed targets: 1-thread squeeze f32 latency / ORT latency at most this, on these models ...
LATENCY_TARGET, LATENCY_MODELS = 1.0, ["mobilenetv2", "mobilenetv3-small", "squeezenet1.1",
                                        "shufflenetv2-x1.0", "resnet18", "efficientnet-lite0-fp32",
                                        "ppocr-det-v4"]
# ... 2 threads at least this much faster than 1 thread, on these ...
SPEEDUP_TARGET, SPEEDUP_MODELS = 1.6, ["mobilenetv2", "resnet18"]
# ... and a 1x1 conv (as GEMM) at 1 thread at least this fraction of the measured peak FMA rate.
GEMM_TARGET = 0.60
GEMM_C, GEMM_HW = 256, 56  # Conv 1x1, GEMM_C -> GEMM_C channels on 1 x GEMM_C x GEMM_HW x GEMM_HW
GEMM_FLOPS = 2 * GEMM_C * GEMM_C * GEMM_HW * GEMM_HW
GEMM_RUNS, GEMM_ORT_RUNS, GEMM_PROFILE_RUNS = 50, 30, 20
# Camera frames: a 1920x1080 NV21 frame to a 224x224 normalized f32 input, rotated 90 degrees.
FRAME = MODELS_DIR / "data" / "camera_coffee_1920x1080.nv21"
FRAME_W, FRAME_H, FRAME_ROTATE, FRAME_MODEL = 1920, 1080, 90, "mobilenetv2"
FRAME_RUNS, FRAME_CV_RUNS = 50, 50
FRAME_TARGET_MS, FRAME_CV_TARGET = 0.5, 3.0  # at most this, and this many times faster than OpenCV
# The app library (ffi/): aarch64 builds made by bench.sh, and the C ABI's frame run.
LIB_DIR = CACHE / "bench" / "lib"  # <variant>/libsqueeze_ffi.so, written by bench.sh
LIB_VARIANTS = [  # (directory, what it holds)
    ("sqz", "`.sqz` only, C ABI (no `onnx`, no JNI)"),
    ("sqz-jni", "`.sqz` only, C ABI + JNI (the Android library)"),
    ("sqz-jni-lto", "the same, `--profile mobile` (fat LTO, one codegen unit)"),
    ("onnx-jni", "with ONNX import (`--features onnx`), C ABI + JNI"),
]
LIB_SIZE_TARGET = 2 * 1024 * 1024  # stripped .sqz-only aarch64 libsqueeze.so
FFI_RUN_FRAME = REPO / "target" / "release" / "ffi_run_frame"  # ffi/bench/run_frame.c, built by bench.sh
IMAGENET_MEAN, IMAGENET_STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
TOP1_TARGET = 0.99  # EfficientNet-Lite0 top-1 agreement of a packed model with the float one
COSINE_TARGET = 0.999  # worst output cosine of a packed PP-OCR model against the float one
ACCURACY = CACHE / "accuracy.json"  # written by `cargo test --release --test accuracy`
ACCURACY_CMD = "cargo test --release --test accuracy"
OCR_MODELS = [("det", "ppocr-det-v4"), ("cls", "ppocr-cls-mobile-v2")]  # accuracy.json keys

QUIET_BUSY = 0.25  # before each model, wait while other processes use this much of the CPUs
BUSY_MARK = "(busy)"  # marks models measured while others used >= QUIET_BUSY of the CPUs

SQUEEZE = Path(os.environ.get("SQUEEZE_BIN") or REPO / "target" / "release" / "squeeze")
TRACT = REPO / "target" / "release" / "examples" / "tract_bench"
ORT_BENCH = Path(__file__).resolve().parent / "ort_session_bench.py"
REPRO = "scripts/bench.sh"


# ---------------------------------------------------------------- running steps

class StepError(Exception):
    pass


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def run_cmd(cmd, timeout, env=None):
    """Runs cmd; returns stdout. Raises StepError with a short message on any failure."""
    try:
        p = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=timeout,
                           env=env, cwd=REPO)
    except subprocess.TimeoutExpired:
        raise StepError(f"timed out after {timeout} s")
    except OSError as e:
        raise StepError(f"cannot start {Path(str(cmd[0])).name}: {e}")
    if p.returncode != 0:
        lines = [l.strip() for l in (p.stderr.strip() or p.stdout.strip() or "(no output)").splitlines() if l.strip()]
        errs = [l for l in lines if "error" in l.lower() or "panicked" in l]
        raise StepError(f"exit code {p.returncode}: " + " / ".join(errs[-2:] or lines[-3:]))
    return p.stdout


def last_json(out):
    for line in reversed(out.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except json.JSONDecodeError as e:
                raise StepError(f"bad JSON output ({e}): {line[:200]}")
    raise StepError("no JSON line in output: " + out.strip()[-200:])


def step(res, key, fn):
    """res[key] = fn(), or res[key] = {"error": msg}."""
    t0 = time.perf_counter()
    try:
        res[key] = fn()
    except StepError as e:
        res[key] = {"error": str(e)}
    except Exception as e:  # noqa: BLE001 - the doc must be written whatever happens
        res[key] = {"error": f"{type(e).__name__}: {e}"}
    dt = time.perf_counter() - t0
    err = res[key].get("error") if isinstance(res[key], dict) else None
    log(f"  {key}: {'ERROR ' + err[:120] if err else 'ok'} ({dt:.1f} s)")
    return res[key]


def threads_env(n):
    env = dict(os.environ)
    env.update(RAYON_NUM_THREADS=str(n), OMP_NUM_THREADS=str(n))
    return env


# ---------------------------------------------------------------- per-model benchmark

def model_inputs(path, stem):
    """[(name, concrete shape, had dynamic dims)] of the graph inputs that are not initializers."""
    m = onnx.load(str(path), load_external_data=False)
    inits = {i.name for i in m.graph.initializer}
    out = []
    for i in m.graph.input:
        if i.name in inits:
            continue
        declared = [d.dim_value if d.HasField("dim_value") else (d.dim_param or None)
                    for d in i.type.tensor_type.shape.dim]
        dynamic = any(not isinstance(d, int) or d <= 0 for d in declared)
        out.append((i.name, input_shape(stem, declared), dynamic))
    return out


def cpu_busy(interval=1.0):
    """Fraction (0..1) of all CPUs busy over `interval` seconds, from /proc/stat (None if unknown).
    Measured while this script sleeps, so it is other processes' load."""
    def sample():
        f = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        idle = f[3] + (f[4] if len(f) > 4 else 0)
        return sum(f[:8]), idle
    try:
        t0, i0 = sample()
        time.sleep(interval)
        t1, i1 = sample()
        return max(0.0, 1.0 - (i1 - i0) / max(1, t1 - t0))
    except Exception:  # noqa: BLE001
        return None


class OtherCpu:
    """Average number of CPUs that *other* processes kept busy between start() and stop():
    all busy time from /proc/stat minus this process's and its children's CPU time."""

    def _now(self):
        f = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        hz = os.sysconf("SC_CLK_TCK")
        t = os.times()
        busy = (sum(f[:8]) - f[3] - f[4]) / hz
        return busy, time.monotonic(), t.user + t.system + t.children_user + t.children_system

    def start(self):
        try:
            self.t0 = self._now()
        except Exception:  # noqa: BLE001
            self.t0 = None
        return self

    def stop(self):
        if self.t0 is None:
            return None
        try:
            b1, w1, o1 = self._now()
        except Exception:  # noqa: BLE001
            return None
        b0, w0, o0 = self.t0
        return max(0.0, ((b1 - b0) - (o1 - o0)) / max(1e-9, w1 - w0))


def wait_quiet(max_wait_s):
    """Waits (up to max_wait_s) until other processes use < QUIET_BUSY of the CPUs; returns the
    last busy fraction seen."""
    deadline = time.perf_counter() + max_wait_s
    busy = cpu_busy()
    while busy is not None and busy >= QUIET_BUSY and time.perf_counter() < deadline:
        log(f"  machine busy ({busy:.0%} of CPUs used by other processes); waiting")
        time.sleep(4)
        busy = cpu_busy()
    return busy


def shape_str(shape):
    return "x".join(str(d) for d in shape)


def level_keys(mode, level):
    """(pack, bench) results keys of the LEVEL_MODEL `mode` .sqz packed at zstd `level`; at the
    default level they are the main (filter) ones."""
    if level == DEFAULT_LEVEL:
        return f"pack_{mode}_filter", f"squeeze_{mode}"
    return f"pack_{mode}_level{level}", f"squeeze_{mode}_level{level}"


def bench_model(label, stem, tmp, wait_idle_s):
    res = {"label": label, "stem": stem}
    path = MODELS_DIR / f"{stem}.onnx"
    log(f"{label} ({path.name})")
    t_wait = time.perf_counter()
    res["background_busy_before"] = wait_quiet(wait_idle_s)
    res["waited_s"] = round(time.perf_counter() - t_wait, 1)
    other = OtherCpu().start()
    t_model = time.perf_counter()
    if not path.is_file():
        res["error"] = f"{path} not found"
        return res
    res["onnx_bytes"] = path.stat().st_size
    try:
        inputs = model_inputs(path, stem)
    except Exception as e:  # noqa: BLE001
        res["error"] = f"reading inputs: {e}"
        return res
    res["inputs"] = [{"name": n, "shape": s} for n, s, _ in inputs]
    shape_flags = [a for n, s, dyn in inputs if dyn for a in ("--input-shape", f"{n}={shape_str(s)}")]
    # Fixing every input's shape is harmless for static models; it keeps pack/bench/ORT/tract
    # on the same shapes. Only dynamic inputs need it, so only those get the flag.

    def pack(key, out, flags):
        """Packs the model into tmp/out; res[key] = bytes and time. Returns the file, or None."""
        def run():
            t0 = time.perf_counter()
            run_cmd([SQUEEZE, "pack", path, "-o", tmp / out, *flags, *shape_flags], timeout=600)
            if not (tmp / out).is_file():
                raise StepError("pack succeeded but wrote no file")
            return {"bytes": (tmp / out).stat().st_size, "pack_s": round(time.perf_counter() - t0, 2)}
        return None if "error" in step(res, key, run) else tmp / out

    def bench(key, f, runs, threads=1, loads=SQZ_LOADS):
        """res[key] = `squeeze bench` JSON of the .sqz f (`loads` timed loads, then runs), with
        `threads` threads."""
        def run():
            if f is None:
                raise StepError("no .sqz (pack failed)")
            cmd = [SQUEEZE, "bench", f, "--runs", runs, "--loads", loads, "--json", "--threads", threads]
            env = threads_env(threads)
            try:
                r = last_json(run_cmd(cmd, timeout=900, env=env))
            except StepError as e:
                if not shape_flags:
                    raise
                # the .sqz may still want the concrete input shapes
                try:
                    r = last_json(run_cmd(cmd + shape_flags, timeout=900, env=env))
                except StepError:
                    raise e
            if r.get("threads") not in (None, threads):
                raise StepError(f"asked for {threads} threads, `squeeze bench` used {r.get('threads')}")
            return r
        r = step(res, key, run)
        r.setdefault("runs", runs)
        return r

    # 1. sizes
    sqz = {}  # pack results key -> file
    for mode in MODES:
        for filt in ("filter", "nofilter"):
            key = f"pack_{mode}_{filt}"
            sqz[key] = pack(key, f"{stem}.{mode}.{filt}.sqz",
                            ["--weights", mode, *([] if filt == "filter" else ["--no-filter"])])
    sqz["pack_f32_inplace"] = pack("pack_f32_inplace", f"{stem}.f32.inplace.sqz", IN_PLACE)

    # 2. squeeze load + run, 1 thread. The int8 bench is mostly for load time; its run time sizes
    # the f32 runs (the same kernels run: int8 weights are dequantized at load). The in-place
    # one is for load time only.
    r = bench("squeeze_int8", sqz["pack_int8_filter"], INT8_RUNS)
    p50 = r.get("p50_ms") or r.get("first_run_ms")
    runs = max(MIN_RUNS, min(MAX_RUNS, int(RUN_BUDGET_S * 1e3 / p50))) \
        if isinstance(p50, (int, float)) and p50 > 0 else MAX_RUNS
    bench("squeeze_f32", sqz["pack_f32_filter"], runs)
    bench("squeeze_f32_inplace", sqz["pack_f32_inplace"], 1)

    if stem == LEVEL_MODEL:
        for mode in LEVEL_MODES:
            for level in LEVELS:
                if level != DEFAULT_LEVEL:
                    pack_key, bench_key = level_keys(mode, level)
                    f = pack(pack_key, f"{stem}.{mode}.level{level}.sqz", ["--weights", mode, "--level", str(level)])
                    bench(bench_key, f, 1)
    if stem == DET_MODEL:
        pack("pack_int8_det_kernel_max", f"{stem}.int8.f16max{DET_F16_KERNEL_MAX}.sqz",
             ["--weights", "int8", "--f16-kernel-max", str(DET_F16_KERNEL_MAX)])

    # 3. ONNX Runtime (1 intra-op thread)
    def ort_bench(threads, creates):
        def run():
            r = last_json(run_cmd([sys.executable, ORT_BENCH, path, "--runs", creates, "--threads", threads,
                                   "--run-count", ORT_RUNS], timeout=900, env=threads_env(threads)))
            if r.get("threads") != threads:
                raise StepError(f"ort_session_bench.py did not run with {threads} threads: {r}")
            return r
        return run
    step(res, "ort", ort_bench(1, ORT_LOADS))

    # 4. tract load+optimize and run (one thread)
    def tract():
        if len(inputs) != 1:
            raise StepError(f"tract_bench handles one input, model has {len(inputs)}")
        if not TRACT.is_file():
            raise StepError(f"{TRACT.relative_to(REPO)} not built")
        r = last_json(run_cmd([TRACT, path, "--shape", shape_str(inputs[0][1]), "--loads", TRACT_LOADS,
                               "--runs", TRACT_RUNS], timeout=900, env=threads_env(1)))
        if "error" in r:
            raise StepError("tract: " + str(r["error"]).replace("\n", " / "))
        return r
    step(res, "tract", tract)

    # 5. 2 threads: squeeze f32 .sqz, then ORT (tract_bench has no threads option)
    bench("squeeze_f32_2t", sqz["pack_f32_filter"], runs, threads=2, loads=SQZ_LOADS_2T)
    step(res, "ort_2t", ort_bench(2, 1))

    res["other_cpus"] = other.stop()  # CPUs used by other processes, on average, while measuring
    res["wall_s"] = round(time.perf_counter() - t_model, 1)
    log(f"  {label} done in {res['wall_s']} s")
    return res


# ---------------------------------------------------------------- 1x1 conv GEMM vs peak FMA

def gemm_model(base):
    """The one-node Conv 1x1 model (GEMM_C -> GEMM_C on 1 x GEMM_C x GEMM_HW x GEMM_HW, no
    bias, seeded random weights), written once under `base` ($SQUEEZE_CACHE/bench)."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    path = base / f"conv1x1-{GEMM_C}x{GEMM_C}-{GEMM_HW}x{GEMM_HW}.onnx"
    if path.is_file():
        return path
    w = np.random.default_rng(11).standard_normal((GEMM_C, GEMM_C, 1, 1)).astype(np.float32) / 16
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["y"], kernel_shape=[1, 1])], "conv1x1",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, GEMM_C, GEMM_HW, GEMM_HW])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, GEMM_C, GEMM_HW, GEMM_HW])],
        initializer=[numpy_helper.from_array(w, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    tmp = path.with_suffix(".tmp")
    onnx.save(model, str(tmp))
    tmp.replace(path)
    return path


def cpuinfo_mhz():
    """The "cpu MHz" lines of /proc/cpuinfo: {"min", "max", "cpus"}, or {"error"}."""
    try:
        mhz = [float(l.split(":", 1)[1]) for l in Path("/proc/cpuinfo").read_text().splitlines()
               if l.startswith("cpu MHz")]
    except (OSError, ValueError) as e:
        return {"error": f"/proc/cpuinfo: {e}"}
    if not mhz:
        return {"error": "/proc/cpuinfo has no \"cpu MHz\" line"}
    return {"min": min(mhz), "max": max(mhz), "cpus": len(mhz)}


def gemm_bench(base, wait_idle_s):
    """The FMA probe (before and after), the 1x1 conv at 1 thread (and at 2 for reference) and
    ORT on the same conv at 1 thread."""
    res = {"label": "1x1 conv", "flops": GEMM_FLOPS}
    log(f"1x1 conv GEMM {GEMM_C}->{GEMM_C} on {GEMM_HW}x{GEMM_HW} vs peak FMA")
    res["background_busy_before"] = wait_quiet(wait_idle_s)
    other = OtherCpu().start()
    res["cpuinfo_mhz"] = cpuinfo_mhz()

    def probe():
        return last_json(run_cmd([SQUEEZE, "bench", "--fma-peak"], timeout=120, env=threads_env(1)))
    step(res, "fma_peak_before", probe)
    try:
        path = gemm_model(base)
        res["model"] = str(path)
    except Exception as e:  # noqa: BLE001
        res["error"] = f"generating the conv model: {type(e).__name__}: {e}"
        path = None

    def squeeze(threads):
        def run():
            if path is None:
                raise StepError(res["error"])
            return last_json(run_cmd([SQUEEZE, "bench", path, "--runs", GEMM_RUNS, "--loads", 1, "--json",
                                      "--threads", threads], timeout=600, env=threads_env(threads)))
        return run
    step(res, "squeeze", squeeze(1))

    def kernel():
        """The kernel `squeeze bench --profile` reports for the conv node, and its own time (mean
        ms per profiled run, without the input copy and output of a whole run)."""
        if path is None:
            raise StepError(res["error"])
        out = run_cmd([SQUEEZE, "bench", path, "--runs", GEMM_PROFILE_RUNS, "--loads", 1, "--threads", 1,
                       "--profile"], timeout=300, env=threads_env(1))
        lines = out.split("slowest nodes", 1)[-1].strip().splitlines()[1:]
        for line in lines:
            f = line.split()
            if len(f) >= 4 and f[2] == "Conv":
                return {"name": f[3], "node_ms": float(f[0])}
        raise StepError("no Conv line in `squeeze bench --profile` output")
    step(res, "kernel", kernel)
    step(res, "fma_peak_after", probe)
    step(res, "squeeze_2t", squeeze(2))
    step(res, "ort", lambda: last_json(run_cmd([sys.executable, ORT_BENCH, path, "--runs", 1, "--threads", 1,
                                                "--run-count", GEMM_ORT_RUNS], timeout=600,
                                               env=threads_env(1))) if path else {"error": res["error"]})
    res["other_cpus"] = other.stop()
    return res


def frame_bench():
    """squeeze's frame path (`squeeze bench --frame`), OpenCV's pipelines on the same frame, and
    the copy bandwidth of this machine (the floor for reading the frame once)."""
    import numpy as np
    res = {"label": "camera frame", "bytes": FRAME_W * FRAME_H * 3 // 2}
    log(f"camera frame {FRAME_W}x{FRAME_H} NV21 -> 224x224 f32, rotated {FRAME_ROTATE}")
    step(res, "squeeze", lambda: last_json(run_cmd(
        [SQUEEZE, "bench", MODELS_DIR / f"{FRAME_MODEL}.onnx", "--threads", 1, "--runs", FRAME_RUNS,
         "--loads", 1, "--frame", f"{FRAME_W}x{FRAME_H}", "--rotate", FRAME_ROTATE, "--json"],
        timeout=600, env=threads_env(1))))

    def median_ms(fn, runs):
        for _ in range(3):
            fn()
        ts = []
        for _ in range(runs):
            t = time.perf_counter()
            fn()
            ts.append((time.perf_counter() - t) * 1e3)
        return float(np.median(ts))

    def opencv():
        import cv2
        cv2.setNumThreads(1)
        nv21 = np.fromfile(FRAME, dtype=np.uint8).reshape(FRAME_H * 3 // 2, FRAME_W)
        mean = np.array(IMAGENET_MEAN, np.float32) * 255
        std = np.array(IMAGENET_STD, np.float32) * 255

        def pipeline(interpolation):
            rgb = cv2.cvtColor(nv21, cv2.COLOR_YUV2RGB_NV21)
            small = cv2.resize(rgb, (224, 224), interpolation=interpolation)
            small = cv2.rotate(small, cv2.ROTATE_90_CLOCKWISE)
            return np.ascontiguousarray(((small.astype(np.float32) - mean) / std).transpose(2, 0, 1))
        return {"version": cv2.__version__,
                "area_ms": median_ms(lambda: pipeline(cv2.INTER_AREA), FRAME_CV_RUNS),
                "linear_ms": median_ms(lambda: pipeline(cv2.INTER_LINEAR), FRAME_CV_RUNS)}
    step(res, "opencv", opencv)

    def c_abi():
        """The same frame to output through the C ABI and through the Rust Session, on one .sqz,
        alternating five times; the lowest of each side's medians (this VM's noise only ever
        adds time, so the least disturbed median is the fairest estimate of each side's cost)."""
        sqz = CACHE / "bench" / f"{FRAME_MODEL}-f32.sqz"
        run_cmd([SQUEEZE, "pack", MODELS_DIR / f"{FRAME_MODEL}.onnx", "-o", sqz], timeout=600)
        rust, c = [], []
        for _ in range(5):
            rust.append(last_json(run_cmd(
                [SQUEEZE, "bench", sqz, "--threads", 1, "--runs", FRAME_RUNS, "--loads", 1,
                 "--frame", f"{FRAME_W}x{FRAME_H}", "--rotate", FRAME_ROTATE, "--json"],
                timeout=600, env=threads_env(1)))["frame_to_output_p50_ms"])
            c.append(last_json(run_cmd(
                [FFI_RUN_FRAME, sqz, FRAME_W, FRAME_H, FRAME_ROTATE, FRAME_RUNS],
                timeout=600, env=threads_env(1)))["run_frame_p50_ms"])
        return {"rust_ms": min(rust), "c_ms": min(c), "rust_medians_ms": rust, "c_medians_ms": c}
    step(res, "c_abi", c_abi)

    def copy():
        src = np.random.default_rng(0).integers(0, 255, res["bytes"], dtype=np.uint8)
        dst = np.empty_like(src)
        ms = median_ms(lambda: np.copyto(dst, src), 200)
        return {"copy_ms": ms, "gb_s": res["bytes"] / ms / 1e6}
    step(res, "copy", copy)
    return res


def crate_of(symbol):
    """The crate a demangled symbol belongs to (`<a::B as c::D>::f` counts for `a`), or a bucket."""
    name = symbol.lstrip("<&*")
    if name.startswith(("dyn ", "impl ")):
        name = name.split(" ", 1)[1]
    head = name.split("::", 1)[0]
    if "::" not in name or not head.replace("_", "").isalnum():
        return "C and unnamed (zstd, libc glue, …)"
    return head


def lib_size():
    """Stripped sizes of the aarch64 app libraries bench.sh built, and what is biggest in each."""
    out = {}
    for variant, _ in LIB_VARIANTS:
        lib = LIB_DIR / variant / "libsqueeze_ffi.so"
        if not lib.exists():
            out[variant] = {"error": f"{lib} not built"}
            continue
        stripped = lib.with_suffix(".stripped.so")
        run_cmd(["aarch64-linux-gnu-strip", "-o", stripped, lib], timeout=120)
        by_crate = {}
        listing = run_cmd(["aarch64-linux-gnu-nm", "-S", "--size-sort", "-C", lib], timeout=120)
        for line in listing.splitlines():
            parts = line.split(" ", 3)
            if len(parts) == 4 and parts[2].lower() in "tTrRdDbBvVwW":
                crate = crate_of(parts[3])
                by_crate[crate] = by_crate.get(crate, 0) + int(parts[1], 16)
        top = sorted(by_crate.items(), key=lambda kv: -kv[1])[:8]
        out[variant] = {"stripped": stripped.stat().st_size, "unstripped": lib.stat().st_size,
                        "top": top}
    return out


def write_lib_size(A, sizes, notes):
    A("## App library size (aarch64)")
    A("")
    A("`libsqueeze_ffi.so` (shipped as `libsqueeze.so`) for `aarch64-unknown-linux-gnu`, built by "
      "`scripts/bench.sh` with Debian's cross gcc, then stripped (`aarch64-linux-gnu-strip`). "
      "Contributors: symbol sizes (`nm -S`) of the unstripped library summed by crate; they cover "
      "code and constant data, not the dynamic-linking tables.")
    A("")
    A("| build | stripped | largest contributors |")
    A("| --- | --- | --- |")
    for variant, what in LIB_VARIANTS:
        v = sizes.get(variant, {"error": "not measured"})
        if "error" in v:
            A(f"| {what} | {notes.na(v['error'])} | |")
            continue
        top = ", ".join(f"{c} {b / 1024:,.0f} KiB" for c, b in v["top"][:6])
        A(f"| {what} | {v['stripped']:,} bytes ({v['stripped'] / 2**20:.2f} MiB) | {top} |")
    A("")


def write_frames(A, f, notes):
    A("## Camera frame to tensor")
    A("")
    if "error" in f:
        A(f"{notes.na(f['error'])}")
        A("")
        return
    A(f"A {FRAME_W}x{FRAME_H} NV21 frame ({f['bytes']:,} bytes) to MobileNetV2's 1x3x224x224 normalized "
      f"f32 input, rotated {FRAME_ROTATE}°, 1 thread. squeeze: `squeeze bench {FRAME_MODEL}.onnx --threads 1 "
      f"--frame {FRAME_W}x{FRAME_H} --rotate {FRAME_ROTATE}` (a synthetic frame; the conversion does the "
      "same work whatever the pixels): one pass, area averaging of Y, U and V, BT.601 colour after "
      "resampling, straight into the session's input. OpenCV: opencv-python-headless with one thread "
      "on the real frame of `../shared` (cvtColor NV21 to RGB at full size, resize, rotate the small "
      "image, normalize, NCHW), median of the calls (Python's share is microseconds).")
    A("")
    A("| pipeline | median ms | vs squeeze |")
    A("| --- | --- | --- |")
    sq, e_sq = get(f, "squeeze", "frame_convert_only_p50_ms")
    alt, e_alt = get(f, "squeeze", "frame_convert_p50_ms")
    total, e_total = get(f, "squeeze", "frame_to_output_p50_ms")
    area, e_area = get(f, "opencv", "area_ms")
    lin, e_lin = get(f, "opencv", "linear_ms")
    copy_ms, e_copy = get(f, "copy", "copy_ms")

    def cell(v, e):
        return fmt_ms(v) if v is not None else notes.na(e)

    def vs(v):
        return fmt_x(v / sq) if v is not None and sq else "n/a"
    A(f"| squeeze, conversions back to back | {cell(sq, e_sq)} | 1.0× |")
    A(f"| squeeze, each conversion after a model run (cold caches, as in an app) | {cell(alt, e_alt)} | {vs(alt)} |")
    A(f"| squeeze, frame to MobileNetV2 output | {cell(total, e_total)} | {vs(total)} |")
    A(f"| OpenCV INTER_AREA (the same averaging) | {cell(area, e_area)} | {vs(area)} |")
    A(f"| OpenCV INTER_LINEAR (aliases when shrinking 4.8x) | {cell(lin, e_lin)} | {vs(lin)} |")
    A(f"| memory floor: copying the frame's bytes once | {cell(copy_ms, e_copy)} | {vs(copy_ms)} |")
    A("")
    rust_ms, e_rust = get(f, "c_abi", "rust_ms")
    c_ms, e_c = get(f, "c_abi", "c_ms")
    A(f"Through the C ABI, on `{FRAME_MODEL}` packed f32: `sqz_session_run_frame` "
      "(`ffi/bench/run_frame.c`: planes read in place, outputs into the caller's buffer) against the "
      "Rust `Session::write_frame` + `run_in_place` (`squeeze bench X.sqz --frame`), alternating "
      "five times; each side's lowest median (the VM's noise only adds time), with all five:")
    A("")
    A("| frame to output | lowest median ms | the five medians, in run order |")
    A("| --- | --- | --- |")
    meds = lambda key: ", ".join(f"{m:.2f}" for m in f.get("c_abi", {}).get(key, []))
    A(f"| Rust `Session` | {cell(rust_ms, e_rust)} | {meds('rust_medians_ms')} |")
    A(f"| C ABI `sqz_session_run_frame` | {cell(c_ms, e_c)} | {meds('c_medians_ms')} |")
    A("")
    if sq and copy_ms:
        A(f"squeeze reads the frame at {f['bytes'] / sq / 1e6:.1f} GB/s; this machine copies "
          f"{f['copy']['gb_s']:.1f} GB/s (numpy, 1 thread), so reading the frame once takes at least "
          f"{copy_ms:.3f} ms.")
        A("")


def gemm_summary(g):
    """Derived figures of gemm_bench's result: achieved GFLOP/s at 1 (and 2) threads, the peak
    (the higher of the two probes: the stricter ratio), the ratio and pass/fail. Missing parts
    are None with an error message in "errors"."""
    out = {"errors": []}
    peaks = [g.get(k) for k in ("fma_peak_before", "fma_peak_after")]
    peaks = [p for p in peaks if isinstance(p, dict) and isinstance(p.get("peak_gflops_measured"), (int, float))]
    if peaks:
        out["probe"] = max(peaks, key=lambda p: p["peak_gflops_measured"])
        out["peak_gflops"] = out["probe"]["peak_gflops_measured"]
        out["peaks"] = [p["peak_gflops_measured"] for p in peaks]
    else:
        err = next((g[k]["error"] for k in ("fma_peak_before", "fma_peak_after")
                    if isinstance(g.get(k), dict) and "error" in g[k]), "FMA probe not run")
        out["errors"].append(f"`squeeze bench --fma-peak`: {err}")
    for key, name in (("squeeze", "gflops"), ("squeeze_2t", "gflops_2t"), ("ort", "ort_gflops")):
        ms, err = get(g, key, "run_ms_median" if key == "ort" else "p50_ms")
        if ms:
            out[name] = GEMM_FLOPS / (ms * 1e-3) / 1e9
            out[name.replace("gflops", "ms")] = ms
        elif key == "squeeze":
            out["errors"].append(err)
    node_ms, _ = get(g, "kernel", "node_ms")
    if node_ms:
        out["node_ms"], out["node_gflops"] = node_ms, GEMM_FLOPS / (node_ms * 1e-3) / 1e9
    if out.get("gflops") and out.get("peak_gflops"):
        out["ratio"] = out["gflops"] / out["peak_gflops"]
    return out


# ---------------------------------------------------------------- environment info

def sh(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=30, cwd=REPO).stdout.strip()
    except Exception:  # noqa: BLE001
        return ""


def machine():
    info = {}
    for line in sh(["lscpu"]).splitlines():
        k, _, v = line.partition(":")
        info[k.strip()] = v.strip()
    cpu = info.get("Model name") or platform.processor() or "unknown CPU"
    cores = info.get("CPU(s)") or str(os.cpu_count())
    extra = []
    if info.get("Core(s) per socket"):
        extra.append(f"{info['Core(s) per socket']} cores/socket")
    if info.get("Thread(s) per core"):
        extra.append(f"{info['Thread(s) per core']} thread(s)/core")
    if info.get("Hypervisor vendor"):
        extra.append(f"{info['Hypervisor vendor']} VM")
    mem = ""
    try:
        kb = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))
        mem = f", {kb / 2**20:.1f} GiB RAM"
    except Exception:  # noqa: BLE001
        pass
    return f"{cpu}, {cores} logical CPUs ({', '.join(extra)}){mem}, {platform.system()} {platform.release()}"


def lock_version(crate):
    try:
        text = (REPO / "Cargo.lock").read_text()
        m = re.search(r'name = "' + re.escape(crate) + r'"\nversion = "([^"]+)"', text)
        return m.group(1) if m else "unknown"
    except OSError:
        return "unknown"


def squeeze_version():
    h = sh(["git", "rev-parse", "--short", "HEAD"])
    if not h:
        h = "no commit"
    elif sh(["git", "status", "--porcelain", "--", "runtime", "Cargo.toml", "Cargo.lock"]):
        h += " + uncommitted changes"
    v = sh([str(SQUEEZE), "--version"])
    return f"{v or 'squeeze ?'} (git {h})"


# ---------------------------------------------------------------- report

class Notes:
    def __init__(self):
        self.msgs = []

    def na(self, msg):
        msg = " ".join(str(msg).split()).replace("|", "\\|")
        if len(msg) > 400:
            msg = msg[:400] + "..."
        if msg not in self.msgs:
            self.msgs.append(msg)
        return f"n/a [{self.msgs.index(msg) + 1}]"


def get(res, key, field):
    r = res.get(key)
    if not isinstance(r, dict):
        return None, res.get("error", f"{key}: not measured")
    if "error" in r:
        return None, r["error"]
    v = r.get(field)
    if not isinstance(v, (int, float)):
        return None, f"{key}: no `{field}` in output {json.dumps(r)[:200]}"
    return v, None


def fmt_ms(v):
    return f"{v:,.0f}" if v >= 100 else f"{v:.1f}" if v >= 10 else f"{v:.2f}"


def fmt_x(v):
    return f"{v:.0f}×" if v >= 100 else f"{v:.1f}×"


def pass_fail(ok):
    return "**PASS**" if ok else "**FAIL**"


def name(r):
    o = r.get("other_cpus")
    busy = isinstance(o, (int, float)) and o >= QUIET_BUSY * (os.cpu_count() or 1)
    return f"{r['label']} {BUSY_MARK}" if busy else r["label"]


def other_cpus(r):
    o = r.get("other_cpus")
    return f"{o:.2f}" if isinstance(o, (int, float)) else "?"


def read_accuracy():
    """accuracy.json plus "written" (its date), or {"error": how to produce it}."""
    redo = f"run `{ACCURACY_CMD}` (about 4 minutes on 2 cores; it writes the file), then re-run `{REPRO}`"
    try:
        acc = json.loads(ACCURACY.read_text())
        if not isinstance(acc, dict):
            raise ValueError("not a JSON object")
    except FileNotFoundError:
        return {"error": f"`{ACCURACY}` does not exist: {redo}"}
    except (OSError, ValueError) as e:
        return {"error": f"cannot read `{ACCURACY}` ({e}): {redo}"}
    acc["written"] = datetime.datetime.fromtimestamp(ACCURACY.stat().st_mtime).astimezone() \
        .strftime("%Y-%m-%d %H:%M %Z")
    return acc


def write_accuracy(A, acc, results, notes):
    det = next((r for r in results if r["stem"] == DET_MODEL), None)
    det_cost = ""
    if det:
        sizes = []
        for key, kmax in (("pack_int8_filter", "the default 128"), ("pack_int8_det_kernel_max", DET_F16_KERNEL_MAX)):
            b, err = get(det, key, "bytes")
            sizes.append(notes.na(err) if b is None else
                         f"{b:,} bytes ({b / det['onnx_bytes']:.1%} of the `.onnx`) with {kmax}")
        det_cost = (f" Size cost (`squeeze pack {DET_MODEL}.onnx --input-shape x=1x3x320x320 --weights int8 "
                    f"[--f16-kernel-max {DET_F16_KERNEL_MAX}]`): {sizes[0]}; {sizes[1]}. The other tables "
                    "use the default.")
    n_scene = len([f for f in (MODELS_DIR / "data" / "images").glob("*") if f.suffix in (".jpg", ".png")])
    A("## Accuracy on real data")
    A("")
    A("Weight-only quantization: the `.sqz` stores the weights as f16 or int8 (symmetric, one scale per "
      "output channel), dequantized to f32 at load; activations and arithmetic stay f32. "
      "`tests/accuracy.rs` compares each packed model with the float model (the same `.onnx` run by "
      "squeeze) on real inputs; the int8 biases are corrected on calibration inputs that are not the ones "
      "measured on:")
    A("")
    A(f"- EfficientNet-Lite0: calibrated on the {n_scene} scene photos of `data/images`; top-1 agreement "
      "with the float model measured on the held-out object photos of `data/objects` (short side 256, "
      "centre crop 224).")
    A("- PP-OCRv4 det and PP-OCR cls: calibrated on 8 of those scene photos (resized like the text input); "
      "measured on the text images of `data/text`, as the worst output cosine over the images. det keeps "
      "the aspect ratio, longest side 640, sides multiples of 32 (not the 320x320 of the speed tables); "
      "cls is height 48, width ≤ 192, right-padded to 192.")
    A("- int8 keeps weights with at most `--f16-kernel-max` values per output channel in f16 (default 128: "
      "depthwise, stem and narrow 1x1 convs; with 32, EfficientNet-Lite0 int8 agreed on 193/196 = 98.5 % "
      "at 24.3 % of the `.onnx`, with 128 on 195/196 at 25.9 %). The det model's int8 is packed with "
      f"`--f16-kernel-max {DET_F16_KERNEL_MAX}`, which keeps more of its narrow convs in f16, because "
      "with the default its worst cosine is 0.997 (0.977 with 32)." + det_cost)
    A("")
    if "error" in acc:
        A(f"**Not available**: {acc['error']}.")
        A("")
        return
    A(f"From `{ACCURACY}`, written {acc['written']} by `{ACCURACY_CMD}` (not by this script).")
    A("")
    A("| model | storage | measured on | measured | target | result |")
    A("| --- | --- | --- | --- | --- | --- |")
    eff = acc.get("efficientnet-lite0", {})
    for storage in ("f16", "int8"):
        e = eff.get(storage, {})
        if e.get("rate") is None:
            A(f"| EfficientNet-Lite0 | {storage} | | {notes.na('accuracy.json: no efficientnet-lite0 ' + storage)} "
              f"| ≥ {TOP1_TARGET:.0%} | n/a |")
            continue
        A(f"| EfficientNet-Lite0 | {storage} | {eff.get('photos')} object photos | top-1 same as float: "
          f"{e.get('top1_same')}/{eff.get('photos')} = {e['rate']:.1%} | ≥ {TOP1_TARGET:.0%} "
          f"| {pass_fail(e['rate'] >= TOP1_TARGET)} |")
    labels = {stem: label for label, stem, _ in MODELS}
    for _, stem in OCR_MODELS:
        o = acc.get(stem, {})
        for storage in ("f16", "int8"):
            c = o.get(f"min_cosine_{storage}")
            mode = f"int8 (`--f16-kernel-max {o.get('f16_kernel_max')}`)" if storage == "int8" else storage
            if c is None:
                A(f"| {labels[stem]} | {mode} | | {notes.na(f'accuracy.json: no {stem} {storage}')} "
                  f"| ≥ {COSINE_TARGET} | n/a |")
                continue
            A(f"| {labels[stem]} | {mode} | {o.get('inputs')} text images | worst output cosine {c:.6f} "
              f"| ≥ {COSINE_TARGET} | {pass_fail(c >= COSINE_TARGET)} |")
    A("")
    same, total = (eff.get("float_vs_ort_top1") or [0, 0])[:2]
    A("Sanity check of the float model, not a target: its EfficientNet-Lite0 top-1 against ONNX Runtime's "
      "(`data/expected_top1.tsv`) "
      + (f"is the same on {same}/{total} photos." if total else
         "was not compared: that file lists none of the measured photos (0/0)."))
    A("")


def load_phase(res, key, phase):
    """(ms, None) of load phase `phase` of `squeeze bench` result res[key] (median over its loads,
    else the last load's), or (None, error)."""
    r = res.get(key)
    if not isinstance(r, dict) or "error" in r:
        return None, get(res, key, "load_ms")[1]
    for field in ("load_phases_median_ms", "load_phases_ms"):
        v = (r.get(field) or {}).get(phase)
        if isinstance(v, (int, float)):
            return v, None
    return None, f"{key}: no `{phase}` load phase in `squeeze bench --json` output (older binary?)"


def write_gemm(A, g, notes):
    """The 1x1 conv GEMM vs peak FMA section."""
    A("## 1x1 conv GEMM vs peak FMA")
    A("")
    A(f"A one-node ONNX model, Conv 1x1 with {GEMM_C}→{GEMM_C} channels on 1x{GEMM_C}x{GEMM_HW}x{GEMM_HW}, "
      "no bias (generated with the `onnx` package into `$SQUEEZE_CACHE/bench/`, not the repository), "
      f"run by `squeeze bench MODEL.onnx --threads 1 --runs {GEMM_RUNS}`: squeeze runs a 1x1 conv as a "
      f"GEMM. Work per run: 2·{GEMM_C}·{GEMM_C}·{GEMM_HW}·{GEMM_HW} = {GEMM_FLOPS:,} FLOPs; achieved "
      "GFLOP/s = that / p50 of whole runs (copying the 3.2 MB input in and the output out included, "
      "so slightly below the kernel's own rate, which `--profile` gives per node). The target is "
      "judged on the whole-run figure.")
    A("")
    A("Peak: `squeeze bench --fma-peak` (`runtime/src/exec/kernels/x86_64/probe.rs`) times on one core "
      "(a) a chain of dependent vector FMAs, latency-bound: at the documented FMA latency of 4 cycles "
      "(AMD Zen 2 to Zen 5, Intel since Skylake) it gives the clock the core ran at, and (b) independent "
      "FMAs over 16 (AVX-512) or 12 (AVX2) accumulators, throughput-bound: the measured peak FLOP/s. "
      "FMA lanes per cycle = (b) / clock / 2, so peak = lanes per cycle × 2 × clock = (b). The probe "
      "runs before and after the conv; the higher peak is used (the stricter ratio). `/proc/cpuinfo` "
      "\"cpu MHz\" is shown beside it: in a VM it is usually the nominal (TSC) clock, not the boost "
      "clock the core actually runs at.")
    A("")
    if "error" in g and len(g) == 1:
        A(f"Not measured: {notes.na(g['error'])}.")
        A("")
        return
    gs = gemm_summary(g)
    probe = gs.get("probe")
    mhz = g.get("cpuinfo_mhz") or {}
    A("| quantity | value |")
    A("| --- | --- |")
    if probe:
        A(f"| ISA | `{probe.get('isa')}` ({probe.get('vector_lanes')} f32 lanes per vector, "
          f"{probe.get('accumulators')} accumulators) |")
        A(f"| clock, from the dependent FMA chain (4-cycle latency) | {probe['clock_ghz_estimate']:.2f} GHz |")
    else:
        A(f"| FMA probe | {notes.na(' / '.join(gs['errors']))} |")
    if "error" in mhz:
        A(f"| `/proc/cpuinfo` \"cpu MHz\" | {notes.na(mhz['error'])} |")
    else:
        rng = f"{mhz['min']:.0f}" if mhz["min"] == mhz["max"] else f"{mhz['min']:.0f} to {mhz['max']:.0f}"
        A(f"| `/proc/cpuinfo` \"cpu MHz\" | {rng} MHz ({mhz['cpus']} CPUs) |")
    if probe:
        fpc = probe["fma_flops_per_cycle_measured"]
        A(f"| FMA throughput measured | {fpc:.1f} FLOP/cycle = {fpc / 2:.1f} f32 FMA lanes per cycle |")
        A(f"| peak FMA, one core (measured) | **{gs['peak_gflops']:.1f} GFLOP/s** (probes: "
          + ", ".join(f"{p:.1f}" for p in gs["peaks"]) + ") |")
        if "error" not in mhz:
            A(f"| peak at the `/proc/cpuinfo` clock, for reference | {fpc * mhz['max'] / 1e3:.1f} GFLOP/s |")
    kern = g.get("kernel", {})
    if gs.get("gflops"):
        A(f"| squeeze p50, 1 thread | {fmt_ms(gs['ms'])} ms (kernel `"
          + (kern.get("name") if "name" in kern else "?") + "`) |")
        A(f"| achieved, 1 thread (whole run p50) | **{gs['gflops']:.1f} GFLOP/s** |")
        if gs.get("node_gflops"):
            A(f"| the conv node alone (`--profile`, mean of {GEMM_PROFILE_RUNS} runs) | "
              f"{fmt_ms(gs['node_ms'])} ms = {gs['node_gflops']:.1f} GFLOP/s"
              + (f" ({gs['node_gflops'] / gs['peak_gflops']:.0%} of peak)" if gs.get("peak_gflops") else "")
              + " |")
    else:
        A(f"| squeeze, 1 thread | {notes.na(' / '.join(str(e) for e in gs['errors']))} |")
    if gs.get("ratio") is not None:
        A(f"| achieved / peak | **{gs['ratio']:.0%}** (target ≥ {GEMM_TARGET:.0%}: "
          f"{pass_fail(gs['ratio'] >= GEMM_TARGET)}) |")
    if gs.get("gflops_2t"):
        A(f"| squeeze p50, 2 threads (reference) | {fmt_ms(gs['ms_2t'])} ms = {gs['gflops_2t']:.1f} GFLOP/s |")
    else:
        A(f"| squeeze p50, 2 threads (reference) | {notes.na(get(g, 'squeeze_2t', 'p50_ms')[1])} |")
    if gs.get("ort_gflops"):
        of_peak = f", {gs['ort_gflops'] / gs['peak_gflops']:.0%} of peak" if gs.get("peak_gflops") else ""
        A(f"| ONNX Runtime, 1 thread (reference) | {fmt_ms(gs['ort_ms'])} ms = {gs['ort_gflops']:.1f} "
          f"GFLOP/s{of_peak} |")
    else:
        A(f"| ONNX Runtime, 1 thread (reference) | {notes.na(get(g, 'ort', 'run_ms_median')[1])} |")
    o = g.get("other_cpus")
    if isinstance(o, (int, float)):
        A(f"| other CPUs busy meanwhile | {o:.2f}"
          + (f" {BUSY_MARK}: noisy" if o >= QUIET_BUSY * (os.cpu_count() or 1) else "") + " |")
    A("")


def write_doc(results, out_path, meta, notes):
    L = []
    A = L.append
    A("# Benchmarks")
    A("")
    A("Generated by `scripts/bench.py`; do not edit by hand. Re-run to update.")
    A("")
    A(f"- Date: {meta['date']}")
    A(f"- Machine: {meta['machine']}")
    A(f"- Reproduce: `{REPRO}` (from the repository root; fetches the test data, builds `squeeze` "
      f"and `examples/tract_bench.rs` in release, then runs `scripts/bench.py`). "
      f"This run took {meta['wall_s']:.0f} s for the measurements.")
    A(f"- Versions: {meta['squeeze']}; onnxruntime {meta['ort']} (Python, CPU EP); "
      f"tract-onnx {meta['tract']} (Rust, from Cargo.lock); Python {platform.python_version()}")
    A(f"- Models: `$SQUEEZE_TEST_MODELS` = `{MODELS_DIR}`. MobileNetV2, SqueezeNet, ShuffleNetV2 and "
      "ResNet18 are torchvision architectures with random weights (fine for size and speed). "
      "EfficientNet-Lite0 stands in for EfficientNet-B0. PP-OCRv4 det runs at **1x3x320x320** "
      "(not 640x640) to keep the run short; PP-OCR cls at 1x3x48x192; the others at 1x3x224x224.")
    isas = sorted({r[k]["isa"] for r in results for k in ("squeeze_f32", "squeeze_f32_2t")
                   if isinstance(r.get(k), dict) and r[k].get("isa")})
    A("- Threads: latency at 1 and at 2 threads. squeeze: `squeeze bench --threads N` (its session "
      "pool; `RAYON_NUM_THREADS=N` too); ONNX Runtime: `intra_op_num_threads=N`, "
      "`inter_op_num_threads=1`, sequential execution. **tract: 1 thread only**: "
      "`examples/tract_bench.rs` has no threads option and this build of tract leaves "
      "tract-linalg's `multithread-mm` feature off, so tract runs single-threaded; its 1-thread "
      "figure is repeated beside the 2-thread ones for reference. Loads are timed at 1 thread.")
    A("- squeeze kernels: " + (", ".join(f"`{i}`" for i in isas) or "unknown")
      + " (the ISA `squeeze bench --json` reports: the best this CPU has unless `--isa` or "
      "`SQUEEZE_ISA` forces one).")
    busy = [r["other_cpus"] for r in results if isinstance(r.get("other_cpus"), (int, float))]
    if busy:
        worst = max(busy)
        ncpu = os.cpu_count() or 1
        A(f"- Background load: while each model was measured, other processes kept on average "
          f"{min(busy):.2f} to {worst:.2f} of the {ncpu} CPUs busy (column \"other CPUs\" below; the "
          f"harness waits up to {meta['wait_idle']:.0f} s per model for a quiet machine first)."
          + (f" **The machine was busy during this run (models marked {BUSY_MARK}): their timings are "
             "noisy; re-run on an idle machine.**" if worst >= QUIET_BUSY * ncpu else ""))
    A("")

    # --- targets
    mb = next((r for r in results if r["stem"] == "mobilenetv2"), None)
    acc = meta["accuracy"]
    no_acc = notes.na(acc["error"]) if "error" in acc else None
    A("## Targets")
    A("")
    A("| target | storage | measured | result |")
    A("| --- | --- | --- | --- |")
    if mb:
        for mode, limit in SIZE_TARGETS:
            b, err = get(mb, f"pack_{mode}_filter", "bytes")
            label = f"| MobileNetV2 `.sqz` ≤ {limit:.0%} of `.onnx` | {mode}"
            if b is None or not mb.get("onnx_bytes"):
                A(f"{label} | {notes.na(err)} | n/a |")
            else:
                frac = b / mb["onnx_bytes"]
                A(f"{label} | {frac:.1%} ({b:,} bytes) | {pass_fail(frac <= limit)} |")
    for storage in ("f16", "int8"):
        label = f"| EfficientNet-Lite0 top-1 agreement with float ≥ {TOP1_TARGET:.0%} | {storage}"
        eff = acc.get("efficientnet-lite0", {})
        rate = eff.get(storage, {}).get("rate")
        if rate is None:
            A(f"{label} | {no_acc or notes.na('accuracy.json: no efficientnet-lite0 ' + storage)} | n/a |")
        else:
            A(f"{label} | {rate:.1%} ({eff[storage].get('top1_same')}/{eff.get('photos')} photos) "
              f"| {pass_fail(rate >= TOP1_TARGET)} |")
    for storage in ("f16", "int8"):
        label = f"| PP-OCR det and cls output cosine ≥ {COSINE_TARGET} | {storage}"
        cos = {short: acc.get(stem, {}).get(f"min_cosine_{storage}") for short, stem in OCR_MODELS}
        if None in cos.values():
            A(f"{label} | {no_acc or notes.na('accuracy.json: no PP-OCR ' + storage + ' cosine')} | n/a |")
        else:
            det_note = f" (det packed with `--f16-kernel-max {DET_F16_KERNEL_MAX}`)" if storage == "int8" else ""
            A(f"{label} | worst of the text images: "
              + ", ".join(f"{short} {c:.6f}" for short, c in cos.items()) + det_note
              + f" | {pass_fail(min(cos.values()) >= COSINE_TARGET)} |")
    fr = meta.get("frames", {"error": "not measured"})
    sq, e_sq = get(fr, "squeeze", "frame_convert_only_p50_ms")
    label = f"| {FRAME_W}x{FRAME_H} NV21 → 224x224 f32, rotated {FRAME_ROTATE}°, 1 thread ≤ {FRAME_TARGET_MS} ms | —"
    A(f"{label} | {fmt_ms(sq) + ' ms' if sq is not None else notes.na(e_sq)} | "
      f"{pass_fail(sq <= FRAME_TARGET_MS) if sq is not None else 'n/a'} |")
    area, e_area = get(fr, "opencv", "area_ms")
    label = f"| the same ≥ {FRAME_CV_TARGET:.0f}x faster than OpenCV (INTER_AREA) | —"
    if sq is None or area is None:
        A(f"{label} | {notes.na(e_sq if sq is None else e_area)} | n/a |")
    else:
        A(f"{label} | {area / sq:.1f}x ({fmt_ms(area)} ms) | {pass_fail(area / sq >= FRAME_CV_TARGET)} |")
    rust_ms, e_rust = get(fr, "c_abi", "rust_ms")
    c_ms, e_c = get(fr, "c_abi", "c_ms")
    label = "| a frame's run through the C ABI costs no more than the Rust `Session` run | f32"
    if rust_ms is None or c_ms is None:
        A(f"{label} | {notes.na(e_rust if rust_ms is None else e_c)} | n/a |")
    else:
        # Within the run-to-run noise of this machine counts as no more.
        A(f"{label} | C {fmt_ms(c_ms)} ms, Rust {fmt_ms(rust_ms)} ms ({c_ms / rust_ms:.3f}×) | "
          f"{pass_fail(c_ms <= rust_ms * 1.02)} |")
    lib = meta.get("lib_size", {}).get("sqz", {"error": "not measured"})
    label = "| `.sqz`-only aarch64 `libsqueeze.so` ≤ 2 MB stripped | —"
    if "error" in lib:
        A(f"{label} | {notes.na(lib['error'])} | n/a |")
    else:
        A(f"{label} | {lib['stripped']:,} bytes | {pass_fail(lib['stripped'] <= LIB_SIZE_TARGET)} |")
    for storage, _, key in LOAD_STORAGES:
        ok_n, tot, worst = 0, 0, None
        for r in results:
            s, _ = get(r, key, "load_ms")
            o, _ = get(r, "ort", "create_ms_median")
            if s is None or o is None or s <= 0:
                continue
            tot += 1
            ratio = o / s
            ok_n += ratio >= LOAD_SPEEDUP_TARGET
            if worst is None or ratio < worst[0]:
                worst = (ratio, r["label"])
        label = f"| `.sqz` load ≥ {LOAD_SPEEDUP_TARGET:.0f}× faster than ORT session creation | {storage}"
        if tot == 0:
            A(f"{label} | n/a (no model measured) | n/a |")
        else:
            A(f"{label} | {ok_n}/{tot} measured models (of {len(results)}) pass; lowest ORT/squeeze "
              f"{fmt_x(worst[0])} ({worst[1]}) | {pass_fail(ok_n == tot and tot == len(results))} |")
    by_stem = {r["stem"]: r for r in results}
    labels = {stem: label for label, stem, _ in MODELS}
    for stem in LATENCY_MODELS:
        r = by_stem.get(stem)
        label = f"| 1 thread: squeeze ≤ {LATENCY_TARGET:.1f}× ORT latency: {labels[stem]} | f32"
        if r is None:
            A(f"{label} | not measured in this run | n/a |")
            continue
        s1, es = get(r, "squeeze_f32", "p50_ms")
        o1, eo = get(r, "ort", "run_ms_median")
        if s1 is None or not o1:
            A(f"{label} | {notes.na(es if s1 is None else eo)} | n/a |")
        else:
            A(f"{label} | squeeze {fmt_ms(s1)} ms, ORT {fmt_ms(o1)} ms: {s1 / o1:.2f}×"
              f"{' ' + BUSY_MARK if name(r) != r['label'] else ''} | {pass_fail(s1 / o1 <= LATENCY_TARGET)} |")
    for stem in SPEEDUP_MODELS:
        r = by_stem.get(stem)
        label = f"| 2 threads ≥ {SPEEDUP_TARGET}× faster than 1 thread: {labels[stem]} | f32"
        if r is None:
            A(f"{label} | not measured in this run | n/a |")
            continue
        s1, e1 = get(r, "squeeze_f32", "p50_ms")
        s2, e2 = get(r, "squeeze_f32_2t", "p50_ms")
        if s1 is None or not s2:
            A(f"{label} | {notes.na(e1 if s1 is None else e2)} | n/a |")
        else:
            A(f"{label} | squeeze 1 thread {fmt_ms(s1)} ms, 2 threads {fmt_ms(s2)} ms: {s1 / s2:.2f}×"
              f"{' ' + BUSY_MARK if name(r) != r['label'] else ''} | {pass_fail(s1 / s2 >= SPEEDUP_TARGET)} |")
    gs = gemm_summary(meta["gemm"]) if "gemm" in meta else {"errors": ["not measured"]}
    label = (f"| 1x1 conv GEMM ({GEMM_C}→{GEMM_C} channels, {GEMM_HW}x{GEMM_HW}, 1 thread) ≥ "
             f"{GEMM_TARGET:.0%} of peak FMA | f32")
    if gs.get("ratio") is None:
        A(f"{label} | {notes.na(' / '.join(str(e) for e in gs['errors']) or meta['gemm'].get('error', '?'))} "
          "| n/a |")
    else:
        A(f"{label} | {gs['gflops']:.1f} GFLOP/s of a measured {gs['peak_gflops']:.1f} GFLOP/s peak: "
          f"{gs['ratio']:.0%} | {pass_fail(gs['ratio'] >= GEMM_TARGET)} |")
    A("")
    A("Size targets use the default pack (byte-shuffle filter on, zstd level 19). The accuracy targets "
      "are measured on real images by `tests/accuracy.rs` (see [Accuracy on real data](#accuracy-on-real-data)). "
      "The load target is checked per model in the load table below and must hold for every model. "
      "The latency targets compare p50 latencies of one run of this script (see the latency tables); "
      "the GEMM target is explained in [1x1 conv GEMM vs peak FMA](#1x1-conv-gemm-vs-peak-fma).")
    A("")

    # --- sizes
    A("## Size")
    A("")
    A("`squeeze pack MODEL.onnx -o OUT.sqz --weights MODE [--no-filter]`. Each cell: bytes and "
      "percentage of the `.onnx` file. \"filter\" = byte-shuffle filter before compression (default); "
      "\"no filter\" = `--no-filter`. \"f32 in-place\" = `--weights f32 --in-place`: raw f32 weights, "
      "neither filtered nor compressed, so a memory-mapped file is used in place with no copy at load "
      "(the filter does not apply: —).")
    A("")
    A("| model | `.onnx` bytes | filter | " + " | ".join(MODES) + " | f32 in-place |")
    A("| --- | ---: | --- | " + " | ".join("---:" for _ in MODES) + " | ---: |")
    for r in results:
        ob = r.get("onnx_bytes")

        def size(key):
            b, err = get(r, key, "bytes")
            return notes.na(err) if b is None else f"{b:,} ({b / ob:.1%})" if ob else f"{b:,}"
        for filt in ("filter", "nofilter"):
            cells = [size(f"pack_{mode}_{filt}") for mode in MODES]
            cells.append(size("pack_f32_inplace") if filt == "filter" else "—")
            first = (f"{r['label']} | {ob:,}" if ob else f"{r['label']} | {notes.na(r.get('error', '?'))}") \
                if filt == "filter" else " | "
            A(f"| {first} | {'filter' if filt == 'filter' else 'no filter'} | " + " | ".join(cells) + " |")
    A("")

    write_accuracy(A, acc, results, notes)

    # --- load
    A("## Load to ready")
    A("")
    A(f"Medians. squeeze: `squeeze bench OUT.sqz --loads {SQZ_LOADS} --json` `load_ms` (open the `.sqz` "
      "until ready to run: load + session creation), for the int8, f32 (zstd, filter) and f32 in-place "
      f"files of the size table. ORT: `InferenceSession` creation with default (all) graph optimisations, "
      f"{ORT_LOADS} times (`scripts/ort_session_bench.py`). tract: "
      f"`model_for_path → with_input_fact → into_optimized → into_runnable`, {TRACT_LOADS} times. "
      "ORT and tract load the `.onnx`. Ratios > 1 mean squeeze is faster; the ratio and pass/fail "
      "columns list int8, f32 zstd, f32 in-place in that order. \"prepare ms\" is the `prepare` load "
      "phase of the f32 zstd `.sqz` (median over its loads, from `squeeze bench --json` "
      "`load_phases_median_ms`): choosing each node's kernel, prepacking the weights into the SIMD "
      "kernels' layouts and planning memory. It is part of the load time beside it.")
    A("")
    A("| model | squeeze int8 ms | squeeze f32 zstd ms | prepare ms | squeeze f32 in-place ms | ORT create ms "
      "| tract load+opt ms | ORT / squeeze | tract / squeeze | ≥ 10× ORT | other CPUs |")
    A("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |")
    for r in results:
        loads = [get(r, key, "load_ms") for _, _, key in LOAD_STORAGES]
        prep, eprep = load_phase(r, "squeeze_f32", "prepare")
        load_cells = [notes.na(e) if v is None else fmt_ms(v) for v, e in loads]
        load_cells.insert(2, notes.na(eprep) if prep is None else fmt_ms(prep))
        o, eo = get(r, "ort", "create_ms_median")
        t, et = get(r, "tract", "load_optimize_ms_median")

        def ratios(a):
            return ", ".join(fmt_x(a / s) if a is not None and s else "n/a" for s, _ in loads)
        ok = ", ".join(("PASS" if o / s >= LOAD_SPEEDUP_TARGET else "FAIL") if o is not None and s else "n/a"
                       for s, _ in loads)
        A(f"| {name(r)} | " + " | ".join(load_cells)
          + f" | {notes.na(eo) if o is None else fmt_ms(o)} | {notes.na(et) if t is None else fmt_ms(t)} "
          f"| {ratios(o)} | {ratios(t)} | {ok} | {other_cpus(r)} |")
    A("")

    # --- zstd level
    lm = next((r for r in results if r["stem"] == LEVEL_MODEL), None)
    if lm:
        A("## zstd level: size vs load")
        A("")
        A(f"{lm['label']} only: `squeeze pack --weights MODE --level L` (filter on), file bytes (percentage "
          f"of the `.onnx`), pack time (it includes `pack`'s own check runs) and load-to-ready (median of "
          f"{SQZ_LOADS} loads, one thread). Level {DEFAULT_LEVEL} is the default; its rows are the files "
          "of the tables above.")
        A("")
        A("| level | " + " | ".join(f"{m} bytes | {m} pack s | {m} load ms" for m in LEVEL_MODES) + " |")
        A("| ---: | " + " | ".join("---: | ---: | ---:" for _ in LEVEL_MODES) + " |")
        for level in LEVELS:
            cells = []
            for mode in LEVEL_MODES:
                pack_key, bench_key = level_keys(mode, level)
                b, eb = get(lm, pack_key, "bytes")
                ps, eps = get(lm, pack_key, "pack_s")
                ld, eld = get(lm, bench_key, "load_ms")
                ob = lm.get("onnx_bytes")
                cells += [notes.na(eb) if b is None else f"{b:,} ({b / ob:.1%})" if ob else f"{b:,}",
                          notes.na(eps) if ps is None else f"{ps:.1f}",
                          notes.na(eld) if ld is None else fmt_ms(ld)]
            A(f"| {level}{' (default)' if level == DEFAULT_LEVEL else ''} | " + " | ".join(cells) + " |")
        A("")

    # --- latency
    def c(v, e):
        return notes.na(e) if v is None else fmt_ms(v)

    def ratio(a, b):
        """a / b with two decimals below 10 (targets sit at 1.0 and 1.6)."""
        if a is None or not b:
            return "n/a"
        return f"{a / b:.2f}×" if a / b < 10 else fmt_x(a / b)
    A("## Run latency (1 thread)")
    A("")
    A("squeeze: `squeeze bench --threads 1` p50/p90 over the runs shown (after a first run, reported "
      f"separately), on the f32 `.sqz`; the run count is sized so the runs take about {RUN_BUDGET_S:.0f} s "
      f"({MIN_RUNS} to {MAX_RUNS}). The int8 `.sqz` p50 over {INT8_RUNS} runs is there for reference: its "
      "weights are dequantized to f32 at load, so the same f32 kernels run. "
      f"ORT: median of {ORT_RUNS} runs after one warm-up. tract: median of {TRACT_RUNS} runs after one "
      "warm-up. Ratios > 1 mean squeeze is slower.")
    A("")
    A("| model | input | squeeze f32 p50 ms | p90 ms | first run ms | runs | squeeze int8 p50 ms "
      "| peak RSS f32 MB | ORT p50 ms | tract p50 ms | sq f32 / ORT | sq f32 / tract | other CPUs |")
    A("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in results:
        shp = ", ".join(shape_str(i["shape"]) for i in r.get("inputs", [])) or "?"
        p50, e50 = get(r, "squeeze_f32", "p50_ms")
        p90, e90 = get(r, "squeeze_f32", "p90_ms")
        fr, efr = get(r, "squeeze_f32", "first_run_ms")
        i50, ei50 = get(r, "squeeze_int8", "p50_ms")
        rss, erss = get(r, "squeeze_f32", "peak_rss_kb")
        o, eo = get(r, "ort", "run_ms_median")
        t, et = get(r, "tract", "run_ms_median")
        nruns = r.get("squeeze_f32", {}).get("runs", "") if p50 is not None else ""
        A(f"| {name(r)} | {shp} | {c(p50, e50)} | {c(p90, e90)} | {c(fr, efr)} | {nruns} "
          f"| {c(i50, ei50)} | {notes.na(erss) if rss is None else f'{rss / 1024:.0f}'} | {c(o, eo)} "
          f"| {c(t, et)} | {ratio(p50, o)} | {ratio(p50, t)} | {other_cpus(r)} |")
    A("")
    A("## Run latency (2 threads)")
    A("")
    A("squeeze: `squeeze bench --threads 2` on the same f32 `.sqz`, as many runs as at 1 thread. "
      f"ORT: `intra_op_num_threads=2`, median of {ORT_RUNS} runs after one warm-up. tract runs single-"
      "threaded (see Threads above): its 1-thread p50 is repeated for the ratio. Speedup = 1-thread "
      "p50 / 2-thread p50 of the same engine (> 1 means 2 threads are faster). Ratios squeeze / engine "
      "> 1 mean squeeze is slower.")
    A("")
    A("| model | squeeze f32 p50 ms | p90 ms | runs | ORT p50 ms | tract p50 ms (1 thread) "
      "| sq f32 / ORT | sq f32 / tract (1 thread) | squeeze speedup | ORT speedup | tract speedup | other CPUs |")
    A("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |")
    for r in results:
        p50, e50 = get(r, "squeeze_f32_2t", "p50_ms")
        p90, e90 = get(r, "squeeze_f32_2t", "p90_ms")
        s1, _ = get(r, "squeeze_f32", "p50_ms")
        o, eo = get(r, "ort_2t", "run_ms_median")
        o1, _ = get(r, "ort", "run_ms_median")
        t, et = get(r, "tract", "run_ms_median")
        nruns = r.get("squeeze_f32_2t", {}).get("runs", "") if p50 is not None else ""
        A(f"| {name(r)} | {c(p50, e50)} | {c(p90, e90)} | {nruns} | {c(o, eo)} | {c(t, et)} "
          f"| {ratio(p50, o)} | {ratio(p50, t)} | {ratio(s1, p50)} | {ratio(o1, o)} | 1 thread only "
          f"| {other_cpus(r)} |")
    A("")
    A("p99 from `squeeze bench` is in the raw results; with at most "
      f"{MAX_RUNS} runs it is the slowest run or close to it, so it is not shown.")
    A("")

    write_gemm(A, meta.get("gemm", {"error": "not measured"}), notes)
    write_frames(A, meta.get("frames", {"error": "not measured"}), notes)
    write_lib_size(A, meta.get("lib_size", {}), notes)

    A(f"Raw results: `{meta['raw']}` (not in the repository).")
    A("")

    if notes.msgs:
        A("## Failures")
        A("")
        A("Steps that failed; the tables show them as n/a [N].")
        A("")
        for i, m in enumerate(notes.msgs, 1):
            A(f"{i}. {m}")
        A("")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text("\n".join(L))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", help="comma-separated file stems (default: all)")
    ap.add_argument("--out", default=str(REPO / "docs" / "BENCHMARKS.md"))
    ap.add_argument("--keep", action="store_true", help="keep the packed .sqz files")
    ap.add_argument("--wait-idle", type=float, default=60, metavar="S",
                    help="before each model, wait up to S seconds for other processes to go quiet")
    ap.add_argument("--wait-budget", type=float, default=240, metavar="S",
                    help="total waiting allowed over the whole run")
    ap.add_argument("--no-gemm", action="store_true",
                    help="skip the 1x1 conv GEMM vs peak FMA measurement")
    ap.add_argument("--no-frames", action="store_true",
                    help="skip the camera frame measurement")
    args = ap.parse_args()

    models = MODELS
    if args.models:
        want = args.models.split(",")
        models = [m for m in MODELS if m[1] in want]
        if not models:
            sys.exit(f"no model among {want}; known: {[m[1] for m in MODELS]}")

    t0 = time.perf_counter()
    base = CACHE / "bench"
    base.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="run-", dir=base))
    meta = {
        "date": datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "machine": machine(),
        "squeeze": squeeze_version(),
        "ort": ort.__version__,
        "tract": lock_version("tract-onnx"),
        "wait_idle": args.wait_idle,
        "accuracy": read_accuracy(),
    }
    log(f"output folder {tmp}")
    results = []
    try:
        if args.no_gemm:
            meta["gemm"] = {"error": "not measured (--no-gemm)"}
        else:
            try:
                meta["gemm"] = gemm_bench(base, args.wait_idle)
            except Exception as e:  # noqa: BLE001
                meta["gemm"] = {"error": f"{type(e).__name__}: {e}"}
        if args.no_frames:
            meta["frames"] = {"error": "not measured (--no-frames)"}
        else:
            try:
                meta["frames"] = frame_bench()
            except Exception as e:  # noqa: BLE001
                meta["frames"] = {"error": f"{type(e).__name__}: {e}"}
        try:
            meta["lib_size"] = lib_size()
        except Exception as e:  # noqa: BLE001
            meta["lib_size"] = {v: {"error": f"{type(e).__name__}: {e}"} for v, _ in LIB_VARIANTS}
        for label, stem, _ in models:
            try:
                budget = max(0.0, args.wait_budget - sum(r.get("waited_s", 0) for r in results))
                results.append(bench_model(label, stem, tmp, min(args.wait_idle, budget)))
            except Exception as e:  # noqa: BLE001
                results.append({"label": label, "stem": stem, "error": f"{type(e).__name__}: {e}"})
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
        meta["wall_s"] = time.perf_counter() - t0
        raw = base / f"results-{time.strftime('%Y%m%d-%H%M%S')}.json"
        meta["raw"] = str(raw)
        raw.write_text(json.dumps({"meta": meta, "results": results}, indent=1))
        notes = Notes()
        write_doc(results, Path(args.out), meta, notes)
        log(f"wrote {args.out} and {raw} ({meta['wall_s']:.0f} s, {len(notes.msgs)} distinct failures)")


if __name__ == "__main__":
    main()
