"""Convert a frozen GraphDef with TF-TRT, in the API generation this TF has, and say honestly what happened.

  contrib       TF 1.7-1.13  tensorflow.contrib.tensorrt.create_inference_graph (+ calib_graph_to_infer_graph)
  converter-v1  TF 1.14+     trt_convert.TrtGraphConverter in graph mode (+ calibrate)
  converter-v2  TF 2.x       trt_convert.TrtGraphConverterV2 from a temporary SavedModel (+ build, calibration)

Only keywords the installed call has are passed (inspect); an option it cannot honour is BadInput naming the
earliest TF that has it. The outcome counts TRTEngineOp nodes in the graph returned (function library
included) and says in one sentence why there are none. When the converter fails, the input graph comes
back unchanged. `convert` never decides whether zero engines is an error: the caller reads
TrtOutcome.converted (--require-trt).
"""
import inspect
import numbers
import os
import re
import shutil
import tempfile
import time
from collections import namedtuple

import numpy as np

from migrate import tfcompat
from migrate.errors import BadInput, first_line
from migrate.graph.edit import unique_name
from migrate.graph.names import is_control, node_name, output_index, tensor_name

TrtOutcome = namedtuple("TrtOutcome", [
    "generation",    # tfcompat.TRT_* the gate chose
    "api_call",      # the call chain, e.g. 'TrtGraphConverterV2.convert+build'
    "attempted",     # whether the converter was really called
    "engines",       # TRTEngineOp nodes in the returned graph, function library included
    "reason",        # one sentence: why no engines (or how many were built)
    "converted",     # engines > 0
    "seconds",
    "kwargs_used",   # {call: {keyword: value as passed (big objects summarized)}} for the calls made
    "graph_changed",  # the returned GraphDef differs from the input
])

TRT_ENGINE_OP = "TRTEngineOp"
PRECISIONS = ("FP32", "FP16", "INT8")
APIS = ("auto", "v1", "v2")
SIGNATURE_KEY = "serving_default"
SERVE_TAG = "serve"
WHERE = "TensorRT options"
DEFAULT_OPTIONS = {
    "precision": "FP32",
    "calib_feeds": None,             # [{tensor: array}] for INT8 calibration
    "minimum_segment_size": 3,
    "max_workspace_size": 1 << 30,   # bytes
    "maximum_cached_engines": None,  # None: the converter's default
    "max_batch": None,
    "dynamic": False,
    "static": False,
    "api": "auto",
    "input_shapes": {},
}


def convert(graph_def, outputs, options=None):
    """(GraphDef, TrtOutcome) for a frozen graph and its outputs ('y' or 'y:0'); options: see DEFAULT_OPTIONS."""
    record = _Record()
    opts = _options(options)
    generation = _generation(opts)
    record.generation = generation
    outputs = _outputs(graph_def, outputs)
    feeds = _calibration_feeds(graph_def, outputs, opts["calib_feeds"])
    module, _ = tfcompat.import_trt_module(generation)
    converter = _CONVERTERS.get(generation, _convert_none)
    return converter(module, graph_def, outputs, opts, feeds, record)


# ------------------------------------------------------------------------------------------------ options

def _options(options):
    opts = dict(DEFAULT_OPTIONS)
    if options is not None:
        given = options if isinstance(options, dict) else vars(options)
        # None means "not set": the default stays (CLI flags left out arrive as None).
        opts.update((key, value) for key, value in given.items() if key in DEFAULT_OPTIONS and value is not None)
    opts["precision"] = str(opts["precision"]).upper()
    _validate(opts)
    return opts


def _validate(opts):
    if opts["precision"] not in PRECISIONS:
        raise BadInput("precision {!r} is not one of {}".format(opts["precision"], ", ".join(PRECISIONS)), WHERE)
    if opts["api"] not in APIS:
        raise BadInput("api {!r} is not one of {}".format(opts["api"], ", ".join(APIS)), WHERE)
    for key in ("minimum_segment_size", "max_workspace_size", "maximum_cached_engines", "max_batch"):
        value = opts[key]
        if value is not None and (isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1):
            raise BadInput("{} must be a positive integer, got {!r}".format(key, value), WHERE)
    if opts["calib_feeds"] is not None and opts["precision"] != "INT8":
        raise BadInput("calib_feeds given with precision {}: calibration data is only used for INT8".format(
            opts["precision"]), WHERE, "set precision INT8 or drop calib_feeds")


