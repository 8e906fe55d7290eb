"""Every optimize pass timed alone on the chain graph at several sizes: is each one linear in the nodes?

python -m benchmarks.passes_scaling [--sizes 10000,100000,1000000] [--repeat 1]

For each size, the chain (benchmarks/models.py: Const, Const, Mul, AddV2, Identity, CheckNumerics per block) goes
through the default pipeline once to record what each pass is handed; then each pass runs alone on exactly that
graph, in place, with a node index built beforehand (its build is its own row: run_pipeline builds it once per
run). Times are CPU seconds of this process (user + sys: the machine may be shared), the best of --repeat.
The slope is a least-squares fit of seconds against nodes (us per node); "1M / 100k" is the time ratio of the
two largest sizes, which a linear pass keeps near their node ratio (10 for the default sizes).
"""
import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def cpu():
    return time.process_time()  # user + sys of this process


def _labels(pass_names):
    """'remove_identity', 'remove_identity#5' ...: a pass that runs twice is told apart by its position."""
    seen, labels = set(), []
    for position, name in enumerate(pass_names):
        labels.append(name if name not in seen else "{}#{}".format(name, position))
        seen.add(name)
    return labels


def measure(nodes, repeat):
    """{label: CPU seconds} for one chain size, plus the index build and the whole pipeline."""
    from benchmarks.models import chain_graph_def
    from migrate import passes
    from migrate.graph.index import NodeIndex
    from migrate.passes import PassContext
    graph_def = chain_graph_def(nodes)
    count = len(graph_def.node)
    handed = []  # what each pass of the default pipeline receives, serialized
    working = type(graph_def)()
    working.CopyFrom(graph_def)
    context = PassContext(["output:0"], ["x:0"])
    context.index = NodeIndex(working)
    for name in passes.DEFAULT_PASSES:
        handed.append(working.SerializeToString())
        working, _ = passes.REGISTRY[name].run(working, context, in_place=True)
    results = {"index build": float("inf")}
    for label, name, data in zip(_labels(passes.DEFAULT_PASSES), passes.DEFAULT_PASSES, handed):
        best = float("inf")
        for _ in range(repeat):
            graph = type(graph_def)()
            graph.ParseFromString(data)
            context = PassContext(["output:0"], ["x:0"])
            started = cpu()
            context.index = NodeIndex(graph)
            built = cpu()
            passes.REGISTRY[name].run(graph, context, in_place=True)
            best = min(best, cpu() - built)
            if label == passes.DEFAULT_PASSES[0]:
                results["index build"] = min(results["index build"], built - started)
        results[label] = best
    best = float("inf")
    for _ in range(repeat):
        graph = type(graph_def)()
        graph.CopyFrom(graph_def)
        started = cpu()
        passes.run_pipeline(graph, passes.DEFAULT_PASSES, PassContext(["output:0"], ["x:0"]), checked=True,
                            in_place=True)
        best = min(best, cpu() - started)
    results["whole pipeline (index included)"] = best
    return count, results


def slope(points):
    """Least-squares slope of seconds against nodes, in microseconds per node."""
    n = float(len(points))
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    num = sum((x - mean_x) * (y - mean_y) for x, y in points)
    den = sum((x - mean_x) ** 2 for x, _ in points)
    return num / den * 1e6 if den else float("nan")


def table(sizes, measured):
    labels = list(measured[0][1])
    head = "| pass | " + " | ".join("{:,} nodes s".format(count) for count, _ in measured) + \
           " | slope us/node | {} / {} |".format(_short(measured[-1][0]), _short(measured[-2][0]))
    lines = [head, "|---|" + "---:|" * (len(measured) + 2)]
    for label in labels:
        points = [(count, results[label]) for count, results in measured]
        small, large = points[-2][1], points[-1][1]
        ratio = "{:.1f}".format(large / small) if small >= 0.005 else "(below timer resolution)"
        lines.append("| {} | {} | {:.2f} | {} |".format(
            label, " | ".join("{:.3f}".format(seconds) for _, seconds in points), slope(points), ratio))
    return "\n".join(lines)


def _short(count):
    return "{}k".format(int(round(count / 1000.0))) if count < 10 ** 6 else "{:g}M".format(round(count / 1e6, 1))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args(argv)
    sizes = [int(size) for size in args.sizes.split(",")]
    if len(sizes) < 2:
        parser.error("--sizes needs at least two sizes")
    import gc
    gc.disable()  # as run_pipeline does: the passes build many small containers without cycles
    measured = []
    for size in sizes:
        started = time.time()
        measured.append(measure(size, args.repeat))
        sys.stderr.write("{} nodes: {:.1f}s\n".format(measured[-1][0], time.time() - started))
        gc.collect()
    import tensorflow as tf
    sys.stdout.write("CPU seconds per pass alone (TF {}, Python {}.{})\n\n".format(
        tf.__version__, sys.version_info[0], sys.version_info[1]))
    sys.stdout.write(table(sizes, measured) + "\n")


if __name__ == "__main__":
    main()
