"""`migrate calibrate`'s collection against plain FP32 inference of the same batches (a script, not a test).

Builds a frozen graph in a temp dir (the layers x width MLP of benchmarks/models.py with its weights as
constants, or a conv net), writes N calibration batches (.npz, batch 32), then in one process:
  fp32        the outputs only, batch after batch (what inference costs)
  collection  what calibration.run.collect runs: the graph with its statistics nodes (collect.py), fetching
              every calibrated tensor's max |x| and histogram, merged into the running ones; the two in turns
              (fp32, collection, fp32, ...) so load on the machine hits both alike
  ranges      entropy / minmax / percentile from the histograms
and the RSS (VmRSS) after each collected batch: it must stay flat, however many batches (bounded by one batch's
activations plus the histograms).

python benchmarks/calibrate.py mlp --layers 16 --width 4096 --batches 20
python benchmarks/calibrate.py conv --batches 20
"""
import argparse
import os
import shutil
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))


def _rss_mib():
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def build_mlp(path, layers, width, seed=0):
    """x [None, width] -> layers x (MatMul, BiasAdd, Relu) -> output; weights as Const nodes."""
    from migrate import tfcompat
    v1 = tfcompat.v1()
    rng = np.random.RandomState(seed)
    graph = v1.Graph()
    with graph.as_default():
        h = v1.placeholder(v1.float32, [None, width], name="x")
        for index in range(layers):
            kernel = (rng.standard_normal((width, width)) / np.sqrt(width)).astype(np.float32)
            h = v1.nn.bias_add(v1.matmul(h, kernel), np.full(width, 0.01, np.float32))
            if index < layers - 1:
                h = v1.nn.relu(h)
        v1.identity(h, name="output")
    with open(path, "wb") as handle:
        handle.write(graph.as_graph_def().SerializeToString())
    return "x:0", [width], "output:0"


def build_conv(path, seed=0):
    """x [None, 64, 64, 3] -> 3 x (Conv 3x3, BiasAdd, Relu, MaxPool) with 32/64/128 channels -> 2 dense."""
    from migrate import tfcompat
    v1 = tfcompat.v1()
    rng = np.random.RandomState(seed)
    graph = v1.Graph()
    with graph.as_default():
        h = v1.placeholder(v1.float32, [None, 64, 64, 3], name="x")
        channels = 3
        for out in (32, 64, 128):
            kernel = (rng.standard_normal((3, 3, channels, out)) / np.sqrt(9 * channels)).astype(np.float32)
            h = v1.nn.conv2d(h, kernel, [1, 1, 1, 1], "SAME")
            h = v1.nn.relu(v1.nn.bias_add(h, np.full(out, 0.01, np.float32)))
            h = v1.nn.max_pool(h, [1, 2, 2, 1], [1, 2, 2, 1], "SAME")
            channels = out
        h = v1.reshape(h, [-1, 8 * 8 * 128])
        dense = (rng.standard_normal((8 * 8 * 128, 256)) / np.sqrt(8192)).astype(np.float32)
        h = v1.nn.relu(v1.matmul(h, dense))
        logits = v1.matmul(h, (rng.standard_normal((256, 10)) / 16).astype(np.float32))
        v1.nn.softmax(logits, name="output")
    with open(path, "wb") as handle:
        handle.write(graph.as_graph_def().SerializeToString())
    return "x:0", [64, 64, 3], "output:0"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=["mlp", "conv"])
    parser.add_argument("--layers", type=int, default=16)
    parser.add_argument("--width", type=int, default=4096)
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--batch", type=int, default=32)
    args = parser.parse_args(argv)
    from migrate import artifacts, verify
    from migrate.calibration import collect as statistics
    from migrate.calibration import histogram, run
    from migrate.session import Restored
    work = tempfile.mkdtemp(prefix="migrate-calib-bench-")
    try:
        path = os.path.join(work, "model.pb")
        started = time.time()
        if args.kind == "mlp":
            name, shape, output = build_mlp(path, args.layers, args.width)
            what = "{}x{} MLP ({:.2f} GB of weights)".format(args.layers, args.width,
                                                            args.layers * args.width ** 2 * 4 / 1e9)
        else:
            name, shape, output = build_conv(path)
            what = "conv net (3 conv blocks 32/64/128 on 64x64x3, 2 dense)"
        built = time.time() - started
        data = os.path.join(work, "calib")
        os.makedirs(data)
        rng = np.random.RandomState(1)
        for index in range(args.batches):
            np.savez(os.path.join(data, "b{:04d}.npz".format(index)),
                     x=rng.standard_normal([args.batch] + shape).astype(np.float32))
        model = artifacts.load(path)
        specs = verify.input_specs(model.graph_def, [output])
        tensors = run.calibrated_tensors(model.graph_def, [output])
        files = sorted(os.path.join(data, f) for f in os.listdir(data))
        fp32 = collect = stats = 0.0
        rss = []
        hists = dict((t, histogram.AbsHistogram()) for t in tensors)
        graph_def, names = statistics.statistics_graph(model.graph_def, tensors)
        wanted = statistics.fetches(names)
        # the batch's activations, as calibrate fetched them before the histograms moved into the graph
        activation_bytes = 0
        with Restored(model.derive(graph_def=graph_def)) as restored:
            first = run.data.read_batch(files[0], specs)
            restored.run([output], first)  # warm-up, both kinds of run
            activation_bytes = sum(v.nbytes for v in restored.run(tensors, first).values())
            restored.run(wanted, dict(first, **statistics.amax_feeds(names, hists)))
            rss_before = _rss_mib()
            for name_ in files:
                feeds = run.data.read_batch(name_, specs)
                t0 = time.time()
                restored.run([output], feeds)
                t1 = time.time()
                values = restored.run(wanted, dict(feeds, **statistics.amax_feeds(names, hists)))
                t2 = time.time()
                assert not statistics.merge(names, hists, values)  # finite inputs here
                t3 = time.time()
                fp32 += t1 - t0
                collect += t2 - t1
                stats += t3 - t2
                rss.append(_rss_mib())
        t4 = time.time()
        ranges = run.compute_ranges(hists, histogram.METHODS, histogram.DEFAULT_PERCENTILE)
        range_seconds = time.time() - t4
        images = args.batches * args.batch
        half = max(1, len(rss) // 2)
        print("| model | {} (built in {:.0f} s) |".format(what, built))
        print("|---|---|")
        print("| calibrated tensors | {} |".format(len(ranges["entropy"])))
        print("| batches x batch | {} x {} |".format(args.batches, args.batch))
        print("| FP32 inference (outputs only) | {:.2f} s ({:.1f} samples/s) |".format(fp32, images / fp32))
        print("| collection: session runs computing every histogram | {:.2f} s |".format(collect))
        print("| collection: merging the histograms (numpy) | {:.2f} s |".format(stats))
        print("| collection total / FP32 | {:.2f}x ({:.1f} samples/s) |".format(
            (collect + stats) / fp32, images / (collect + stats)))
        print("| ranges (entropy + minmax + percentile, all tensors) | {:.2f} s |".format(range_seconds))
        print("| one batch's calibrated activations | {:.1f} MiB |".format(activation_bytes / 2.0 ** 20))
        print("| histograms | {:.2f} MiB |".format(len(tensors) * histogram.BINS * 8 / 2.0 ** 20))
        print("| RSS over the warmed-up session: first half of the batches (max) | {:.1f} MiB |".format(
            max(rss[:half]) - rss_before))
        print("| RSS over the warmed-up session: second half (max) | {:.1f} MiB |".format(
            max(rss[half:] or rss) - rss_before))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
