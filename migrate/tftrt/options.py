"""TF-TRT options: defaults and checks, the outputs and calibration feeds, and the keywords this TF's TF-TRT
call accepts (read from the installed API, else from tfcompat's version table)."""
import inspect
import numbers

import numpy as np

from migrate import tfcompat
from migrate.errors import BadInput
from migrate.graph.names import node_name, tensor_name


PRECISIONS = ("FP32", "FP16", "INT8")


APIS = ("auto", "v1", "v2")


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


def normalize_options(options):
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


def generation_for(opts):
    api = opts["api"]
    if not tfcompat.trt_api_in_this_tf(api):
        since = tfcompat.format_version(tfcompat.trt_api_since(api))
        raise BadInput("api {!r} (trt_convert's converter classes) needs TF >= {}; this is TF {}".format(
            api, since, tfcompat.version_string()), WHERE, "use api 'auto' with this TF, or TF >= " + since)
    return tfcompat.trt_generation(prefer=None if api == "auto" else api)


def output_tensors(graph_def, outputs):
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


def node_names(tensors):
    """Node names of tensors, in order, without repeats: what create_inference_graph and the
    converters' nodes_blacklist/denylist take."""
    result = []
    for tensor in tensors:
        if node_name(tensor) not in result:
            result.append(node_name(tensor))
    return result


def input_specs(graph_def, outputs):
    from migrate import verify
    return verify.input_specs(graph_def, outputs)


def calibration_feeds(graph_def, outputs, feeds):
    """[{input tensor: array}], each naming every input the outputs need; None without calib_feeds."""
    if feeds is None:
        return None
    if not feeds:
        raise BadInput("calib_feeds is empty", WHERE, "give at least one {input: array} feed")
    specs = input_specs(graph_def, outputs)
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


class Api(object):
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
        return parameters(target.__init__) | set(dir(target))
    return parameters(target)


def parameters(function):
    try:
        return set(inspect.signature(function).parameters)
    except (TypeError, ValueError):  # builtins without a signature
        return set()


def graph_kwargs(api, opts, calibrating):
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
    calibration_kwarg(api, opts, calibrating, kwargs)
    return kwargs


def calibration_kwarg(api, opts, calibrating, kwargs):
    """INT8 with calib_feeds calibrates; without them TRT needs quantization ranges in the graph
    (use_calibration=False), which old contrib cannot do."""
    if opts["precision"] != "INT8":
        return
    if not calibrating:
        api.require("use_calibration", "precision INT8 without calib_feeds")
    if api.has("use_calibration"):
        kwargs["use_calibration"] = calibrating
