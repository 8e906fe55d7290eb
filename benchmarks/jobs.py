"""One measured job per process (benchmarks/run.py starts each with os.wait4 to get its own peak RSS).

Every job prints, as its last line, `RESULT {json}`: what it timed inside the process (`call`: the library
call alone, `import`: importing TensorFlow) next to what the parent measures (wall time, peak RSS).

python -m benchmarks.jobs tf-import
python -m benchmarks.jobs tf-freeze-graph --meta M --checkpoint P --outputs output --out F
python -m benchmarks.jobs tf-optimize --graph G --inputs x --outputs output --out F
python -m benchmarks.jobs migrate-cli [--session] -- freeze SRC -o OUT ...     (the real CLI)
python -m benchmarks.jobs migrate-freeze --source S --out F --outputs output [--no-verify] [--session]
python -m benchmarks.jobs migrate-optimize --source G --out F --outputs output [--no-verify]
python -m benchmarks.jobs latency --zoo-dir D --name mlp --out-dir T [--batches 1,32]
python -m benchmarks.jobs latency-graphs --graphs a.pb,b.pb --inputs x --outputs output --feed-shape 4
"""
import argparse
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def _result(**fields):
    sys.stdout.flush()
    sys.stdout.write("RESULT " + json.dumps(fields, sort_keys=True) + "\n")
    sys.stdout.flush()


def _import_tf():
    started = time.time()
    import tensorflow as tf  # noqa: F401
    try:
        tf.get_logger().setLevel("CRITICAL")
    except AttributeError:
        pass
    return time.time() - started


def tf_import(args):
    _result(**{"import": _import_tf()})


def tf_freeze_graph(args):
    seconds = _import_tf()
    from tensorflow.python.tools import freeze_graph
    started = time.time()
    freeze_graph.freeze_graph(input_graph="", input_saver="", input_binary=True, input_checkpoint=args.checkpoint,
                              output_node_names=args.outputs, restore_op_name="", filename_tensor_name="",
                              output_graph=args.out, clear_devices=True, initializer_nodes="",
                              input_meta_graph=args.meta)
    _result(**{"import": seconds, "call": time.time() - started})


def tf_optimize(args):
    seconds = _import_tf()
    import tensorflow as tf
    from tensorflow.core.framework import graph_pb2
    from tensorflow.python.tools import optimize_for_inference_lib
    started = time.time()
    graph_def = graph_pb2.GraphDef()
    with open(args.graph, "rb") as handle:
        graph_def.ParseFromString(handle.read())
    read = time.time() - started
    called = time.time()
    optimized = optimize_for_inference_lib.optimize_for_inference(
        graph_def, args.inputs.split(","), args.outputs.split(","), tf.float32.as_datatype_enum)
    call = time.time() - called
    with open(args.out, "wb") as handle:
        handle.write(optimized.SerializeToString())
    _result(**{"import": seconds, "call": call, "read": read, "read_call_write": time.time() - started,
               "nodes_before": len(graph_def.node), "nodes": len(optimized.node)})


def _session_path_only():
    """Benchmark-only patch: the streaming freeze declines every model, so freeze takes the session path
    (TF's convert_variables_to_constants in a restored session) that freezing/streaming/ replaces where it applies."""
    from migrate.freezing import streaming

    def decline(*args, **kwargs):
        raise streaming.Unsupported("benchmark: session path measured")
    streaming.freeze_to_file = decline


def migrate_cli(args):
    if args.session:
        _session_path_only()
    from migrate import cli
    started = time.time()
    code = 0
    try:
        cli.main(args.argv)
    except SystemExit as exc:
        code = exc.code or 0
    _result(code=code, inside=time.time() - started)


def migrate_freeze(args):
    seconds = _import_tf()
    from migrate import api
    if args.session:
        _session_path_only()
    started = time.time()
    result = api.freeze(args.source, args.out, outputs=args.outputs.split(","), verify=not args.no_verify,
                        force=True)
    call = time.time() - started
    notes = [n for n in result.record.notes if not n.startswith("loaded")]
    _result(**{"import": seconds, "call": call, "nodes": result.nodes, "notes": notes,
               "ok": result.comparisons is None or all(r.ok for r in result.comparisons)})


def migrate_optimize(args):
    seconds = _import_tf()
    from migrate import api
    started = time.time()
    result = api.optimize(args.source, args.out, outputs=args.outputs.split(","), verify_result=not args.no_verify,
                          force=True)
    call = time.time() - started
    passes = dict((r.name + ("#{}".format(i) if r.name in [x.name for x in result.records[:i]] else ""),
                   round(r.seconds, 3)) for i, r in enumerate(result.records))
    _result(**{"import": seconds, "call": call, "nodes_before": result.nodes_before, "nodes": result.nodes,
               "passes": passes,
               "ok": result.comparisons is None or all(r.ok for r in result.comparisons)})


# ------------------------------------------------------------------------------------------ latency

def _session_for(path):
    import tensorflow as tf
    from migrate import artifacts
    v1 = tf.compat.v1
    graph_def = artifacts.read_graph_def(path)
    graph = v1.Graph()
    with graph.as_default():
        v1.import_graph_def(graph_def, name="")
    config = v1.ConfigProto(intra_op_parallelism_threads=0, inter_op_parallelism_threads=0)
    session = v1.Session(graph=graph, config=config)
    names = set(op.name for op in graph.get_operations())
    if "migrate_init_tables" in names:
        session.run("migrate_init_tables")
    return session, names, len(graph_def.node)


