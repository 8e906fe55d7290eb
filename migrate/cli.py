"""The `migrate` command line: parse flags, call the library, print. No graph logic here."""
import json
import sys
import traceback

import click

from migrate import __version__, cli_options as opts
from migrate.calibration.cache import DEFAULT_TRT_VERSION
from migrate.errors import EXIT_BAD_INPUT, EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_TERMINATED, MigrateError, first_line


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="migrate")
@click.option("--debug", is_flag=True, help="Show full tracebacks.")
@click.pass_context
def cli(ctx, debug):
    """Carry legacy TensorFlow 1 models into fast, servable form.

    Example: migrate inspect path/to/model_dir
    """
    ctx.obj = {"debug": debug}


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def env(as_json):
    """Python, TensorFlow, TF-TRT API generation, TensorRT state and GPUs.

    Example: migrate env --json
    """
    from migrate import tfcompat
    info = tfcompat.describe()
    if as_json:
        click.echo(json.dumps(info, indent=2, sort_keys=True))
        return
    for key in ("python", "tensorflow", "tensorflow_file", "tf1_api", "tf_trt_generation", "tf_trt_module",
                "tf_trt_module_file", "tf_trt_import_error", "tensorrt_built_in", "tensorrt_linked_version",
                "tensorrt_library", "tensorrt_usable", "tensorrt_reason", "gpus", "estimator", "onnx"):
        click.echo("{:24} {}".format(key, info[key]))


@cli.command()
@click.argument("path")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--tag", default=None, help="SavedModel tag set, comma-separated (default: serve).")
@click.option("--checkpoint", default=None, help="Checkpoint prefix for a graph file holding variables.")
def inspect(path, as_json, tag, checkpoint):
    """What an artifact is: kind, signatures, inputs, outputs, weights, ops to care about.

    Example: migrate inspect model_dir/model.ckpt-1000
    """
    from migrate import inspect_model
    report = inspect_model.inspect(path, tag=tag, checkpoint=checkpoint)
    click.echo(json.dumps(report, indent=2, sort_keys=True) if as_json else inspect_model.to_text(report))


def _split(values):
    return [v.strip() for value in values or () for v in value.split(",") if v.strip()]


def _print_rows(rows, where=None):
    from migrate import verify as verify_mod
    click.echo(verify_mod.format_rows(rows))
    verify_mod.require_ok(rows, where, "outputs differ beyond tolerance: {}; nothing written",
                          "inspect the per-output errors above; loosen --rtol/--atol only if expected")
    verify_mod.require_checked(rows, where, writes=False)  # the verbs that write refused before writing


@cli.command()
@click.argument("source")
@click.option("-o", "--output", "output", default=None, help="Frozen graph path (.pb binary, .pbtxt text).")
@click.option("--outputs", multiple=True, help="Output nodes or tensors (y or y:0), comma-separated.")
@opts.source_options("SavedModel signature whose outputs to keep.")
@click.option("--allow", multiple=True, help="Only freeze these variables (comma-separated).")
@click.option("--deny", multiple=True, help="Never freeze these variables (comma-separated).")
@click.option("--keep-devices", is_flag=True, help="Keep device placements (cleared by default).")
@click.option("--no-verify", is_flag=True, help="Skip running the original and the frozen graph.")
@click.option("--force", is_flag=True, help="Overwrite an existing output.")
@opts.model_options
@opts.verification_options
@opts.output_options
def freeze(source, output, outputs, checkpoint, tag, signature, allow, deny, keep_devices, no_verify,
           force, set_values, input_at, checks, allow_unsafe):
    """Turn a checkpoint / SavedModel / session bundle into a frozen graph and verify it.

    Example: migrate freeze model_dir -o frozen.pb --outputs probabilities
    """
    import os
    from migrate import api
    output = output or os.path.join(os.getcwd(), "frozen.pb")
    result = api.freeze(source, output, outputs=_split(outputs), checkpoint=checkpoint, tag=tag,
                        signature=signature, set_values=list(set_values), allow=_split(allow), deny=_split(deny),
                        clear_devices=not keep_devices, options=checks._replace(verify=not no_verify), force=force,
                        allow_unsafe=allow_unsafe, input_at=_split(input_at), progress=click.echo)
    if result.comparisons is not None:
        click.echo("frozen graph vs original, same inputs:")
        _print_rows(result.comparisons, source)
    click.echo("wrote {} ({} nodes, outputs {})".format(output, result.nodes, ", ".join(result.outputs)))
    from migrate import report
    return {"source": source, "output": output, "nodes": result.nodes, "outputs": result.outputs,
            "verification": report.comparisons_dict(result.comparisons)}


