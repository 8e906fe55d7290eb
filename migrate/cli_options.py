"""The option groups every verb shares (as Polygraphy's tools/args: one group per option family), each adding
its flags to a click command and handing the verb one record (options.ShapeOptions / TrtOptions / VerifyOptions)
or the keywords the api verbs take; and how much a verb prints (-q, -v, --json, progress bars)."""
import json
import os
import sys

import click


POSITIVE = click.IntRange(min=1)


class InputShape(click.ParamType):
    """name:d1,d2,... -> (name, [d1, d2, ...]); each dim a positive size, or -1 / ? to keep the graph's."""

    name = "name:d1,d2,..."

    def convert(self, value, param, ctx):
        if isinstance(value, tuple):
            return value
        name, _, dims = value.rpartition(":")
        try:
            parsed = [None if d.strip() in ("-1", "?") else int(d) for d in dims.split(",")] \
                if dims.strip() else []  # 'keep_prob:' is a scalar
        except ValueError:
            parsed = None
        if not name or parsed is None or any(d is not None and d < 1 for d in parsed):
            self.fail("'{}' is not name:d1,d2,... with each dim >= 1 (or -1 / ? to keep the graph's), e.g. "
                      "input:1,224,224,3, or keep_prob: for a scalar".format(value), param, ctx)
        return name.split(":")[0], parsed


def input_shapes(values):
    """[('x', [1, 224, 224, 3])] (InputShape's values) -> {'x': [1, 224, 224, 3]}."""
    return dict(values or ())


def grouped(options, build, function):
    """`function` with `options` added, their values handed over as build(**values) (a dict of keyword
    arguments, e.g. {'trt': TrtOptions}) instead of one keyword per flag."""
    import functools
    names = []
    for option in options:  # the keyword click passes each option as
        param = option(lambda: None).__click_params__[0]
        if param.expose_value:
            names.append(param.name)

    @functools.wraps(function)
    def run(**kwargs):
        values = dict((name, kwargs.pop(name)) for name in names)
        kwargs.update(build(**values))
        return function(**kwargs)
    for option in reversed(options):
        run = option(run)
    return run


def running():
    """--allow-unsafe-ops (allow_unsafe) and --timeout (set at parse time): every verb that runs a model."""
    return [
        click.option("--allow-unsafe-ops", "allow_unsafe", is_flag=True,
                     help="Run graphs whose ops read/write files, use the network or run Python."),
        click.option("--timeout", "run_timeout", type=click.FloatRange(min=0), default=None, callback=set_timeout,
                     expose_value=False, help="Seconds any one model run may take (default 300; 0 = no limit)."),
    ]


def set_timeout(ctx, param, value):
    from migrate import session
    session.set_run_timeout(value)  # every command sets it: a previous in-process call's value never lingers
    return value


def run_options(function):
    """running()'s flags alone, for a verb without verification options (calibrate)."""
    for option in reversed(running()):
        function = option(function)
    return function


def verification_options(function):
    """--inputs-npz --batch --seed --rtol --atol: one `checks` keyword (options.VerifyOptions); also
    --allow-unsafe-ops (allow_unsafe) and --timeout (set at parse time)."""
    from migrate import options as records
    return grouped([
        click.option("--inputs-npz", default=None, help="Inputs for verification (.npz keyed by tensor names)."),
        click.option("--batch", type=click.IntRange(min=1), default=1, show_default=True,
                     help="Size of unknown dims in generated inputs (>= 1)."),
        click.option("--seed", type=click.IntRange(0, 2 ** 32 - 1), default=0, show_default=True,
                     help="Seed for generated inputs."),
        click.option("--rtol", type=click.FloatRange(min=0), default=1e-5, show_default=True,
                     help="Relative tolerance (>= 0)."),
        click.option("--atol", type=click.FloatRange(min=0), default=1e-5, show_default=True,
                     help="Absolute tolerance (>= 0)."),
    ] + running(), lambda allow_unsafe, **given: {"checks": records.VerifyOptions(**given),
                                                   "allow_unsafe": allow_unsafe}, function)