def _interleaved(paths, outputs, feeds_for, batches, runs, budget=3.0):
    """{path: {batch: median seconds}}: the graphs run in turns (A B A B ...), in this process, on the same
    feeds, so drift and noise from other processes hit both alike. At least `runs` runs each, more while
    under `budget` seconds per batch size."""
    import numpy as np
    sessions = dict((path, _session_for(path)) for path in paths)
    timings = dict((path, {}) for path in paths)
    for batch in batches:
        feeds = dict((path, feeds_for(batch, sessions[path][1])) for path in paths)
        for path in paths:  # warm up: the first runs pay for Grappler and allocations
            for _ in range(3):
                sessions[path][0].run(outputs, feeds[path])
        samples = dict((path, []) for path in paths)
        started = time.perf_counter()
        while min(len(v) for v in samples.values()) < runs or (
                time.perf_counter() - started < budget and min(len(v) for v in samples.values()) < 2000):
            for path in paths:
                begin = time.perf_counter()
                sessions[path][0].run(outputs, feeds[path])
                samples[path].append(time.perf_counter() - begin)
        for path in paths:
            timings[path][batch] = float(np.median(samples[path]))
    nodes = dict((path, sessions[path][2]) for path in paths)
    for session, _, _ in sessions.values():
        session.close()
    return timings, nodes


def latency(args):
    """Freeze (api.freeze) and optimize (api.optimize) one zoo model, then time both graphs."""
    import numpy as np
    _import_tf()
    from migrate import api
    with open(os.path.join(args.zoo_dir, "manifest.json")) as handle:
        entry = [e for e in json.load(handle)["models"] if e["name"] == args.name][0]
    source = os.path.join(args.zoo_dir, entry["path"])
    frozen = os.path.join(args.out_dir, args.name + ".frozen.pb")
    optimized = os.path.join(args.out_dir, args.name + ".optimized.pb")
    golden = dict(np.load(os.path.join(args.zoo_dir, entry["golden"])))
    api.freeze(source, frozen, outputs=entry["outputs"], verify=False, force=True)
    result = api.optimize(frozen, optimized, outputs=entry["outputs"], force=True,
                          inputs_npz=None, verify_result=False)
    outputs = entry["outputs"]

    def feeds_for(batch, names):
        feeds = {}
        for name in entry["inputs"]:
            if name.split(":")[0] in names:
                value = golden[name]
                feeds[name] = np.take(value, np.arange(batch) % value.shape[0], axis=0) if value.ndim else value
        return feeds
    batches = [int(b) for b in args.batches.split(",")]
    timings, nodes = _interleaved([frozen, optimized], outputs, feeds_for, batches, args.runs)
    _result(name=args.name, nodes_frozen=nodes[frozen], nodes_optimized=nodes[optimized],
            frozen=timings[frozen], optimized=timings[optimized], passes=[r.name for r in result.records
                                                                          if r.applied])


def latency_graphs(args):
    """Time already written graphs with float inputs of shape [batch] + feed_shape."""
    import numpy as np
    _import_tf()
    rng = np.random.RandomState(0)
    dims = [int(d) for d in args.feed_shape.split(",")]
    inputs = args.inputs.split(",")

    def feeds_for(batch, names):
        return dict((name + ":0", rng.standard_normal([batch] + dims).astype(np.float32)) for name in inputs)
    outputs = [name + ":0" for name in args.outputs.split(",")]
    paths = args.graphs.split(",")
    batches = [int(b) for b in args.batches.split(",")]
    timings, nodes = _interleaved(paths, outputs, feeds_for, batches, args.runs)
    _result(timings=dict((os.path.basename(p), timings[p]) for p in paths),
            nodes=dict((os.path.basename(p), nodes[p]) for p in paths))


def main(argv=None):
    parser = argparse.ArgumentParser(description="one benchmark job")
    sub = parser.add_subparsers(dest="job")
    sub.add_parser("tf-import")
    p = sub.add_parser("tf-freeze-graph")
    for flag in ("--meta", "--checkpoint", "--outputs", "--out"):
        p.add_argument(flag, required=True)
    p = sub.add_parser("tf-optimize")
    for flag in ("--graph", "--inputs", "--outputs", "--out"):
        p.add_argument(flag, required=True)
    p = sub.add_parser("migrate-cli")
    p.add_argument("--session", action="store_true", help="freeze through the session path, not streaming")
    p.add_argument("argv", nargs=argparse.REMAINDER)
    p = sub.add_parser("migrate-freeze")
    for flag in ("--source", "--out", "--outputs"):
        p.add_argument(flag, required=True)
    p.add_argument("--no-verify", action="store_true")
    p.add_argument("--session", action="store_true", help="freeze through the session path, not streaming")
    p = sub.add_parser("migrate-optimize")
    for flag in ("--source", "--out", "--outputs"):
        p.add_argument(flag, required=True)
    p.add_argument("--no-verify", action="store_true")
    p = sub.add_parser("latency")
    for flag in ("--zoo-dir", "--name", "--out-dir"):
        p.add_argument(flag, required=True)
    p.add_argument("--batches", default="1,32")
    p.add_argument("--runs", type=int, default=30)
    p = sub.add_parser("latency-graphs")
    for flag in ("--graphs", "--inputs", "--outputs", "--feed-shape"):
        p.add_argument(flag, required=True)
    p.add_argument("--batches", default="1,32")
    p.add_argument("--runs", type=int, default=10)
    args = parser.parse_args(argv)
    if args.job == "migrate-cli" and args.argv and args.argv[0] == "--":
        args.argv = args.argv[1:]
    {"tf-import": tf_import, "tf-freeze-graph": tf_freeze_graph, "tf-optimize": tf_optimize,
     "migrate-cli": migrate_cli, "migrate-freeze": migrate_freeze, "migrate-optimize": migrate_optimize,
     "latency": latency, "latency-graphs": latency_graphs}[args.job](args)


if __name__ == "__main__":
    main()
