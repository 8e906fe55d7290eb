"""`migrate batch`: every model under a folder, each converted by `python -m migrate convert` in its own process.

Discovery asks artifacts.detect what each directory is (one artifact per model: a checkpoint directory, an
Estimator model_dir, a SavedModel, a TF Serving base directory of numbered versions, a session bundle), and takes
every graph file (.pb/.pbtxt/.graphdef) and lone .meta in a directory that is no model itself as a model of its
own. A crash, an out-of-memory kill or a hang of one conversion never stops the batch: each runs in its own
process group, killed past --timeout. The summary (summary.json, summary.csv, summary.txt) reads each model's
report.json.
"""
import csv
import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import time

from migrate import artifacts, io
from migrate import model as m
from migrate.artifacts.parsing import GRAPH_SUFFIXES
from migrate.errors import BadInput

# Status of one model, and the exit code of `convert` that gives it.
CONVERTED = "converted"
RESUMED = "converted earlier"  # --resume found its complete output
MISMATCH = "verification failed"
BAD_INPUT = "bad input"
NO_TRT = "TensorRT unavailable"
NOT_CHECKED = "nothing checked"
TIMED_OUT = "timed out"
CRASHED = "crashed"
INTERNAL = "internal error"
INTERRUPTED = "interrupted"
_BY_EXIT = {0: CONVERTED, 1: MISMATCH, 2: BAD_INPUT, 3: NO_TRT, 4: NOT_CHECKED, 70: INTERNAL, 130: INTERRUPTED,
            143: INTERRUPTED}
# The batch's exit code: 2 when any model was bad input (a deadline passed counts, as convert's own run deadline
# does), else 1 when any other failed (verification, nothing checked, crash, internal error), else 0.
BAD_INPUT_STATUSES = (BAD_INPUT, NO_TRT, TIMED_OUT)
OK_STATUSES = (CONVERTED, RESUMED)

SUMMARY_FIELDS = ("model", "kind", "written_by_tf", "outputs", "how_outputs", "nodes_frozen", "nodes_optimized",
                  "max_abs_err", "tf_trt", "tf_trt_plan", "status", "reason", "seconds", "output", "log")
NOT_PLANNED = "-"  # the plan column of a model TF-TRT was not planned for (--no-trt, engines built, failed)
KILL_GRACE = 5.0  # seconds between SIGTERM (convert cleans up and exits 143) and SIGKILL

# ------------------------------------------------------------------------------------------ discovery

class Found(object):
    """One model under the batch's DIR: path, path relative to DIR, kind as artifacts.detect says."""

    def __init__(self, path, relative, kind):
        self.path = path
        self.relative = relative
        self.kind = kind
        self.out = None  # relative output directory, set by plan_outputs


_WHOLE = (m.SAVED_MODEL, m.SESSION_BUNDLE)  # directories that are one model through and through
_LOOSE_SUFFIXES = GRAPH_SUFFIXES + (".meta",)


def discover(root):
    """Every model under `root`, one per model (sorted by relative path)."""
    found = []
    for directory, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        relative = os.path.relpath(directory, root)
        try:
            kind, resolved = artifacts.detect(directory)
        except BadInput:
            kind, resolved = None, None
        inside = os.path.relpath(resolved, directory).split(os.sep)[0] if kind else ""
        serving_base = inside.isdigit()  # TF Serving: numbered versions of one model, the newest converted
        if kind in _WHOLE or kind == m.CHECKPOINT or serving_base:
            found.append(Found(directory, os.path.basename(os.path.abspath(root)) if relative == "." else relative,
                               kind))
            if kind in _WHOLE or serving_base:
                dirs[:] = []  # variables/, assets/, version folders: parts of this model
            continue  # a checkpoint directory's files are its own; subfolders (an Estimator's export/) are not
        for name in sorted(files):
            if name.endswith(_LOOSE_SUFFIXES) and not name.startswith("."):
                path = os.path.join(directory, name)
                found.append(Found(path, os.path.normpath(os.path.join(relative, name)), _kind(path)))
    return sorted(found, key=lambda item: item.relative)


def _kind(path):
    try:
        return artifacts.detect(path)[0]
    except BadInput:
        return None  # convert says why, in the summary