def model_options(function):
    """--set and --input-at: every verb that runs a model takes them."""
    for option in reversed([
        click.option("--set", "set_values", multiple=True,
                     help="Set a switch or placeholder: name=value (is_training=false)."),
        click.option("--input-at", "input_at", multiple=True,
                     help="Feed here instead of the input pipeline (queue/iterator): TENSOR[,TENSOR]."),
    ]):
        function = option(function)
    return function


def shape_options(function):
    """--static --max-batch --input-shape: one `shapes` keyword (options.ShapeOptions)."""
    from migrate import options as records
    return grouped([
        click.option("--static", is_flag=True, help="Make every input shape fully defined (batch = --max-batch)."),
        click.option("--max-batch", type=POSITIVE, default=None, help="Batch size for --static and TF-TRT (>= 1)."),
        click.option("--input-shape", "input_shape", type=InputShape(), multiple=True,
                     help="name:1,224,224,3 for --static (name: for a scalar)."),
    ], lambda static, max_batch, input_shape: {"shapes": records.shape_options(records.ShapeOptions(
        static=static, max_batch=max_batch, input_shapes=input_shapes(input_shape)))}, function)


def trt_flags(no_trt, require_trt):
    """--require-trt asks for engines, --no-trt forbids calling TF-TRT: both at once is a contradiction."""
    if no_trt and require_trt:
        from migrate.errors import BadInput
        raise BadInput("--require-trt and --no-trt contradict each other", None,
                       "drop --no-trt to require TensorRT engines, or drop --require-trt to skip TF-TRT")


def trt_options(function):
    """The TF-TRT flags every verb that runs TF-TRT takes: one `trt` keyword (options.TrtOptions, None with
    --no-trt)."""
    from migrate import options as records

    def build(no_trt, require_trt, **given):
        trt_flags(no_trt, require_trt)
        return {"trt": None if no_trt else records.TrtOptions(require_trt=require_trt, **given)}
    return grouped([
        click.option("--no-trt", is_flag=True, help="Graph passes only; do not call TF-TRT."),
        click.option("--require-trt", is_flag=True, help="Exit 3 (and write nothing) unless TF-TRT built engines."),
        click.option("--precision", type=click.Choice(["FP32", "FP16", "INT8"]), default="FP32", show_default=True),
        click.option("--calib-data", default=None, help="INT8 calibration inputs: an .npz or a folder of .npz files."),
        click.option("--minimum-segment-size", type=POSITIVE, default=3, show_default=True),
        click.option("--max-workspace-size", type=POSITIVE, default=1 << 30, show_default=True, help="Bytes."),
        click.option("--maximum-cached-engines", type=POSITIVE, default=None),
        click.option("--dynamic", is_flag=True, help="Build engines at run time for the shapes seen (is_dynamic_op)."),
        click.option("--api", type=click.Choice(["auto", "v1", "v2"]), default="auto", show_default=True,
                     help="TF-TRT converter: auto picks by TF version."),
    ], build, function)


def plan_trt_options(function):
    """The TF-TRT flags a plan depends on (optimize's --precision --minimum-segment-size --dynamic; calibration
    data, workspace and engine-cache sizes change no segment): one `trt` keyword (options.TrtOptions)."""
    from migrate import options as records
    return grouped([
        click.option("--precision", type=click.Choice(["FP32", "FP16", "INT8"]), default="FP32", show_default=True),
        click.option("--minimum-segment-size", type=POSITIVE, default=3, show_default=True),
        click.option("--dynamic", is_flag=True, help="1.x: engines built at run time (is_dynamic_op); 2.x: "
                                                     "dynamic-shape (explicit batch) mode."),
    ], lambda **given: {"trt": records.TrtOptions(**given)}, function)