@cli.command()
@click.argument("source")
@click.option("-o", "--output", "output", required=True, help="Optimized graph path (.pb / .pbtxt).")
@click.option("--outputs", multiple=True, help="Output nodes or tensors, comma-separated.")
@click.option("--passes", default=None, help="Comma-separated pass names (default: all, in the standard order).")
@opts.shape_options
@opts.trt_options
@click.option("--no-verify", is_flag=True, help="Skip running the input and the optimized graph.")
@opts.report_option
@click.option("--force", is_flag=True, help="Overwrite an existing output.")
@opts.model_options
@opts.verification_options
@opts.output_options
def optimize(source, output, outputs, passes, shapes, trt, no_verify, report_path, force, set_values, input_at,
             checks, allow_unsafe):
    """Graph surgery for inference: strip debug ops, identities, fold constants and batch norms, static shapes.

    Example: migrate optimize frozen.pb -o optimized.pb --static --max-batch 1
    """
    from migrate import api as api_mod
    result = api_mod.optimize(source, output, passes=passes, outputs=_split(outputs), trt=None,
                              options=(shapes, checks._replace(verify=not no_verify)) + ((trt,) if trt else ()),
                              force=force, allow_unsafe=allow_unsafe, input_at=_split(input_at),
                              set_values=list(set_values), progress=click.echo)
    from migrate import report
    summary = report.optimize_report(source, output, result)
    if report_path:
        report.write_json(summary, report_path)
    if result.comparisons is not None:
        click.echo("optimized vs input, same inputs:")
        _print_rows(result.comparisons, source)
    click.echo("wrote {} ({} -> {} nodes)".format(output, result.nodes_before, result.nodes))
    _pass_notes(summary["passes"])
    return summary


@cli.command()
@click.argument("source")
@click.option("--tf-trt", "tf_trt", default=None,
              help="TF-TRT version to plan for: a TF version (1.7, 1.13, 1.15, 2.15) or a generation name "
                   "(default: the installed TF's).")
@opts.plan_trt_options
@opts.shape_options
@click.option("--deny-ops", "deny_ops", multiple=True, help="Ops TF-TRT must not convert, comma-separated.")
@click.option("--passes", default=None,
              help="Passes run first, as optimize does (default: optimize's; 'none': plan the graph as it is).")
@click.option("--outputs", multiple=True, help="Output nodes or tensors, comma-separated.")
@opts.source_options("SavedModel signature whose outputs to plan for.")
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON (every node, segment, blocker).")
@click.option("--dot", "dot_path", default=None, help="Also write a graphviz DOT view, segments coloured.")
@click.option("--force", is_flag=True, help="Overwrite an existing --dot file.")
@click.option("--allow-unsafe-ops", "allow_unsafe", is_flag=True,
              help="Run graphs whose ops read/write files, use the network or run Python.")
@opts.model_options
def plan(source, tf_trt, trt, shapes, deny_ops, passes, outputs, checkpoint, tag, signature, as_json, dot_path,
         force, allow_unsafe, set_values, input_at):
    """What TF-TRT would build: convertible nodes, engine segments, coverage, blockers. No GPU needed.

    Example: migrate plan frozen.pb --tf-trt 1.15 --static --max-batch 8
    """
    from migrate import api as api_mod
    from migrate import io, planning
    if dot_path:  # refused before any work, as every output
        io.check_output_path(dot_path, [source, checkpoint], force, directory=False)
    result = api_mod.plan(
        source, tf_trt=tf_trt, options=(shapes, trt), deny_ops=_split(deny_ops), passes=passes,
        outputs=_split(outputs), tag=tag, signature=signature, checkpoint=checkpoint, allow_unsafe=allow_unsafe,
        input_at=_split(input_at), set_values=list(set_values), progress=(lambda line: None) if as_json else
        click.echo)
    if dot_path:
        with io.atomic_file(dot_path, replace=force) as temp:
            with open(temp, "w") as handle:
                handle.write(planning.to_dot(result.plan, result.graph_def) + "\n")
    click.echo(json.dumps(result.plan, indent=2) if as_json else planning.to_text(result.plan))


