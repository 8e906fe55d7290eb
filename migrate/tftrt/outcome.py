"""What one TF-TRT conversion did, said honestly: the TrtOutcome (engines counted in the graph returned, one
sentence on why there are none, the keywords really passed)."""
import time
from collections import namedtuple

from migrate import tfcompat
from migrate.errors import first_line


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


class Record(object):
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


def ran(record, source, result, opts, extra=""):
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
