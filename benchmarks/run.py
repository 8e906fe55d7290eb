"""Measure migrate next to TensorFlow's own tools, each job in its own process, and print markdown tables.

python benchmarks/run.py                          # everything, with the interpreter running this script
python benchmarks/run.py --python /path/to/python --only freeze,optimize --repeat 3
python benchmarks/run.py --zoo .tox/zoo           # + CPU latency of every zoo model, frozen vs optimized

Models are built in a temp dir (--workdir to choose, --keep to keep it): the 16-layer 4096x4096 MLP as a TF1
checkpoint (1.07 GB), frozen graphs of 120,002 and 1,000,004 tiny-tensor nodes (benchmarks/models.py).
Each job runs in a fresh process started here; wall time and peak RSS (os.wait4 rusage of that process)
are measured from outside, the library call alone from inside (benchmarks/jobs.py). Before each job the
page cache is flushed to disk (sync) so no job pays for another's writes. With --repeat N every job runs
N times: the median wall time and the largest peak RSS are reported.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)


class Result(object):
    def __init__(self, label, wall, rss_kb, inside, code, log):
        self.label, self.wall, self.rss_kb, self.inside, self.code, self.log = label, wall, rss_kb, inside, code, log

    @property
    def rss_gb(self):
        return self.rss_kb / 1024.0 / 1024.0


class Runner(object):
    def __init__(self, python, workdir, repeat, verbose):
        self.python, self.workdir, self.repeat, self.verbose = python, workdir, repeat, verbose
        self.env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""),
                        TF_CPP_MIN_LOG_LEVEL="3")

    def once(self, args, remove=()):
        for path in remove:
            if os.path.exists(path):
                os.remove(path)
        os.sync()
        time.sleep(0.5)
        log_path = os.path.join(self.workdir, "job.log")
        with open(log_path, "w") as log:
            started = time.time()
            process = subprocess.Popen([self.python] + list(args), stdout=log, stderr=subprocess.STDOUT,
                                       cwd=REPO, env=self.env)
            _, status, usage = os.wait4(process.pid, 0)
            wall = time.time() - started
        process.returncode = os.WEXITSTATUS(status) if os.WIFEXITED(status) else -1
        with open(log_path) as log:
            text = log.read()
        inside = {}
        for line in text.splitlines():
            if line.startswith("RESULT "):
                inside = json.loads(line[len("RESULT "):])
        return wall, usage.ru_maxrss, inside, process.returncode, text

    def job(self, label, args, remove=()):
        runs = [self.once(args, remove) for _ in range(self.repeat)]
        walls = sorted(run[0] for run in runs)
        last = runs[-1]
        result = Result(label, walls[len(walls) // 2], max(run[1] for run in runs), last[2], last[3], last[4])
        status = "ok" if result.code == 0 else "EXIT {}".format(result.code)
        sys.stderr.write("  {:58} {:7.2f} s {:6.2f} GB  {}\n".format(label, result.wall, result.rss_gb, status))
        if result.code != 0 or self.verbose:
            sys.stderr.write("\n".join("    | " + line for line in result.log.splitlines()[-15:]) + "\n")
        return result

    def build(self, args):
        code = subprocess.call([self.python, "-m", "benchmarks.models"] + list(args), cwd=REPO, env=self.env)
        if code:
            raise SystemExit("building {} failed".format(args))


def _row(result, baseline=None, tf_import=None, call_key="call"):
    call = result.inside.get(call_key)
    ratio = "{:.2f}x".format(result.wall / baseline.wall) if baseline is not None else ""
    over = "+{:.2f}".format(result.rss_gb - tf_import.rss_gb) if tf_import is not None else ""
    return "| {} | {:.1f} | {:.2f} | {} | {} | {} |".format(
        result.label, result.wall, result.rss_gb, "{:.1f}".format(call) if call is not None else "", ratio, over)


HEADER = ("| job | wall s | peak RSS GB | call alone s | wall vs TF | RSS over TF import GB |\n"
          "|---|---:|---:|---:|---:|---:|")


def freeze_section(run, work, layers, width):
    mlp = os.path.join(work, "mlp")
    if not os.path.exists(os.path.join(mlp, "model.ckpt.index")):
        run.build(["mlp", mlp, "--layers", str(layers), "--width", str(width)])
    prefix = os.path.join(mlp, "model.ckpt")
    out = os.path.join(work, "frozen.pb")
    tf_out = os.path.join(work, "tf_frozen.pb")
    sys.stderr.write("freeze: {}-layer {}x{} MLP checkpoint\n".format(layers, width, width))
    tf_import = run.job("import tensorflow (nothing else)", ["-m", "benchmarks.jobs", "tf-import"])
    tf = run.job("TF freeze_graph (meta graph + checkpoint)",
                 ["-m", "benchmarks.jobs", "tf-freeze-graph", "--meta", prefix + ".meta", "--checkpoint", prefix,
                  "--outputs", "output", "--out", tf_out], [tf_out])
    cli = ["-m", "migrate", "freeze", prefix, "-o", out, "--outputs", "output", "--force"]
    session = ["-m", "benchmarks.jobs", "migrate-cli", "--session", "--"] + cli[2:]
    library = ["-m", "benchmarks.jobs", "migrate-freeze", "--source", prefix, "--out", out, "--outputs", "output"]
    rows = [
        run.job("`migrate freeze --no-verify`", cli + ["--no-verify"], [out]),
        run.job("`migrate freeze` (verified)", cli, [out]),
        run.job("`migrate freeze --no-verify`, session path forced", session + ["--no-verify"], [out]),
        run.job("`migrate freeze`, session path forced (verified)", session, [out]),
        run.job("api.freeze, no verify (library call)", library + ["--no-verify"], [out]),
        run.job("api.freeze, verified (library call)", library, [out]),
    ]
    if os.path.exists(tf_out):
        os.remove(tf_out)
    lines = ["### freeze: {}-layer {}x{} MLP, TF1 checkpoint ({:.2f} GB of weights)".format(
        layers, width, width, layers * (width * width + width) * 4 / 1e9), "", HEADER,
        _row(tf_import, call_key="import"), _row(tf, tf, tf_import)]
    lines += [_row(r, tf, tf_import) for r in rows]
    return lines, out, tf_import


def optimize_section(run, work, graphs, tf_import):
    lines = []
    for title, path, inputs, outputs, keep_as in graphs:
        sys.stderr.write("optimize: {}\n".format(title))
        out = os.path.join(work, "optimized.pb")
        tf_out = os.path.join(work, "tf_optimized.pb")
        tf = run.job("TF optimize_for_inference", ["-m", "benchmarks.jobs", "tf-optimize", "--graph", path,
                                                   "--inputs", inputs, "--outputs", outputs, "--out", tf_out],
                     [tf_out])
        cli = ["-m", "migrate", "optimize", path, "-o", out, "--outputs", outputs, "--no-trt", "--force"]
        library = ["-m", "benchmarks.jobs", "migrate-optimize", "--source", path, "--out", out, "--outputs",
                   outputs]
        rows = [
            run.job("`migrate optimize --no-trt --no-verify`", cli + ["--no-verify"], [out]),
            run.job("`migrate optimize --no-trt` (verified file against file)", cli, [out]),
            run.job("api.optimize, verified (library call)", library, [out]),
            run.job("api.optimize, no verify (library call)", library + ["--no-verify"], [out]),
        ]
        passes = rows[-1].inside.get("passes") or {}
        lines += ["", "### optimize: {}".format(title), "", HEADER, _row(tf, tf, tf_import)]
        lines += [_row(r, tf, tf_import) for r in rows]
        lines += ["", "nodes {} -> {} (TF: {}); passes (s): {}".format(
            rows[-1].inside.get("nodes_before"), rows[-1].inside.get("nodes"), tf.inside.get("nodes"),
            ", ".join("{} {:.2f}".format(k, v) for k, v in passes.items()))]
        if os.path.exists(tf_out):
            os.remove(tf_out)
        if keep_as and os.path.exists(out):  # for the latency section
            shutil.move(out, os.path.join(work, keep_as))
    return lines


EXPORT_HEADER = ("| job | wall s | peak RSS GB | RSS over TF import GB | over TF import / model size |\n"
                 "|---|---:|---:|---:|---:|")


def export_section(run, work, layers, width, tf_import):
    """export and convert of an MLP checkpoint and of its frozen graph (issue 19: 524 MB, 160 s / 16.5 GB and
    207 s / 18 GB before): peak RSS against the model's size."""
    mlp = os.path.join(work, "mlp_export")
    if not os.path.exists(os.path.join(mlp, "model.ckpt.index")):
        run.build(["mlp", mlp, "--layers", str(layers), "--width", str(width)])
    prefix = os.path.join(mlp, "model.ckpt")
    size = layers * (width * width + width) * 4 / 1e9
    frozen = os.path.join(work, "export_frozen.pb")
    sys.stderr.write("export/convert: {}-layer {}x{} MLP ({:.2f} GB of weights)\n".format(layers, width, width,
                                                                                         size))
    if tf_import is None:
        tf_import = run.job("import tensorflow (nothing else)", ["-m", "benchmarks.jobs", "tf-import"])
    run.job("(setup) migrate freeze", ["-m", "migrate", "freeze", prefix, "-o", frozen, "--outputs", "output",
                                       "--force"])
    saved, converted = os.path.join(work, "exported"), os.path.join(work, "converted")
    rows = [
        run.job("`migrate export FROZEN.pb` (tf2, verified)", ["-m", "migrate", "export", frozen, "-o", saved,
                                                               "--force"]),
        run.job("`migrate export CHECKPOINT --outputs output` (tf2, verified)",
                ["-m", "migrate", "export", prefix, "-o", saved, "--outputs", "output", "--force"]),
        run.job("`migrate convert CHECKPOINT` (default: TF-TRT gate)",
                ["-m", "migrate", "convert", prefix, converted, "--outputs", "output", "--force"]),
        run.job("`migrate convert CHECKPOINT --no-trt`",
                ["-m", "migrate", "convert", prefix, converted, "--outputs", "output", "--no-trt", "--force"]),
    ]
    for path in (saved, converted):
        shutil.rmtree(path, ignore_errors=True)
    lines = ["", "### export and convert: {}-layer {}x{} MLP, TF1 checkpoint ({:.2f} GB of weights)".format(
        layers, width, width, size), "", EXPORT_HEADER,
        "| import tensorflow (nothing else) | {:.1f} | {:.2f} | | |".format(tf_import.wall, tf_import.rss_gb)]
    for result in rows:
        over = result.rss_gb - tf_import.rss_gb
        lines.append("| {} | {:.1f} | {:.2f} | +{:.2f} | {:.2f}x |".format(
            result.label + ("" if result.code == 0 else " (EXIT {})".format(result.code)), result.wall,
            result.rss_gb, over, over / size))
    return lines