@cli.command()
@click.argument("source")
@click.option("-o", "--output", "output", required=True, help="SavedModel directory to write.")
@click.option("--format", "fmt", type=click.Choice(["tf2", "tf1"]), default=None,
              help="tf2: object-graph SavedModel from the frozen graph (default on TF 2.x); tf1: graph + "
                   "variables as they are (default on TF 1.x; TF 2.x loads it too).")
@click.option("--outputs", multiple=True, help="Outputs for the signature when the source has none.")
@opts.source_options("Export only this signature.")
@click.option("--no-verify", is_flag=True, help="Skip reloading and comparing the SavedModel.")
@click.option("--force", is_flag=True, help="Replace an existing output directory.")
@opts.model_options
@opts.verification_options
@opts.output_options
def export(source, output, fmt, outputs, checkpoint, tag, signature, no_verify, force, set_values, input_at,
           checks, allow_unsafe):
    """Export to a SavedModel TF 2.x and TF Serving load; every signature is reloaded and compared.

    Example: migrate export frozen.pb -o saved_model/1
    """
    from migrate import api
    result = api.export(source, output, fmt=fmt, outputs=_split(outputs), tag=tag, signature=signature,
                        checkpoint=checkpoint, options=checks._replace(verify=not no_verify), force=force,
                        allow_unsafe=allow_unsafe, set_values=list(set_values), input_at=_split(input_at),
                        progress=click.echo)
    click.echo("wrote {} ({} SavedModel; signatures {})".format(output, result.format,
                                                               ", ".join(result.signatures)))
    return {"source": source, "output": output, "format": result.format, "signatures": result.signatures}


@cli.command(name="verify")
@click.argument("a")
@click.argument("b")
@click.option("--outputs", multiple=True, help="Outputs to compare (default: A's signature or inferred).")
@click.option("--signature", default=None, help="Signature to use for SavedModels (default: serving_default).")
@opts.model_options
@opts.verification_options
@opts.output_options
def verify_command(a, b, outputs, signature, set_values, input_at, checks, allow_unsafe):
    """Run two artifacts (any kinds) on the same inputs and compare outputs matched by name; exit 1 on mismatch.

    Example: migrate verify model_dir frozen.pb --inputs-npz inputs.npz
    """
    from migrate import api
    rows, notes = api.verify_artifacts(a, b, outputs=_split(outputs), signature=signature, options=checks,
                                       allow_unsafe=allow_unsafe, set_values=list(set_values),
                                       input_at=_split(input_at))
    click.echo("A: {}\nB: {}".format(a, b))
    for note in notes:
        click.echo("  note: " + note)
    _print_rows(rows, b)
    checked = sum(1 for row in rows if row.checked)
    click.echo("outputs match (rtol={}, atol={}){}".format(checks.rtol, checks.atol, "" if checked == len(rows) else
                                                           "; {} of {} output(s) checked".format(checked, len(rows))))
    from migrate import report
    return {"a": a, "b": b, "notes": notes, "verification": report.comparisons_dict(rows)}


@cli.command()
@click.argument("source")
@click.argument("out_dir")
@click.option("--outputs", multiple=True, help="Output nodes or tensors (default: signature or inferred).")
@opts.source_options("Only this signature of a SavedModel source.")
@click.option("--passes", default=None, help="Comma-separated pass names (default: all).")
@opts.shape_options
@opts.trt_options
@click.option("--format", "fmt", type=click.Choice(["tf2", "tf1"]), default=None, help="SavedModel format.")
@opts.report_option
@click.option("--onnx", "with_onnx", is_flag=True, help="Also OUT_DIR/model.onnx (tf2onnx; onnxruntime-checked).")
@click.option("--opset", type=click.IntRange(min=1), default=None, help="ONNX opset for --onnx (default 13).")
@click.option("--force", is_flag=True, help="Replace an existing OUT_DIR.")
@opts.model_options
@opts.verification_options
@opts.output_options
def convert(source, out_dir, outputs, checkpoint, tag, signature, passes, shapes, trt, fmt, report_path, with_onnx,
            opset, force, set_values, input_at, checks, allow_unsafe):
    """freeze -> optimize -> export -> verify in one go; writes OUT_DIR with report.json.

    Example: migrate convert model_dir out/ --static --max-batch 1
    """
    from migrate import api, report
    summary = api.convert(source, out_dir, outputs=_split(outputs), tag=tag, signature=signature,
                          checkpoint=checkpoint, passes=passes, fmt=fmt, trt=None,
                          options=(shapes, checks) + ((trt,) if trt else ()), force=force,
                          allow_unsafe=allow_unsafe, set_values=list(set_values), input_at=_split(input_at),
                          progress=click.echo, onnx_opset=(opset or _default_opset()) if with_onnx else None)
    if report_path:  # the report.json written into OUT_DIR, also here
        report.write_json(summary.report, report_path)
    click.echo(report.convert_text(summary.report))
    _pass_notes(summary.report["steps"]["optimize"]["passes"])
    return summary.report