def source_options(signature_help):
    """--checkpoint --tag --signature: how the source is read (the api verbs' keywords of the same names)."""
    def decorate(function):
        for option in reversed([
            click.option("--checkpoint", default=None, help="Checkpoint prefix or dir for a graph .pb/.pbtxt."),
            click.option("--tag", default=None, help="SavedModel tag set of the source (default: serve)."),
            click.option("--signature", default=None, help=signature_help),
        ]):
            function = option(function)
        return function
    return decorate


def report_option(function):
    return click.option("--report", "report_path", default=None, help="Write the JSON report here.")(function)


class Report(object):
    """How much the running verb tells on stdout: -q nothing (errors still go to stderr), --json only the
    machine-readable result (its human lines go to stderr), -v more detail."""
    quiet = verbose = as_json = False


REPORT = Report()


def output_options(function):
    """-q, -v and --json for a verb whose callback returns its result (a JSON-ready dict or list): the human
    output is silenced (-q) or sent to stderr (--json), then the result is printed as JSON. A result carrying
    a nonzero exit_code (batch) ends the process with it."""
    import contextlib
    import functools

    @functools.wraps(function)
    def run(*args, **kwargs):
        REPORT.quiet, REPORT.verbose, REPORT.as_json = (kwargs.pop("quiet"), kwargs.pop("verbose"),
                                                        kwargs.pop("as_json"))
        with contextlib.ExitStack() as stack:
            stack.enter_context(progress_bars(not (REPORT.quiet or REPORT.as_json) and sys.stdout.isatty()))
            if REPORT.quiet or REPORT.as_json:
                sink = sys.stderr if REPORT.as_json else stack.enter_context(open(os.devnull, "w"))
                stack.enter_context(contextlib.redirect_stdout(sink))
            result = function(*args, **kwargs)
        if REPORT.as_json:
            click.echo(json.dumps(result, indent=2, sort_keys=True, default=str))
        if isinstance(result, dict) and result.get("exit_code"):
            sys.exit(result["exit_code"])
        return result
    for option in reversed([
        click.option("-q", "--quiet", is_flag=True, help="Print nothing but errors (exit code and files only)."),
        click.option("-v", "--verbose", is_flag=True,
                     help="More detail (optimize, convert: every pass in full; batch: a line per model)."),
        click.option("--json", "as_json", is_flag=True, help="Print the result as JSON on stdout (the rest on "
                                                             "stderr)."),
    ]):
        run = option(run)
    return run


BAR_MIN_UNITS = 64 << 20  # a task smaller than this (bytes of weights) ends before a bar would be seen


def progress_bars(shown):
    """While a verb runs: long library tasks (migrate.progress) draw click's progress bar on stdout when `shown`."""
    import contextlib
    from migrate import progress

    def bar(label, total):
        if total < BAR_MIN_UNITS:
            return None
        drawn = click.progressbar(length=total, label="  " + label, file=sys.stdout)
        drawn.render_progress()
        return drawn.update, drawn.render_finish

    @contextlib.contextmanager
    def listening():
        progress.set_listener(bar if shown else None)
        try:
            yield
        finally:
            progress.set_listener(None)
    return listening()


class Progress(object):
    """click's progress bar over N items on stdout; silent when stdout is no terminal, -q or --json. started(row)
    shows the item in work, done(row, line) advances (a `line` is printed above the bar)."""

    def __init__(self, noun):
        self.noun = noun
        self.silent = REPORT.quiet or REPORT.as_json or not sys.stdout.isatty()
        self.bar = None
        self.running = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.render_finish()
        return False

    def _show(self, item):
        return ", ".join(self.running[-2:]) if self.running else None

    def started(self, row):
        self.running.append(row["model"])
        if self.bar is not None:
            self.bar.update(0, row["model"])

    def total(self, count):
        if not self.silent and self.bar is None:
            self.bar = click.progressbar(length=count, label=self.noun, item_show_func=self._show, file=sys.stdout)
            self.bar.render_progress()

    def done(self, row, line=None):
        if row["model"] in self.running:
            self.running.remove(row["model"])
        if line:
            click.echo(("\r\033[K" if self.bar is not None else "") + line)
        if self.bar is not None:
            self.bar.update(1, row["model"])