def latency_section(run, work, zoo, graphs):
    lines = ["", "### CPU inference latency, frozen vs optimized (ms, median; the two graphs run in turns in one "
             "process)", "",
             "| model | nodes frozen -> optimized | batch 1 frozen | batch 1 optimized | batch 32 frozen | "
             "batch 32 optimized | optimized / frozen (b1, b32) |", "|---|---|---:|---:|---:|---:|---:|"]

    def add(name, nodes, frozen, optimized):
        b1 = optimized["1"] / frozen["1"]
        b32 = optimized["32"] / frozen["32"]
        lines.append("| {} | {} | {:.3f} | {:.3f} | {:.3f} | {:.3f} | {:.2f}, {:.2f} |".format(
            name, nodes, frozen["1"] * 1e3, optimized["1"] * 1e3, frozen["32"] * 1e3, optimized["32"] * 1e3, b1,
            b32))
    for title, frozen, optimized, inputs, outputs, shape in graphs:
        if not (os.path.exists(frozen) and os.path.exists(optimized)):
            continue
        result = run.job("latency " + title, ["-m", "benchmarks.jobs", "latency-graphs", "--graphs",
                                              frozen + "," + optimized, "--inputs", inputs, "--outputs", outputs,
                                              "--feed-shape", shape])
        if result.code == 0:
            timing, nodes = result.inside["timings"], result.inside["nodes"]
            a, b = os.path.basename(frozen), os.path.basename(optimized)
            add(title, "{} -> {}".format(nodes[a], nodes[b]), timing[a], timing[b])
    for zoo_name in sorted(os.listdir(zoo)) if zoo and os.path.isdir(zoo) else []:
        manifest = os.path.join(zoo, zoo_name, "manifest.json")
        if not os.path.isfile(manifest):
            continue
        with open(manifest) as handle:
            models = [entry["name"] for entry in json.load(handle)["models"]]
        out_dir = os.path.join(work, "latency", zoo_name)
        if not os.path.isdir(out_dir):
            os.makedirs(out_dir)
        for name in models:
            result = run.job("latency {}:{}".format(zoo_name, name),
                             ["-m", "benchmarks.jobs", "latency", "--zoo-dir", os.path.join(zoo, zoo_name),
                              "--name", name, "--out-dir", out_dir])
            if result.code != 0:
                lines.append("| {}:{} | (failed: {}) | | | | | |".format(
                    zoo_name, name, result.log.strip().splitlines()[-1][:80] if result.log.strip() else "?"))
                continue
            inside = result.inside
            add("{}:{}".format(zoo_name, name), "{} -> {}".format(inside["nodes_frozen"], inside["nodes_optimized"]),
                inside["frozen"], inside["optimized"])
    return lines