@cli.command(name="batch", context_settings={"ignore_unknown_options": True})
@click.argument("directory", metavar="DIR")
@click.option("-o", "--output", "out_dir", required=True, metavar="OUT_DIR",
              help="Folder to write: OUT_DIR/<model's path>/ + summary.")
@click.option("-j", "--jobs", type=opts.POSITIVE, default=1, show_default=True, help="Conversions at a time.")
@click.option("--timeout", "model_timeout", type=click.FloatRange(min=0), default=0, show_default=True,
              help="Seconds one model's conversion may take before it is killed (0 = no limit).")
@click.option("--run-timeout", type=click.FloatRange(min=0), default=None,
              help="convert's --timeout: seconds any one session run may take (default 300).")
@click.option("--resume", is_flag=True, help="Skip models whose output in OUT_DIR is complete; redo the rest.")
@click.option("--force", is_flag=True, help="Redo every model, replacing earlier outputs in OUT_DIR.")
@opts.output_options
@click.argument("convert_flags", nargs=-1, type=click.UNPROCESSED, metavar="[CONVERT FLAGS]...")
def batch_command(directory, out_dir, jobs, model_timeout, run_timeout, resume, force, convert_flags):
    """Convert every model under DIR, each in its own process (`migrate convert` flags apply to each).

    CONVERT FLAGS: any option of `migrate convert` (its option groups: see `migrate convert --help`), checked by
    convert's own parser once before any model runs, then passed to each conversion as given.

    Example: migrate batch models/ -o converted/ -j 2 --timeout 600 --no-trt
    """
    from migrate import batch as batch_mod
    flags = list(convert_flags)
    batch_mod.check_dirs(directory, out_dir, resume, force)
    convert.make_context("convert", ["DIR", "OUT_DIR"] + flags)  # a bad flag: one line now, not one per model
    if run_timeout is not None:
        flags += ["--timeout", "{:g}".format(run_timeout)]
    with opts.Progress("models") as bar:
        summary = batch_mod.run(directory, out_dir, flags, jobs=jobs, timeout=model_timeout or None, resume=resume,
                                force=force, on_total=bar.total, on_start=bar.started,
                                on_done=lambda row: bar.done(row, _model_line(row) if opts.REPORT.verbose else None))
    click.echo(batch_mod.table(summary))
    return summary


def _pass_notes(passes):
    """-v: every pass's full record (the progress table shows one line each, at most 3 notes)."""
    if not opts.REPORT.verbose:
        return
    click.echo("passes in detail:")
    for record in passes:
        changes = ["-{} {}".format(n, op) for op, n in sorted(record["removed"].items())] + [
            "+{} {}".format(n, op) for op, n in sorted(record["added"].items())]
        click.echo("  {} ({}): {} -> {} nodes{}{}".format(
            record["name"], "applied" if record["applied"] else "not applied", record["nodes_before"],
            record["nodes_after"], "; " + ", ".join(changes) if changes else "",
            "" if record["applied"] or not record["reason"] else "; " + record["reason"]))
        for note in record["notes"]:
            click.echo("    note: " + note)


def _model_line(row):
    return "{}: {}{}".format(row["model"], row["status"], ": " + row["reason"] if row.get("reason") else "")


def _default_opset():
    from migrate import tfcompat
    return tfcompat.ONNX_DEFAULT_OPSET


@cli.command(name="onnx")
@click.argument("source")
@click.option("-o", "--output", "output", required=True, help="ONNX model path to write (model.onnx).")
@click.option("--opset", type=click.IntRange(min=1), default=None, help="ONNX opset (default 13).")
@click.option("--outputs", multiple=True, help="Output nodes or tensors, comma-separated.")
@opts.source_options("SavedModel signature whose outputs to convert.")
@click.option("--passes", default=None, help="Comma-separated pass names run before tf2onnx (default: all).")
@opts.shape_options
@click.option("--calib-cache", default=None,
              help="TensorRT calibration cache (migrate calibrate): also write calibration.cache beside the "
                   "output, keyed by the ONNX tensor names.")
