"""onnxruntime CPU latency of the ONNX model `migrate onnx` writes vs TF CPU latency of the optimized frozen graph
it comes from (a script, not a test; numbers go into README "To TensorRT today").

Both run on the same inputs, in turns in one process (TF: its own Graph + Session, Grappler on as a user would
run it; onnxruntime: CPUExecutionProvider, default graph optimizations), batch 1 and 32, median of --repeat runs
after --warmup. Models: the zoo conv net (cnn_bn, written by old TF) and the benchmark MLP (benchmarks/models.py,
16 x WIDTH x WIDTH; --width 4096 is 1.07 GB of weights).

python -m benchmarks.onnx_latency --zoo /path/to/zoo-tf1.15 [--width 4096 --layers 16 --repeat 20]
"""
import argparse
import json
import os
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))


def _median(values):
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


def measure(optimized_path, onnx_path, input_name, output_name, feed_shape, batches, repeat, warmup):
    import numpy as np
    import onnxruntime
    from migrate import artifacts, tfcompat
    v1 = tfcompat.v1()
    graph_def = artifacts.read_graph_def(optimized_path)
    graph = v1.Graph()
    with graph.as_default():
        v1.import_graph_def(graph_def, name="")
    del graph_def
    session = v1.Session(graph=graph)
    fetch = graph.get_tensor_by_name(output_name)
    feed = graph.get_tensor_by_name(input_name)
    ort = onnxruntime.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
    result = {}
    rng = np.random.RandomState(0)
    for batch in batches:
        x = rng.standard_normal([batch] + list(feed_shape)).astype(np.float32)
        tf_times, ort_times = [], []
        for step in range(warmup + repeat):
            started = time.perf_counter()
            expected = session.run(fetch, {feed: x})
            tf_time = time.perf_counter() - started
            started = time.perf_counter()
            actual = ort.run([output_name], {input_name: x})[0]
            ort_time = time.perf_counter() - started
            if step >= warmup:
                tf_times.append(tf_time)
                ort_times.append(ort_time)
        error = float(np.max(np.abs(expected - actual)))
        result[batch] = {"tf_ms": _median(tf_times) * 1e3, "ort_ms": _median(ort_times) * 1e3,
                         "max_abs_err": error}
    session.close()
    return result


def convert(source, work, name, outputs, inputs_npz=None):
    from migrate import api
    optimized = os.path.join(work, name + ".optimized.pb")
    onnx_path = os.path.join(work, name + ".onnx")
    started = time.time()
    api.optimize(source, optimized, outputs=outputs, inputs_npz=inputs_npz, force=True)
    optimize_seconds = time.time() - started
    started = time.time()
    api.onnx(source, onnx_path, outputs=outputs, inputs_npz=inputs_npz, force=True)
    return optimized, onnx_path, optimize_seconds, time.time() - started


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--zoo", required=True, help="a zoo dir written by old TF (holds cnn_bn/)")
    parser.add_argument("--width", type=int, default=4096)
    parser.add_argument("--layers", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--workdir", default=None)
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from benchmarks import models
    from migrate import tfcompat
    work = args.workdir or tempfile.mkdtemp(prefix="migrate-onnx-bench-")
    rows = []
    try:
        with open(os.path.join(args.zoo, "manifest.json")) as handle:
            entry = next(e for e in json.load(handle)["models"] if e["name"] == "cnn_bn")
        source = os.path.join(args.zoo, entry["path"])
        optimized, onnx_path, _, onnx_seconds = convert(source, work, "cnn_bn", ["probabilities"])
        timings = measure(optimized, onnx_path, "x:0", "probabilities:0", [8, 8, 3], (1, 32), args.repeat,
                          args.warmup)
        rows.append(("zoo cnn_bn ({})".format(os.path.basename(args.zoo.rstrip("/"))), timings, onnx_seconds))
        started = time.time()
        prefix = models.build_mlp(os.path.join(work, "mlp"), layers=args.layers, width=args.width)
        build_seconds = time.time() - started
        optimized, onnx_path, optimize_seconds, onnx_seconds = convert(prefix, work, "mlp", ["output"])
        timings = measure(optimized, onnx_path, "x:0", "output:0", [args.width], (1, 32), args.repeat,
                          args.warmup)
        rows.append(("MLP {}x{} ({:.2f} GB of weights; built {:.0f} s, `migrate onnx` {:.0f} s)".format(
            args.layers, args.width, args.layers * args.width * (args.width + 1) * 4 / 1e9, build_seconds,
            onnx_seconds), timings, onnx_seconds))
    finally:
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)
    status = tfcompat.onnx_status()
    print("TF {}, {}; Python {}; {} CPU(s); median of {} runs after {} warm-up, TF and onnxruntime in turns".format(
        tfcompat.version_string(), ", ".join("{} {}".format(k, v) for k, v in sorted(status.versions.items())),
        tfcompat.python_version(), os.cpu_count(), args.repeat, args.warmup))
    print("")
    print("| model | batch 1 TF (optimized .pb) | batch 1 onnxruntime | batch 32 TF | batch 32 onnxruntime | "
          "onnxruntime / TF (b1, b32) | max abs diff |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for title, timing, _ in rows:
        print("| {} | {:.3f} | {:.3f} | {:.3f} | {:.3f} | {:.2f}, {:.2f} | {:.2g} |".format(
            title, timing[1]["tf_ms"], timing[1]["ort_ms"], timing[32]["tf_ms"], timing[32]["ort_ms"],
            timing[1]["ort_ms"] / timing[1]["tf_ms"], timing[32]["ort_ms"] / timing[32]["tf_ms"],
            max(timing[1]["max_abs_err"], timing[32]["max_abs_err"])))


if __name__ == "__main__":
    main()