def plan_outputs(found):
    """Give each model its output directory relative to OUT_DIR: its relative path (a file without its suffix;
    the model that is DIR itself is named as DIR); a model whose output would hold another's gets <path>/_model."""
    outs = {}
    for item in found:
        out = item.relative
        if os.path.isfile(item.path):
            stem = os.path.splitext(out)[0]
            out = stem if not any(other is not item and (other.relative == stem or other.relative.startswith(
                stem + os.sep)) for other in found) else out.replace(".", "_")
        outs[item] = out
    taken = set(outs.values())
    for item, out in outs.items():
        nested = any(other != out and other.startswith(out + os.sep) for other in taken)
        item.out = os.path.join(out, "_model") if nested else out
    return found


def check_dirs(root, out_root, resume, force):
    """Bad input of the batch itself, before any model runs: one line, exit 2."""
    if root.startswith("-"):
        raise BadInput("DIR is missing: '{}' was taken for it".format(root), "DIR",
                       "put convert flags after DIR: migrate batch DIR -o OUT_DIR {}".format(root))
    if not os.path.exists(root):
        raise BadInput("no such directory", root, "check the path")
    if not os.path.isdir(root):
        raise BadInput("not a directory (batch converts every model under a folder)", root,
                       "use `migrate convert` for one model, or pass its folder")
    real_root, real_out = os.path.realpath(root), os.path.realpath(out_root)
    if real_out == real_root or real_out.startswith(real_root.rstrip(os.sep) + os.sep):
        raise BadInput("OUT_DIR is inside DIR (its outputs would be found as models)", out_root,
                       "choose an OUT_DIR outside " + root)
    if real_root.startswith(real_out.rstrip(os.sep) + os.sep):
        raise BadInput("DIR is inside OUT_DIR", out_root, "choose an OUT_DIR that does not hold the models")
    if os.path.lexists(out_root) and not os.path.isdir(out_root):
        raise BadInput("OUT_DIR is a file, not a directory", out_root, "name a new directory")
    if os.path.isdir(out_root) and os.listdir(out_root) and not (resume or force):
        raise BadInput("OUT_DIR exists and is not empty", out_root,
                       "pass --resume to go on with a batch, --force to redo it, or choose a new directory")
    parent = os.path.dirname(os.path.abspath(out_root))
    if not os.path.isdir(parent):
        raise BadInput("parent directory of OUT_DIR does not exist", parent, "create it first")


# ------------------------------------------------------------------------------------------ one model

def complete_output(directory):
    """The report.json of a finished conversion in `directory` (marker and report present), else None."""
    report = os.path.join(directory, "report.json")
    if not (os.path.isfile(os.path.join(directory, io.MARKER)) and os.path.isfile(report)):
        return None
    try:
        with open(report) as handle:
            return json.load(handle)
    except (IOError, OSError, ValueError):
        return None


def row_from_report(row, report):
    """Fill a summary row from a convert report.json."""
    source, steps = report.get("source") or {}, report.get("steps") or {}
    freeze = steps.get("freeze") or {}
    row["kind"] = source.get("kind") or row["kind"]
    row["written_by_tf"] = source.get("written_by_tf")
    row["outputs"] = freeze.get("outputs") or (steps.get("optimize") or {}).get("outputs") or []
    row["how_outputs"] = freeze.get("how_outputs")
    nodes = report.get("nodes") or {}
    row["nodes_frozen"], row["nodes_optimized"] = nodes.get("frozen"), nodes.get("optimized")
    errors = [r.get("max_abs_err") for rows in (steps.get("verify") or {}).values() for r in rows
              if r.get("max_abs_err") is not None]
    row["max_abs_err"] = max(errors) if errors else None
    row["tf_trt"] = trt_line(report.get("tf_trt"))
    row["tf_trt_plan"] = plan_line(report.get("tf_trt_plan"))
    return row


def plan_line(plan):
    """What TF-TRT would build (planning.engines_line of the report's tf_trt_plan), or NOT_PLANNED."""
    if not isinstance(plan, dict):
        return NOT_PLANNED
    from migrate import planning
    return "{}: {}".format(plan.get("tf_trt"), planning.engines_line(plan))


def trt_line(trt):
    if not isinstance(trt, dict):
        return trt
    return "{} TRTEngineOp(s){}: {}".format(trt.get("engines"), "" if trt.get("attempted", True) else
                                            ", not attempted", trt.get("reason"))


def error_line(log_path):
    """The one-line reason from a convert log: its last `migrate: error:` / `internal error` line."""
    try:
        with open(log_path, errors="replace") as handle:
            lines = [line.strip() for line in handle if line.startswith("migrate: ")]
    except (IOError, OSError):
        return ""
    if not lines:
        return ""
    line = lines[-1][len("migrate: "):]
    return line[len("error: "):] if line.startswith("error: ") else line