def _generation(opts):
    api = opts["api"]
    if not tfcompat.trt_api_in_this_tf(api):
        since = tfcompat.format_version(tfcompat.trt_api_since(api))
        raise BadInput("api {!r} (trt_convert's converter classes) needs TF >= {}; this is TF {}".format(
            api, since, tfcompat.version_string()), WHERE, "use api 'auto' with this TF, or TF >= " + since)
    return tfcompat.trt_generation(prefer=None if api == "auto" else api)


def _outputs(graph_def, outputs):
    """Output tensors ('y:0'), in order, without repeats; BadInput for a name the graph lacks."""
    if isinstance(outputs, str):
        outputs = [outputs]
    known = set(node.name for node in graph_def.node)
    result = []
    for name in outputs or []:
        if node_name(name) not in known:
            raise BadInput("output '{}' is not a node of the graph".format(name), WHERE, "name an existing node")
        if tensor_name(name) not in result:
            result.append(tensor_name(name))
    if not result:
        raise BadInput("no outputs given", WHERE, "name the output nodes to keep")
    return result


def _nodes(tensors):
    """Node names of tensors, in order, without repeats: what create_inference_graph and the
    converters' nodes_blacklist/denylist take."""
    result = []
    for tensor in tensors:
        if node_name(tensor) not in result:
            result.append(node_name(tensor))
    return result


def _input_specs(graph_def, outputs):
    from migrate import verify
    return verify.input_specs(graph_def, outputs)


def _calibration_feeds(graph_def, outputs, feeds):
    """[{input tensor: array}], each naming every input the outputs need; None without calib_feeds."""
    if feeds is None:
        return None
    if not feeds:
        raise BadInput("calib_feeds is empty", WHERE, "give at least one {input: array} feed")
    specs = _input_specs(graph_def, outputs)
    result = []
    for index, feed in enumerate(feeds):
        named = dict((tensor_name(key), np.asarray(value)) for key, value in feed.items())
        missing, unknown = sorted(set(specs) - set(named)), sorted(set(named) - set(specs))
        if missing or unknown:
            raise BadInput("calib_feeds[{}]: {}".format(index, "; ".join(
                ["missing inputs {}".format(", ".join(missing))] * bool(missing) +
                ["not inputs of the outputs: {}".format(", ".join(unknown))] * bool(unknown))), WHERE,
                "inputs are {}".format(", ".join(sorted(specs))))
        result.append(named)
    return result


# --------------------------------------------------------------------------------- what this TF accepts

class _Api(object):
    """Keywords (and methods) an installed TF-TRT call has; with nothing installed, TF's version table."""

    def __init__(self, call, target=None):
        self.call = call
        self.names = _names(target) if target is not None else None

    def has(self, keyword):
        if self.names is None:
            return tfcompat.trt_feature_in_this_tf(self.call, keyword)
        return keyword in self.names

    def require(self, keyword, option):
        if not self.has(keyword):
            since = tfcompat.trt_feature_since(self.call, keyword)
            raise BadInput("option {} needs {}, which TF-TRT has from TF {}; this is TF {}".format(
                option, self._spelled(keyword), tfcompat.format_version(since), tfcompat.version_string()),
                WHERE, "drop the option or use TF >= {}".format(tfcompat.format_version(since)))

    def _spelled(self, keyword):
        return "{}.{}()".format(self.call, keyword) if keyword in _METHODS else "{}({}=...)".format(
            self.call, keyword)


_METHODS = frozenset(["build", "calibrate"])


def _names(target):
    """Parameter names of a function, or of a class's __init__ plus its attributes (methods)."""
    if inspect.isclass(target):
        return _parameters(target.__init__) | set(dir(target))
    return _parameters(target)


def _parameters(function):
    try:
        return set(inspect.signature(function).parameters)
    except (TypeError, ValueError):  # builtins without a signature
        return set()