@click.option("--force", is_flag=True, help="Overwrite an existing output.")
@opts.model_options
@opts.verification_options
def onnx_command(source, output, opset, outputs, checkpoint, tag, signature, passes, shapes, calib_cache, force,
                 set_values, input_at, checks, allow_unsafe):
    """Verified ONNX export (tf2onnx, checked with onnxruntime against the source): the road to TensorRT.

    Example: migrate onnx model_dir -o model.onnx --static --max-batch 8
    """
    from migrate import api
    result = api.onnx(source, output, opset=opset, outputs=_split(outputs), checkpoint=checkpoint, tag=tag,
                      signature=signature, passes=passes, calib_cache=calib_cache, options=(shapes, checks),
                      force=force, allow_unsafe=allow_unsafe, set_values=list(set_values),
                      input_at=_split(input_at), progress=click.echo)
    calibration = result["calibration"]
    if calibration:
        click.echo("wrote {} ({} tensor scales{}{})".format(
            calibration["path"], calibration["kept"], "; {} renamed".format(calibration["renamed"])
            if calibration["renamed"] else "", "; {} with no ONNX tensor left out: {}".format(
                len(calibration["lost"]), ", ".join(calibration["lost"][:5])) if calibration["lost"] else ""))
    click.echo("wrote {} (opset {}; {} TF nodes -> {} ONNX nodes)".format(output, result["opset"], result["nodes"],
                                                                        result["onnx_nodes"]))


@cli.command()
@click.argument("source")
@click.option("--calib-data", required=True, help="Calibration batches: an .npz or a folder of .npz files (one "
              "batch each, keyed by input name).")
@click.option("-o", "--output", "out_dir", required=True, help="Directory to write (calibration.cache, "
              "dynamic_ranges.json, report.json).")
@click.option("--method", type=click.Choice(["entropy", "minmax", "percentile", "all"]), default="entropy",
              show_default=True, help="Range per tensor; `all` computes each, simulates each, recommends one.")
@click.option("--percentile", type=click.FloatRange(min=0, max=100), default=99.99, show_default=True,
              help="For --method percentile: the share of |x| kept inside the range.")
@click.option("--batches", type=opts.POSITIVE, default=None, help="Use only the first N calibration batches.")
@click.option("--eval-data", default=None, help="Batches for the simulated-INT8 error (default: --calib-data).")
@click.option("--trt-version", default=DEFAULT_TRT_VERSION, show_default=True,
              help="TensorRT version the cache header names (use the TensorRT that will read it).")
@click.option("--no-sensitivity", is_flag=True, help="Skip quantizing each tensor alone (one run per tensor).")
@click.option("--outputs", multiple=True, help="Output nodes or tensors, comma-separated.")
@opts.source_options("SavedModel signature whose outputs to use.")
@click.option("--force", is_flag=True, help="Replace an existing output directory.")
@opts.run_options
@opts.model_options
def calibrate(source, calib_data, out_dir, method, percentile, batches, eval_data, trt_version, no_sensitivity,
              outputs, checkpoint, tag, signature, force, allow_unsafe, set_values, input_at):
    """INT8 ranges on CPU: a TensorRT calibration cache and what INT8 would cost, before any GPU.

    Example: migrate calibrate frozen.pb --calib-data calib/ -o int8/ --method all
    """
    from migrate import api
    report = api.calibrate(source, out_dir, calib_data, method=method, percentile=percentile, batches=batches,
                           eval_data=eval_data, trt_version=trt_version, outputs=_split(outputs), tag=tag,
                           signature=signature, checkpoint=checkpoint, force=force, allow_unsafe=allow_unsafe,
                           sensitivity=not no_sensitivity, set_values=list(set_values),
                           input_at=_split(input_at), progress=click.echo).report
    for method_name, per_output in sorted(report["simulated_int8"].items()):
        for output, row in sorted(per_output.items()):
            top1 = row["top1_agreement"]
            click.echo("  {} {}: max_abs_err={:.3g} max_rel_err={:.3g} relative_mean_err={:.3g}{}".format(
                method_name, output, row["max_abs_err"], row["max_rel_err"], row["relative_mean_err"],
                "" if top1 is None else " top1_agreement={:.2%}".format(top1)))
    click.echo("wrote {} ({} tensors; recommended {}; {} warning(s))".format(
        out_dir, report["tensors"], report["recommended"]["method"], len(report["warnings"])))