def _chain_nodes(requested):
    """How many nodes models.chain_graph_def writes for `requested`: 6 per block + 2, rounded up."""
    return 6 * max(1, -(-(requested - 2) // 6)) + 2


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", default=sys.executable, help="interpreter (with TF) that runs every job")
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--keep", action="store_true", help="keep the workdir (models are rebuilt otherwise)")
    parser.add_argument("--only", default="freeze,optimize,export,latency")
    parser.add_argument("--export-layers", type=int, default=8, help="MLP layers for export/convert (8: 0.54 GB)")
    parser.add_argument("--layers", type=int, default=16)
    parser.add_argument("--width", type=int, default=4096)
    parser.add_argument("--chain-nodes", type=int, default=120002)
    parser.add_argument("--big-nodes", type=int, default=1000002)
    parser.add_argument("--zoo", default=os.environ.get("MIGRATE_ZOO_ROOT"), help="zoo root for latency")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    only = set(args.only.split(","))
    work = args.workdir or tempfile.mkdtemp(prefix="migrate-bench-", dir="/tmp")
    if not os.path.isdir(work):
        os.makedirs(work)
    run = Runner(args.python, work, args.repeat, args.verbose)
    version = subprocess.check_output(
        [args.python, "-c", "import os; os.environ['TF_CPP_MIN_LOG_LEVEL']='3'; import sys, tensorflow as tf; "
                            "print('Python %d.%d, TF %s' % (sys.version_info[0], sys.version_info[1], "
                            "tf.__version__))"], env=run.env, stderr=subprocess.DEVNULL).decode().strip()
    lines = ["## Performance ({}; {} CPU cores, {:.0f} GB RAM; measured {})".format(
        version, os.cpu_count(), os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2.0 ** 30,
        time.strftime("%Y-%m-%d")), ""]
    try:
        tf_import = None
        frozen_mlp = os.path.join(work, "frozen.pb")
        if "freeze" in only:
            section, frozen_mlp, tf_import = freeze_section(run, work, args.layers, args.width)
            lines += section
        chain = os.path.join(work, "chain.pb")
        big = os.path.join(work, "chain_big.pb")
        if "optimize" in only:
            if tf_import is None:
                tf_import = run.job("import tensorflow (nothing else)", ["-m", "benchmarks.jobs", "tf-import"])
            if not os.path.exists(chain):
                run.build(["chain", chain, "--nodes", str(args.chain_nodes)])
            if not os.path.exists(big):
                run.build(["chain", big, "--nodes", str(args.big_nodes)])
            graphs = []
            if os.path.exists(frozen_mlp):
                graphs.append(("{:.2f} GB frozen MLP (migrate's frozen graph)".format(
                    os.path.getsize(frozen_mlp) / 1e9), frozen_mlp, "x", "output", "mlp_optimized.pb"))
            for path, requested, keep_as in ((chain, args.chain_nodes, "chain_optimized.pb"),
                                             (big, args.big_nodes, None)):
                title = "{:,}-node frozen graph of tiny tensors".format(_chain_nodes(requested))
                graphs.append((title, path, "x", "output", keep_as))
            lines += optimize_section(run, work, graphs, tf_import)
        if "export" in only:
            lines += export_section(run, work, args.export_layers, args.width, tf_import)
        if "latency" in only:
            lines += latency_section(run, work, args.zoo, [
                ("MLP {}x{}".format(args.layers, args.width), frozen_mlp, os.path.join(work, "mlp_optimized.pb"),
                 "x", "output", str(args.width)),
                ("{:,}-node chain".format(_chain_nodes(args.chain_nodes)), chain,
                 os.path.join(work, "chain_optimized.pb"), "x", "output", "4")])
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    sys.stdout.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
