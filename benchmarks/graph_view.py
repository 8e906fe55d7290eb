"""Why migrate/graph/view.py is not networkx: the same three questions asked of both on one GraphDef.

python benchmarks/graph_view.py [--nodes 1000004]

  build   the directed graph of every input (data and control edges, kinds on the edges)
  order   a topological order whose ties keep the GraphDef's order (networkx: lexicographical_topological_sort)
  needed  everything the output needs (networkx: ancestors)

Prints a markdown table of seconds per step, best of 3, and the ratio. tests/test_graph_oracle.py checks
that both give the same answers. Needs networkx (setup.cfg's test extra)."""
import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def networkx_steps(graph_def):
    import networkx as nx
    from migrate.graph import view

    def build():
        graph = nx.DiGraph()
        graph.add_nodes_from((node.name, {"op": node.op, "index": i}) for i, node in enumerate(graph_def.node))
        for node in graph_def.node:
            for input_name in node.input:
                producer, output = view.parse_input(input_name)
                if output >= 0 or not graph.has_edge(producer, node.name):
                    graph.add_edge(producer, node.name, kind=view.DATA if output >= 0 else view.CONTROL)
        return graph

    def order(graph):
        index = nx.get_node_attributes(graph, "index")
        return list(nx.lexicographical_topological_sort(graph, key=index.get))

    def needed(graph):
        return nx.ancestors(graph, "output") | {"output"}
    return build, order, needed


def view_steps(graph_def):
    from migrate.graph import view
    return (lambda: view.to_digraph(graph_def), view.topological_order,
            lambda graph: view.needed_nodes(graph, ["output"]))


def timed(steps, repeat):
    build, order, needed = steps
    best = [float("inf")] * 3
    answers = None
    for _ in range(repeat):
        started = time.time()
        graph = build()
        built = time.time()
        ordered = order(graph)
        middle = time.time()
        found = needed(graph)
        done = time.time()
        best = [min(a, b) for a, b in zip(best, (built - started, middle - built, done - middle))]
        answers = (ordered, found)
        del graph
    return best, answers


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=1000004)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--unsorted", action="store_true", help="reverse the GraphDef's node order first")
    args = parser.parse_args(argv)
    from benchmarks import models
    graph_def = models.chain_graph_def(args.nodes)
    if args.unsorted:  # the order pass then has real work to do
        nodes = list(graph_def.node)[::-1]
        del graph_def.node[:]
        graph_def.node.extend(nodes)
    theirs, their_answers = timed(networkx_steps(graph_def), args.repeat)
    ours, our_answers = timed(view_steps(graph_def), args.repeat)
    if their_answers != our_answers:
        raise SystemExit("networkx and migrate.graph.view disagree")
    print("| step ({:,} nodes{}) | networkx s | migrate.graph.view s | networkx / view |".format(
        len(graph_def.node), ", order reversed" if args.unsorted else ""))
    print("|---|---:|---:|---:|")
    for name, a, b in zip(("build", "order", "needed"), theirs, ours):
        print("| {} | {:.2f} | {:.2f} | {:.1f}x |".format(name, a, b, a / b if b else float("inf")))
    print("| total | {:.2f} | {:.2f} | {:.1f}x |".format(sum(theirs), sum(ours), sum(theirs) / sum(ours)))


if __name__ == "__main__":
    main()