def _graph_kwargs(api, opts, calibrating):
    """Keywords for create_inference_graph / TrtGraphConverter: only those this version has."""
    kwargs = {"precision_mode": opts["precision"], "minimum_segment_size": opts["minimum_segment_size"],
              "max_workspace_size_bytes": opts["max_workspace_size"]}
    if opts["max_batch"] is not None:
        kwargs["max_batch_size"] = opts["max_batch"]
    if opts["dynamic"] and opts["static"]:
        raise BadInput("dynamic and static both set: {} builds engines either at run time (is_dynamic_op) or "
                       "at conversion".format(api.call), WHERE, "set only one of them")
    if opts["dynamic"]:
        api.require("is_dynamic_op", "dynamic")
    if api.has("is_dynamic_op"):
        kwargs["is_dynamic_op"] = bool(opts["dynamic"])
    if opts["maximum_cached_engines"] is not None:
        api.require("maximum_cached_engines", "maximum_cached_engines")
        kwargs["maximum_cached_engines"] = opts["maximum_cached_engines"]
    _calibration_kwarg(api, opts, calibrating, kwargs)
    return kwargs


def _calibration_kwarg(api, opts, calibrating, kwargs):
    """INT8 with calib_feeds calibrates; without them TRT needs quantization ranges in the graph
    (use_calibration=False), which old contrib cannot do."""
    if opts["precision"] != "INT8":
        return
    if not calibrating:
        api.require("use_calibration", "precision INT8 without calib_feeds")
    if api.has("use_calibration"):
        kwargs["use_calibration"] = calibrating


# ----------------------------------------------------------------------------------------------- outcome

class _Record(object):
    """What one conversion did; becomes the TrtOutcome."""

    def __init__(self):
        self.started = time.time()
        self.generation = None
        self.api_call = None
        self.attempted = False
        self.step = None     # the call running now: the one to blame when something raises
        self.kwargs = {}

    def calling(self, call, kwargs=None):
        self.attempted = True
        self.step = call
        self.kwargs[call] = _shown(kwargs or {})

    def outcome(self, source, result, reason=None):
        engines = count_engines(result)
        if reason is None:
            reason = "converter built {} TRTEngineOp{}".format(engines, "s" * (engines != 1))
        return TrtOutcome(self.generation, self.api_call, self.attempted, engines, reason, engines > 0,
                          round(time.time() - self.started, 3), self.kwargs, graph_changed(source, result))

    def failed(self, source, exc):
        """The converter raised: the input graph comes back, the exception is the reason."""
        text = first_line(exc) if str(exc).strip() else "(no message)"
        return source, self.outcome(source, source, "{} raised {}: {}".format(self.step, type(exc).__name__, text))

    def planned(self, call, kwargs):
        """The keywords `call` would get, recorded without calling it."""
        self.kwargs[call] = _shown(kwargs)

    def not_attempted(self, source, reason):
        return source, self.outcome(source, source, reason)


def count_engines(graph_def):
    """TRTEngineOp nodes in the graph and in every function of its library (TF 2.x puts them there)."""
    count = sum(1 for node in graph_def.node if node.op == TRT_ENGINE_OP)
    for function in graph_def.library.function:
        count += sum(1 for node in function.node_def if node.op == TRT_ENGINE_OP)
    return count


def graph_changed(before, after):
    """Whether the nodes or the function library differ. Node order and an empty library that is merely
    present (TF 1.x converters add one) are not changes."""
    def nodes(graph_def):
        return dict((node.name, node) for node in graph_def.node)
    return nodes(before) != nodes(after) or before.library != after.library


def _zero_engines_reason(opts, extra=""):
    cause = tfcompat.trt_missing_cause(tfcompat.trt_status()) or (
        "no segment of at least {} TensorRT-convertible nodes".format(opts["minimum_segment_size"]))
    return "converter ran and built 0 TRTEngineOps: {}{}".format(cause, extra)


def _ran(record, source, result, opts, extra=""):
    reason = _zero_engines_reason(opts, extra) if count_engines(result) == 0 else None
    return result, record.outcome(source, result, reason)