def _new_row(item):
    row = dict((field, None) for field in SUMMARY_FIELDS)
    row.update(model=item.relative, kind=item.kind, outputs=[], output=item.out, tf_trt_plan=NOT_PLANNED)
    return row


class Job(object):
    def __init__(self, item, out_root, flags, env):
        self.item = item
        self.out_dir = os.path.join(out_root, item.out)
        self.log = self.out_dir.rstrip(os.sep) + ".log"
        self.row = _new_row(item)
        self.row["log"] = os.path.relpath(self.log, out_root)
        parent = os.path.dirname(os.path.abspath(self.out_dir))
        if not os.path.isdir(parent):
            os.makedirs(parent)
        command = [sys.executable, "-m", "migrate", "convert", item.path, self.out_dir] + list(flags)
        self.started = time.time()
        self.killed = None
        with open(self.log, "w") as log:
            log.write("$ " + " ".join(command) + "\n")
            log.flush()
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env,
                                            start_new_session=True)

    def kill(self, why, grace=KILL_GRACE):
        """End the conversion's whole process group: SIGTERM (convert removes its temp files, exits 143),
        SIGKILL after `grace` seconds."""
        self.killed = self.killed or why
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(self.process.pid, sig)
            except OSError:
                pass
            try:
                self.process.wait(wait)
                return
            except subprocess.TimeoutExpired:
                continue

    def finish(self):
        code = self.process.returncode
        row = self.row
        row["seconds"] = round(time.time() - self.started, 2)
        if self.killed or (code is not None and code < 0):  # SIGKILL leaves convert's temp dir behind:
            # io.atomic_dir's mkdtemp(prefix=".<name>.", suffix=".tmp") beside the output (8 random characters)
            for temp in glob.glob(os.path.join(os.path.dirname(os.path.abspath(self.out_dir)), "." + glob.escape(
                    os.path.basename(self.out_dir)) + "." + "[a-z0-9_]" * 8 + ".tmp")):
                shutil.rmtree(temp, ignore_errors=True)
        if self.killed:
            row["status"], row["reason"] = self.killed
        elif code is not None and code < 0:
            name = _signal_name(-code)
            row["status"] = CRASHED
            row["reason"] = "killed by {}{}".format(name, " (out of memory? the kernel's OOM killer sends it)" if
                                                    -code == signal.SIGKILL else "")
        else:
            row["status"] = _BY_EXIT.get(code, INTERNAL)
            row["reason"] = error_line(self.log) or ("exit code {}".format(code) if code else "")
        report = complete_output(self.out_dir) if row["status"] == CONVERTED else None
        if report is not None:
            row_from_report(row, report)
        elif row["status"] == CONVERTED:
            row["status"], row["reason"] = INTERNAL, "convert exited 0 but wrote no report.json"
        return row


def _signal_name(number):
    try:
        return signal.Signals(number).name
    except ValueError:
        return "signal {}".format(number)


