"""How long `migrate plan` takes per node: planning.plan on chain graphs of 10k to 120k nodes (models.py's chain:
blocks of Const, Const, Mul, AddV2, Identity, CheckNumerics; each CheckNumerics cuts the chain, so every block is
a segment candidate and the segmenter contracts ~N/3 edges), for every TF-TRT generation.

python benchmarks/plan.py [--nodes 10002,100002,120002] [--repeat 3]

Prints a markdown table: nodes, generation, seconds (best of --repeat), microseconds per node, engines. The
plan alone (shapes, classification, segmentation, report) is timed: the graph is built in memory first, no
loading, freezing or passes (those are the other verbs' numbers)."""
import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", default="10002,100002,120002")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--generations", default="contrib-1.13,converter-v1,converter-v2")
    args = parser.parse_args(argv)
    from benchmarks.models import chain_graph_def
    from migrate import planning
    rows = []
    for count in [int(n) for n in args.nodes.split(",")]:
        graph_def = chain_graph_def(count)
        for generation in args.generations.split(","):
            best, cpu, result = None, None, None
            for _ in range(args.repeat):
                started, started_cpu = time.time(), time.process_time()
                result = planning.plan(graph_def, ["output"], {"tf_trt": generation, "minimum_segment_size": 1})
                elapsed, used = time.time() - started, time.process_time() - started_cpu
                best = elapsed if best is None else min(best, elapsed)
                cpu = used if cpu is None else min(cpu, used)
            rows.append((len(graph_def.node), generation, best, cpu, result["engines"],
                         len(result["segments"]) + len(result["dropped_segments"])))
            sys.stderr.write("{} nodes {}: {:.2f}s\n".format(len(graph_def.node), generation, best))
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print("| nodes | TF-TRT | wall s (best of {}) | CPU s | CPU us/node | engines | segments found |".format(
        args.repeat))
    print("|---|---|---|---|---|---|---|")
    for nodes, generation, seconds, cpu, engines, found in rows:
        print("| {:,} | {} | {:.2f} | {:.2f} | {:.1f} | {} | {} |".format(
            nodes, generation, seconds, cpu, 1e6 * cpu / nodes, engines, found))
    print("\n(load average when done: {:.1f} on {} CPUs)".format(load, os.cpu_count()))


if __name__ == "__main__":
    main()