def _shown(value):
    """A kwargs value as JSON-friendly data: protos and callables summarized, namedtuples as dicts."""
    if hasattr(value, "_asdict"):
        return _shown(value._asdict())
    if isinstance(value, dict):
        return dict((str(k), _shown(v)) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return [_shown(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if hasattr(value, "node"):
        return "<GraphDef: {} nodes>".format(len(value.node))
    if callable(value):
        return "<{}>".format(getattr(value, "__name__", "callable"))
    return repr(value)


# ----------------------------------------------------------------------------------------------- TF < 1.7

def _convert_none(module, graph_def, outputs, opts, feeds, record):
    record.api_call = None
    return record.not_attempted(graph_def, tfcompat.trt_status().reason)


# ----------------------------------------------------------------------------------------- contrib (1.7+)

def _convert_contrib(module, graph_def, outputs, opts, feeds, record):
    create = tfcompat.trt_api(module, "create_inference_graph")
    infer = tfcompat.trt_api(module, "calib_graph_to_infer_graph")
    # Plan first (BadInput before anything runs); with no module, the version table answers.
    kwargs = _graph_kwargs(_Api("create_inference_graph", create), opts, feeds is not None)
    infer_kwargs = _infer_kwargs(_Api("calib_graph_to_infer_graph", infer), opts) if feeds else None
    record.api_call = tfcompat.CONTRIB_MODULE + ".create_inference_graph" + (
        "+calib_graph_to_infer_graph" if feeds else "")
    if module is None:
        return record.not_attempted(graph_def, tfcompat.trt_status().reason)
    try:
        record.calling("create_inference_graph", dict(kwargs, input_graph_def=graph_def, outputs=_nodes(outputs)))
        result = create(graph_def, _nodes(outputs), **kwargs)
        if feeds is None:
            return _ran(record, graph_def, result, opts)
        return _contrib_calibrate(infer, infer_kwargs, graph_def, result, outputs, opts, feeds, record)
    except Exception as exc:  # whatever TF-TRT raised is the honest reason
        return record.failed(graph_def, exc)


def _infer_kwargs(api, opts):
    if not opts["dynamic"]:
        return {}
    api.require("is_dynamic_op", "dynamic with calib_feeds")
    return {"is_dynamic_op": True}


def _contrib_calibrate(infer, infer_kwargs, source, calib_graph, outputs, opts, feeds, record):
    """Run the feeds through the calibration graph, then swap calibrated engines in (TF 1.7-1.13 flow).

    The calibration data lives in the session's TRT resources, so the session stays open meanwhile.
    """
    record.calling("Session.run (calibration)", {"num_runs": len(feeds)})
    session = _run_feeds(calib_graph, outputs, feeds)
    try:
        record.calling("calib_graph_to_infer_graph", dict(infer_kwargs, calibration_graph_def=calib_graph))
        result = infer(calib_graph, **infer_kwargs)
    finally:
        session.close()
    if result is not None:
        return _ran(record, source, result, opts)
    # TF logs "Not a calib graph" and returns None when no engine awaits calibration.
    if count_engines(calib_graph) == 0:
        return _ran(record, source, calib_graph, opts,
                    "; calib_graph_to_infer_graph found no calibration nodes and returned None")
    # Engines that were never calibrated are not an INT8 result: hand back the input instead.
    return source, record.outcome(source, source, "calib_graph_to_infer_graph returned None for a calibration "
                                  "graph with {} TRTEngineOps".format(count_engines(calib_graph)))


def _run_feeds(graph_def, outputs, feeds):
    v1 = tfcompat.v1()
    graph = v1.Graph()
    with graph.as_default():
        v1.import_graph_def(graph_def, name="")
    session = v1.Session(graph=graph)
    try:
        for feed in feeds:
            session.run(outputs, feed)
    except Exception:
        session.close()
        raise
    return session


# ---------------------------------------------------------------------------- TrtGraphConverter (1.14+)

def _convert_v1(module, graph_def, outputs, opts, feeds, record):
    cls = tfcompat.trt_api(module, "TrtGraphConverter")
    record.api_call = "TrtGraphConverter.convert" + ("+calibrate" if feeds else "")
    if module is None:
        return record.not_attempted(graph_def, tfcompat.trt_status().reason)
    if cls is None:
        return record.not_attempted(graph_def, "TF {}: {} has no TrtGraphConverter (use api 'v2')".format(
            tfcompat.version_string(), tfcompat.TRT_CONVERT_MODULE))
    api = _Api("TrtGraphConverter", cls)
    kwargs = _graph_kwargs(api, opts, feeds is not None)
    # Keep the outputs out of engines so they can still be fetched by name.
    for keyword in tfcompat.TRT_EXCLUDE_NODES_KEYWORDS:
        if api.has(keyword):
            kwargs[keyword] = _nodes(outputs)
            break
    refusal = tfcompat.trt_converter_refusal(record.generation, "TrtGraphConverter")
    if refusal:  # the probe already knows the constructor would raise
        record.planned("TrtGraphConverter", dict(kwargs, input_graph_def=graph_def))
        return record.not_attempted(graph_def, refusal)
    try:
        # A fresh graph context is graph mode: TF 2.x's TrtGraphConverter refuses to run eagerly.
        with tfcompat.v1().Graph().as_default():
            record.calling("TrtGraphConverter", dict(kwargs, input_graph_def=graph_def))
            converter = cls(input_graph_def=graph_def, **kwargs)
            record.calling("TrtGraphConverter.convert")
            result = converter.convert()
            if feeds is not None:
                result = _v1_calibrate(converter, outputs, feeds, record)
    except Exception as exc:
        return record.failed(graph_def, exc)
    return _ran(record, graph_def, result, opts)


def _v1_calibrate(converter, outputs, feeds, record):
    remaining = iter(feeds)
    record.calling("TrtGraphConverter.calibrate", {"fetch_names": list(outputs), "num_runs": len(feeds),
                                                   "feed_dict_fn": "<next of {} calib_feeds>".format(len(feeds))})
    return converter.calibrate(fetch_names=list(outputs), num_runs=len(feeds), feed_dict_fn=lambda: next(remaining))


# -------------------------------------------------------------------------- TrtGraphConverterV2 (TF 2.x)

def _convert_v2(module, graph_def, outputs, opts, feeds, record):
    """GraphDef -> temporary TF1 SavedModel -> converter (convert, build, save) -> the saved serving function,
    frozen, with the original input/output names. Engines prebuilt by build() are stored as SavedModel
    assets, which a GraphDef cannot carry: the TRTEngineOps in the returned graph rebuild them on first run."""
    cls = tfcompat.trt_api(module, "TrtGraphConverterV2")
    record.api_call = "TrtGraphConverterV2.convert" + ("+build" if opts["static"] else "")
    if module is None:
        return record.not_attempted(graph_def, tfcompat.trt_status().reason)
    if cls is None:
        return record.not_attempted(graph_def, "TF {}: {} has no TrtGraphConverterV2".format(
            tfcompat.version_string(), tfcompat.TRT_CONVERT_MODULE))
    plan = _v2_plan(module, cls, graph_def, outputs, opts, feeds)
    if not tfcompat.executing_eagerly():
        return record.not_attempted(graph_def, "TF {}: TrtGraphConverterV2 needs eager execution (TF 2 "
                                    "behaviour), which is off here".format(tfcompat.version_string()))
    refusal = tfcompat.trt_converter_refusal(record.generation, "TrtGraphConverterV2")
    if refusal:  # the probe already knows: no temporary SavedModel of the graph is written for nothing
        record.planned("TrtGraphConverterV2", _v2_constructor_kwargs(plan))
        return record.not_attempted(graph_def, refusal)
    workdir = tempfile.mkdtemp(prefix="migrate-tftrt-")
    try:
        source_dir, converted_dir = os.path.join(workdir, "source"), os.path.join(workdir, "converted")
        try:
            write_saved_model(graph_def, plan.inputs, plan.outputs, source_dir)
        except Exception as exc:  # disk full / file size limit in TMPDIR: say where, never the temp path
            if not isinstance(exc, (IOError, OSError)) and workdir not in str(exc):
                raise
            raise BadInput("cannot write TF-TRT's temporary SavedModel: {}".format(
                tfcompat.write_error_reason(exc)),
                           tempfile.gettempdir(), "free space there, set TMPDIR to a larger disk, or pass --no-trt")
        try:
            _run_v2(cls, plan, source_dir, converted_dir, record)
            record.step = "reading back the converted SavedModel"
            result = saved_function_graph(converted_dir, plan.inputs, plan.outputs)
        except Exception as exc:
            return record.failed(graph_def, exc)
        return _ran(record, graph_def, result, opts)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


_V2Plan = namedtuple("_V2Plan", ["kwargs", "convert_kwargs", "inputs", "outputs", "calibration", "build"])


def _v2_plan(module, cls, graph_def, outputs, opts, feeds):
    """Constructor and convert() keywords, signature keys, and the inputs for calibration and build."""
    specs = _input_specs(graph_def, outputs)
    inputs = signature_keys(sorted(specs))
    kwargs = _v2_kwargs(module, _Api("TrtGraphConverterV2", cls), opts, feeds is not None)
    convert_kwargs, calibration = {}, None
    if feeds is not None:
        _Api("TrtGraphConverterV2.convert", cls.convert).require("calibration_input_fn", "calib_feeds")
        calibration = [dict((key, feed[tensor]) for key, tensor in inputs.items()) for feed in feeds]
        convert_kwargs["calibration_input_fn"] = _yielder(calibration)
    build = None
    if opts["static"]:
        _Api("TrtGraphConverterV2", cls).require("build", "static")
        build = [_zeros_at_static_shapes(graph_def, outputs, opts, specs, inputs)]
    return _V2Plan(kwargs, convert_kwargs, inputs, signature_keys(outputs), calibration, build)


def _v2_kwargs(module, api, opts, calibrating):
    """Constructor keywords: direct ones from TF 2.8, a TrtConversionParams before."""
    wanted = {"precision_mode": opts["precision"], "minimum_segment_size": opts["minimum_segment_size"],
              "max_workspace_size_bytes": opts["max_workspace_size"]}
    if opts["maximum_cached_engines"] is not None:
        wanted["maximum_cached_engines"] = opts["maximum_cached_engines"]
    if opts["precision"] == "INT8":
        wanted["use_calibration"] = calibrating
    direct = {}
    if opts["dynamic"]:
        api.require("use_dynamic_shape", "dynamic")
        direct["use_dynamic_shape"] = True
    if api.has("precision_mode"):
        return dict(wanted, **direct)
    params = module.DEFAULT_TRT_CONVERSION_PARAMS
    if opts["max_batch"] is not None and "max_batch_size" in params._fields:
        wanted["max_batch_size"] = opts["max_batch"]
    direct["conversion_params"] = params._replace(**dict(
        (key, value) for key, value in wanted.items() if key in params._fields))
    return direct


def _zeros_at_static_shapes(graph_def, outputs, opts, specs, inputs):
    """{signature key: zeros} at the shapes set_static_shapes gives (unknown batch = max_batch)."""
    from migrate.passes import base, set_static_shapes
    context = base.PassContext(outputs=outputs, options={"static": True, "max_batch": opts["max_batch"],
                                                          "input_shapes": opts["input_shapes"] or {}})
    fixed, _ = set_static_shapes.run(graph_def, context)
    wanted = set(node_name(tensor) for tensor in specs)
    shapes = dict((node.name, [dim.size for dim in node.attr["shape"].shape.dim])
                  for node in fixed.node if node.name in wanted)
    return dict((key, np.zeros(shapes[node_name(tensor)], dtype=specs[tensor][0]))
                for key, tensor in inputs.items())


def _yielder(batches):
    def input_fn():
        for batch in batches:
            yield batch
    return input_fn


def _v2_constructor_kwargs(plan):
    return dict(plan.kwargs, input_saved_model_dir="<temporary SavedModel>", input_saved_model_tags=[SERVE_TAG],
                input_saved_model_signature_key=SIGNATURE_KEY)


def _run_v2(cls, plan, source_dir, converted_dir, record):
    record.calling("TrtGraphConverterV2", _v2_constructor_kwargs(plan))
    converter = cls(input_saved_model_dir=source_dir, input_saved_model_tags=[SERVE_TAG],
                    input_saved_model_signature_key=SIGNATURE_KEY, **plan.kwargs)
    shown = dict(plan.convert_kwargs)
    if plan.calibration is not None:
        shown["calibration_input_fn"] = "<{} calib_feeds>".format(len(plan.calibration))
    record.calling("TrtGraphConverterV2.convert", shown)
    converter.convert(**plan.convert_kwargs)
    if plan.build is not None:
        record.calling("TrtGraphConverterV2.build", {"input_fn": dict(
            (key, list(value.shape)) for key, value in plan.build[0].items())})
        converter.build(input_fn=_yielder(plan.build))
    record.calling("TrtGraphConverterV2.save", {"output_saved_model_dir": "<temporary SavedModel>"})
    converter.save(converted_dir)


# ------------------------------------------------------------------------------ SavedModel in and out

def signature_keys(tensors):
    """{signature key: tensor name}: keys are node names made identifier-safe (TF 2.x calls take kwargs)."""
    keys = {}
    for tensor in tensors:
        key = re.sub(r"\W", "_", node_name(tensor))
        if output_index(tensor):
            key += "_{}".format(output_index(tensor))
        if not re.match(r"[A-Za-z_]", key):
            key = "t_" + key
        base, suffix = key, 1
        while key in keys:
            key, suffix = "{}_{}".format(base, suffix), suffix + 1
        keys[key] = tensor_name(tensor)
    return keys


def write_saved_model(graph_def, inputs, outputs, path):
    """A TF1 SavedModel of a frozen graph with one serving_default signature ({key: tensor} maps)."""
    v1 = tfcompat.v1()
    builder_class, tensor_info, signature_def = tfcompat.v1_saved_model_api()
    graph = v1.Graph()
    with graph.as_default():
        v1.import_graph_def(graph_def, name="")
        signature = signature_def(
            inputs=dict((key, tensor_info(graph.get_tensor_by_name(t))) for key, t in inputs.items()),
            outputs=dict((key, tensor_info(graph.get_tensor_by_name(t))) for key, t in outputs.items()),
            method_name="tensorflow/serving/predict")
        with v1.Session(graph=graph) as session:
            builder = builder_class(path)
            builder.add_meta_graph_and_variables(session, [SERVE_TAG], signature_def_map={SIGNATURE_KEY: signature})
            builder.save()
    return path


def saved_function_graph(path, inputs, outputs):
    """TF 2.x: the serving function of a SavedModel as a frozen GraphDef that keeps the original input and
    output names (TF2-format SavedModels rename them after the signature keys)."""
    loaded, signature, frozen = tfcompat.load_saved_function(path, SIGNATURE_KEY)
    graph_def = frozen.graph.as_graph_def()
    for key, tensor in inputs.items():
        _restore_input(graph_def, key, node_name(tensor))
    produced = _outputs_by_key(signature, frozen)
    for key, tensor in outputs.items():
        _restore_output(graph_def, produced[key], tensor)
    del loaded
    return graph_def


def _outputs_by_key(signature, frozen):
    """{output key: tensor of the frozen function}. Function outputs are the signature's dict flattened,
    i.e. in sorted key order (tf.nest), and freezing keeps that order."""
    return dict(zip(sorted(signature.structured_outputs), frozen.outputs))


def _restore_input(graph_def, key, wanted):
    nodes = dict((node.name, node) for node in graph_def.node)
    if wanted in nodes and nodes[wanted].op == "Placeholder":
        return
    if key not in nodes:
        raise RuntimeError("the converted function has neither input '{}' nor '{}'".format(wanted, key))
    if wanted in nodes:
        rename_node(graph_def, wanted, unique_name(graph_def, wanted))
    rename_node(graph_def, key, wanted)


def _restore_output(graph_def, produced, wanted):
    """Make `wanted` ('y:0') name the function output `produced`: an Identity alias named 'y'.

    An output other than :0 cannot be aliased under its own name; it stays as the function names it.
    """
    if produced.name == wanted or output_index(wanted) != 0:
        return
    name = node_name(wanted)
    if any(node.name == name for node in graph_def.node):
        rename_node(graph_def, name, unique_name(graph_def, name))
    alias = graph_def.node.add()
    alias.name, alias.op = name, "Identity"
    alias.input.append(_input_spelling(produced.name))
    alias.attr["T"].type = produced.dtype.as_datatype_enum


def _input_spelling(tensor):
    return node_name(tensor) if output_index(tensor) == 0 else tensor


def rename_node(graph_def, old, new):
    """Rename a node and every input that refers to it (data 'old', 'old:k' and control '^old')."""
    for node in graph_def.node:
        if node.name == old:
            node.name = new
        for index, input_name in enumerate(node.input):
            if node_name(input_name) != old:
                continue
            if is_control(input_name):
                node.input[index] = "^" + new
            else:
                node.input[index] = new if output_index(input_name) == 0 and ":" not in input_name else \
                    "{}:{}".format(new, output_index(input_name))


_CONVERTERS = {
    tfcompat.TRT_CONTRIB: _convert_contrib,
    tfcompat.TRT_CONVERTER_V1: _convert_v1,
    tfcompat.TRT_CONVERTER_V2: _convert_v2,
}
