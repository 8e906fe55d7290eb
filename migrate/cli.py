"""The `migrate` command line: parse flags, call the library, print. No graph logic here."""
import json
import sys
import traceback

import click

from migrate import __version__
from migrate.errors import MigrateError, EXIT_BAD_INPUT


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
                "tensorrt_library", "tensorrt_usable", "tensorrt_reason", "gpus", "estimator"):
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


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    try:
        cli.main(args=argv, prog_name="migrate", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("migrate: interrupted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(EXIT_BAD_INPUT)
    except MigrateError as exc:
        if debug:
            traceback.print_exc()
        click.echo("migrate: error: " + exc.line(), err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("migrate: interrupted", err=True)
        sys.exit(130)
    except Exception as exc:  # a bug of ours: say so in one line, full story with --debug
        if debug:
            raise
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        click.echo("migrate: internal error: {}: {} (rerun with --debug and report it)".format(
            type(exc).__name__, first), err=True)
        sys.exit(70)
    sys.exit(0)