def child_env():
    """The environment of each conversion: this one, with the directory holding this `migrate` first on
    PYTHONPATH (the children run the same code as the batch)."""
    env = dict(os.environ)
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if os.path.basename(here) not in ("site-packages", "dist-packages"):
        env["PYTHONPATH"] = os.pathsep.join([here] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    return env


# ------------------------------------------------------------------------------------------ the batch

def run(root, out_root, flags=(), jobs=1, timeout=None, resume=False, force=False, on_total=None, on_start=None,
        on_done=None):
    """Convert every model under `root` into `out_root`; returns the summary dict (also written there).
    on_total(count) is told how many models were found, on_start(row) / on_done(row) as each starts / ends."""
    started = time.time()
    check_dirs(root, out_root, resume, force)
    found = plan_outputs(discover(root))
    if not found:
        raise BadInput("no TF model found under it (no checkpoint, SavedModel, session bundle or graph file)",
                       root, "pass the folder that holds the models")
    if not os.path.isdir(out_root):
        os.makedirs(out_root)
    if on_total:
        on_total(len(found))
    rows, pending, running = {}, [], []
    for item in found:
        report = complete_output(os.path.join(out_root, item.out)) if resume else None
        if report is not None:
            row = row_from_report(_new_row(item), report)
            row.update(status=RESUMED, reason="output complete: not converted again (--resume)")
            rows[item.relative] = row
            if on_done:
                on_done(row)
        else:
            pending.append(item)
    env = child_env()
    if force:
        flags = list(flags) + ["--force"]
    previous = _terminate_unwinds()
    try:
        while pending or running:
            while pending and len(running) < max(1, jobs):
                job = Job(pending.pop(0), out_root, flags, env)
                running.append(job)
                if on_start:
                    on_start(job.row)
            time.sleep(0.05)
            for job in list(running):
                if job.process.poll() is None and timeout and time.time() - job.started > timeout:
                    job.kill((TIMED_OUT, "still running after --timeout {:g} s: killed".format(timeout)))
                if job.process.poll() is not None:
                    running.remove(job)
                    rows[job.item.relative] = job.finish()
                    if on_done:
                        on_done(rows[job.item.relative])
    except BaseException:  # Ctrl-C / SIGTERM: no conversion outlives the batch; the summary says what ran
        for job in running:
            job.kill((INTERRUPTED, "the batch was interrupted"), grace=2.0)
            rows[job.item.relative] = job.finish()
        for item in pending:
            rows[item.relative] = dict(_new_row(item), status=INTERRUPTED, reason="not started: batch interrupted")
        write_summary(summarize(root, out_root, found, rows, started, flags), out_root)
        raise
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    summary = summarize(root, out_root, found, rows, started, flags)
    write_summary(summary, out_root)
    return summary


def _terminate_unwinds():
    """SIGTERM to the batch unwinds like Ctrl-C (io.Terminated: exit 143), so that no conversion outlives it.
    Returns the handler it replaced (None off the main thread)."""
    def unwind(signum, frame):
        raise io.Terminated("terminated (signal {})".format(signum))
    try:
        return signal.signal(signal.SIGTERM, unwind)
    except ValueError:
        return None


def summarize(root, out_root, found, rows, started, flags=()):
    models = [rows[item.relative] for item in found]
    counts = {}
    for row in models:
        counts[row["status"]] = counts.get(row["status"], 0) + 1
    if any(row["status"] in BAD_INPUT_STATUSES for row in models):
        code = 2
    elif any(row["status"] not in OK_STATUSES for row in models):
        code = 1
    else:
        code = 0
    return {"dir": os.path.abspath(root), "out_dir": os.path.abspath(out_root), "convert_flags": list(flags),
            "models": models, "counts": counts, "exit_code": code, "seconds": round(time.time() - started, 2)}


def _cell(value):
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    if isinstance(value, float):
        return "{:.3g}".format(value)
    return str(value)


def table(summary):
    """The text table: one line per model, then the counts."""
    header = ("model", "kind", "TF", "outputs (how)", "nodes", "max err", "TF-TRT", "TF-TRT plan", "status")
    lines = []
    for row in summary["models"]:
        how = row["how_outputs"]
        outputs = _cell(row["outputs"]) + (" ({})".format(how) if how else "")
        nodes = "{} -> {}".format(row["nodes_frozen"], row["nodes_optimized"]) if row["nodes_frozen"] is not None \
            else ""
        trt = _cell(row["tf_trt"])
        lines.append((row["model"], _cell(row["kind"]), _cell(row["written_by_tf"]), outputs, nodes,
                      _cell(row["max_abs_err"]), trt[:40] + ("..." if len(trt) > 40 else ""),
                      _cell(row["tf_trt_plan"]),
                      row["status"] + (": " + row["reason"] if row["reason"] and row["status"] not in OK_STATUSES
                                       else "")))
    widths = [max(len(str(line[i])) for line in lines + [header]) for i in range(len(header) - 1)]
    text = []
    for line in [header] + lines:
        text.append("  ".join(str(cell).ljust(width) for cell, width in zip(line, widths)) + "  " + line[-1])
    text.append("{} model(s): {} (exit {}, {:.1f} s)".format(len(summary["models"]), ", ".join(
        "{} {}".format(n, status) for status, n in sorted(summary["counts"].items())), summary["exit_code"],
        summary["seconds"]))
    return "\n".join(text)


def write_summary(summary, out_root):
    from migrate import report
    report.write_json(summary, os.path.join(out_root, "summary.json"))
    with io.atomic_file(os.path.join(out_root, "summary.csv")) as temp:
        with open(temp, "w") as handle:
            writer = csv.writer(handle)
            writer.writerow(SUMMARY_FIELDS)
            for row in summary["models"]:
                writer.writerow([_cell(row[field]) if field != "max_abs_err" or row[field] is None else
                                 repr(row[field]) for field in SUMMARY_FIELDS])
    with io.atomic_file(os.path.join(out_root, "summary.txt")) as temp:
        with open(temp, "w") as handle:
            handle.write(table(summary) + "\n")