@cli.command()
@click.option("--workdir", default=None, help="Keep the demo's files here (default: a temp dir, removed).")
def demo(workdir):
    """Build a zoo model with this TensorFlow and migrate it: the main job on a built-in example.

    Example: migrate demo
    """
    import shutil
    import tempfile
    from migrate import api
    keep = workdir is not None
    workdir = workdir or tempfile.mkdtemp(prefix="migrate-demo-")
    try:
        result = api.demo(workdir, progress=click.echo)
        from migrate import report
        click.echo(report.convert_text(result.summary))
        click.echo("exported SavedModel vs the outputs TF {} computed when it wrote the checkpoint:".format(
            result.golden_tf))
        _print_rows(result.golden_comparisons)
        click.echo("demo OK{}".format(": outputs in " + result.out_dir if keep else ""))
    finally:
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)


def _interrupt_code(exc):
    """130 for SIGINT (Ctrl-C), 143 for SIGTERM: the shell's 128 + signal number."""
    from migrate import io
    return EXIT_TERMINATED if isinstance(exc, io.Terminated) else EXIT_INTERRUPTED


def _click_line(exc, argv):
    """A click usage error as the one line every error gets: WHERE (the option) : WHAT (HOW TO FIX)."""
    where = None
    param = getattr(exc, "param", None)
    if param is not None:
        where = "/".join(getattr(param, "opts", None) or [param.name])
    elif getattr(exc, "param_hint", None):
        where = exc.param_hint if isinstance(exc.param_hint, str) else "/".join(exc.param_hint)
    what = exc.format_message().replace("\n", " ")
    if where and what.startswith("Invalid value for"):
        what = what.split(":", 1)[1].strip() if ":" in what else what
    command = next((arg for arg in argv if not arg.startswith("-")), None)
    fix = "see `migrate {}--help`".format(command + " " if command else "")
    return "{}{} ({})".format(where + ": " if where else "", what, fix)


def _source(argv):
    """The first path-like argument after the command (the model), for a line that must name one."""
    positional = [arg for arg in argv if not arg.startswith("-")]
    return positional[1] if len(positional) > 1 else "migrate"


def main(argv=None):
    try:
        _main(argv)
    except SystemExit as exc:
        _exit_now_if_runs_abandoned(exc.code)
        raise


def _exit_now_if_runs_abandoned(code):
    """A session run TF could not cancel still blocks a thread: TF's teardown at exit would wait for it
    forever, so the process ends here (outputs and temp files were already dealt with while unwinding)."""
    from migrate import session
    if session.ABANDONED_RUNS:
        import os
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code if isinstance(code, int) else 1)


def _main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    try:
        cli.main(args=argv, prog_name="migrate", standalone_mode=False)
    except click.exceptions.Abort as exc:
        click.echo("migrate: interrupted", err=True)
        sys.exit(_interrupt_code(exc.__cause__ or exc.__context__))
    except click.ClickException as exc:
        click.echo("migrate: error: " + _click_line(exc, argv), err=True)
        sys.exit(EXIT_BAD_INPUT)
    except MemoryError:  # a model too big for the memory this process may use; nothing was written
        if debug:
            traceback.print_exc()
        click.echo("migrate: error: {}: out of memory (MemoryError) while working on it (raise the process's "
                   "memory limit (ulimit -v) or use a machine with more memory)".format(_source(argv)), err=True)
        sys.exit(EXIT_BAD_INPUT)
    except MigrateError as exc:
        if debug:
            traceback.print_exc()
        click.echo("migrate: error: " + exc.line(), err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt as exc:
        click.echo("migrate: interrupted", err=True)
        sys.exit(_interrupt_code(exc))
    except Exception as exc:  # a bug of ours: say so in one line, full story with --debug
        if debug:
            raise
        first = first_line(exc) if str(exc).strip() else ""
        click.echo("migrate: internal error: {}: {} (rerun with --debug and report it)".format(
            type(exc).__name__, first), err=True)
        sys.exit(EXIT_INTERNAL)
    sys.exit(0)
