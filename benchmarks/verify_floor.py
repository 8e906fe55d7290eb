"""The floor under a verified optimize: what TensorFlow itself charges to run a graph once.

python -m benchmarks.verify_floor --graph chain.pb --optimized chain_optimized.pb [--inputs x --outputs output
    --feed-shape 1,4]

A verified `migrate optimize` runs the input graph and the optimized graph in TF sessions and compares their
outputs. Whatever migrate does around that, each run costs at least TF's C-API import of the GraphDef (no Python
wrappers) and the session's first run (graph copy, placement, TF's registered rewrite passes, partitioning,
kernel creation). This script measures those two for both graphs, each in its own process, and TF's
optimize_for_inference on the input graph, all net of `import tensorflow` (measured in the same run). Times are
CPU seconds (user + sys) of each process, so a shared machine changes them little. The ratio printed is that
floor over optimize_for_inference's CPU seconds: a verified optimize can never be cheaper than it.
"""
import argparse
import json
import os
import resource
import subprocess
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def cpu():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def rss_gib():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / float(2 ** 20)
    return 0.0


def one_run(path, inputs, outputs, feed_shape):
    """{import_cpu, run_cpu, run_rss_gib, nodes} of running the frozen graph at `path` once, as a verification
    run does (tfcompat.import_for_run, session.session_config)."""
    import gc
    import numpy as np
    import tensorflow as tf
    from migrate import session, tfcompat
    from migrate.graph import files
    structure, weights = files.read_back(path)
    v1 = tf.compat.v1
    graph = v1.Graph()
    started = cpu()
    tfcompat.import_for_run(graph, structure, wrappers=False)  # the C import alone: what TF must do
    import_cpu = cpu() - started
    graph = None
    gc.collect()
    graph = v1.Graph()
    tfcompat.import_for_run(graph, structure, wrappers=True)  # names for the feeds and fetches (not timed)
    nodes = len(structure.node)
    structure = None
    gc.collect()
    feeds = {name + ":0": np.ones(feed_shape, np.float32) for name in inputs}
    feeds.update(weights)
    with v1.Session(graph=graph, config=session.session_config()) as sess:
        before, started = rss_gib(), cpu()
        sess.run([name + ":0" for name in outputs], feeds)
        run_cpu, run_rss = cpu() - started, rss_gib() - before
    return {"nodes": nodes, "import_cpu": import_cpu, "run_cpu": run_cpu, "run_rss_gib": run_rss}


def tf_import():
    started = cpu()
    import tensorflow  # noqa: F401
    return {"cpu": cpu() - started}


def tf_optimize(path, inputs, outputs):
    """CPU seconds of the whole process for optimize_for_inference (minus nothing: the parent subtracts the
    import measured alone)."""
    import tensorflow as tf
    from tensorflow.core.framework import graph_pb2
    from tensorflow.python.tools import optimize_for_inference_lib
    tf.get_logger().setLevel("ERROR")  # its deprecation notices
    graph_def = graph_pb2.GraphDef()
    with open(path, "rb") as handle:
        graph_def.ParseFromString(handle.read())
    optimize_for_inference_lib.optimize_for_inference(graph_def, inputs, outputs, tf.float32.as_datatype_enum)
    return {"cpu": cpu()}


def _child(args):
    if args.job == "import":
        result = tf_import()
    elif args.job == "optimize":
        result = tf_optimize(args.graph, args.inputs.split(","), args.outputs.split(","))
    else:
        shape = [int(dim) for dim in args.feed_shape.split(",")]
        result = one_run(args.graph, args.inputs.split(","), args.outputs.split(","), shape)
    sys.stdout.write("RESULT " + json.dumps(result) + "\n")


def _spawn(job, graph, args):
    command = [sys.executable, "-m", "benchmarks.verify_floor", "--child", job, "--graph", graph or "",
               "--inputs", args.inputs, "--outputs", args.outputs, "--feed-shape", args.feed_shape]
    printed = subprocess.check_output(command, universal_newlines=True)
    return json.loads([line for line in printed.splitlines() if line.startswith("RESULT ")][-1][7:])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--graph", help="the input frozen graph (binary)")
    parser.add_argument("--optimized", help="migrate's optimized graph of it (binary)")
    parser.add_argument("--inputs", default="x")
    parser.add_argument("--outputs", default="output")
    parser.add_argument("--feed-shape", default="1,4")
    parser.add_argument("--child", dest="job", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.job:
        return _child(args)
    imported = _spawn("import", None, args)["cpu"]
    optimize = _spawn("optimize", args.graph, args)["cpu"] - imported
    runs = [(label, _spawn("run", path, args)) for label, path in (("input", args.graph),
                                                                    ("optimized", args.optimized))]
    print("| graph | nodes | C import CPU s | first run CPU s | first run adds RSS GiB |")
    print("|---|---:|---:|---:|---:|")
    for label, run in runs:
        print("| {} | {:,} | {:.2f} | {:.2f} | {:.2f} |".format(label, run["nodes"], run["import_cpu"],
                                                              run["run_cpu"], run["run_rss_gib"]))
    floor = sum(run["import_cpu"] + run["run_cpu"] for _, run in runs)
    print("")
    print("import tensorflow: {:.2f} CPU s; optimize_for_inference net of it: {:.2f} CPU s; TF's floor of a "
          "verified optimize (both graphs imported and run once): {:.2f} CPU s = {:.2f}x".format(
              imported, optimize, floor, floor / optimize))


if __name__ == "__main__":
    main()
