"""Run a Model: import it into its own tf.Graph + tf.Session, restore its weights, initialize its tables.

TF's default graph is never touched; every Restored closes its session on exit.
"""
import os

from migrate import artifacts, opsets
from migrate.artifacts.checkpoints import reader_prefix
from migrate import model as m
from migrate import tfcompat
from migrate.errors import BadInput, first_line
from migrate.graph.names import tensor_name

from migrate.opsets import TABLE_INIT_NODE

# Every session run ends within this many seconds (--timeout; MIGRATE_RUN_TIMEOUT; 0 = never): a graph that
# waits on a queue or iterator nothing fills would otherwise block forever.
DEFAULT_RUN_TIMEOUT = 300.0


def default_run_timeout():
    return float(os.environ.get("MIGRATE_RUN_TIMEOUT") or DEFAULT_RUN_TIMEOUT)


_run_timeout = [default_run_timeout()]


def set_run_timeout(seconds):
    """Seconds (0 = no deadline); None: the default (MIGRATE_RUN_TIMEOUT or 300)."""
    _run_timeout[0] = default_run_timeout() if seconds is None else float(seconds)


def run_timeout():
    return _run_timeout[0]


def tf_error_line(exc):
    """The first informative line of a TF error message (errors.first_line), without the op-trace TF appends."""
    return first_line(exc)


def check_ops_known(graph_def, where):
    ops = set(node.op for node in graph_def.node)
    for function in graph_def.library.function:
        ops.update(node.op for node in function.node_def)
    unknown = tfcompat.unregistered_ops(ops - set(f.signature.name for f in graph_def.library.function))
    if unknown:  # (a node calling a function of the graph's library has the function's name as its op)
        raise BadInput("ops not registered in TF {}: {}".format(tfcompat.version_string(), ", ".join(unknown)),
                       where, "use a TensorFlow build that has them (e.g. the TF the model was written with)")


def check_attrs_known(graph_def, where):
    """A bare GraphDef (a frozen graph) holding attrs this TF's ops do not define was written by a newer TF:
    TF imports it and then fails at the first run ("NodeDef mentions attr 'Truncate' not in Op<name=Cast>"),
    which would read as a fault of the inputs. Said before anything runs. (A meta graph carries the writer's
    op list, so its default-valued attrs are dropped on load instead: not checked here.)"""
    known = {}
    for node in graph_def.node:
        if node.op not in known:
            op_def = tfcompat.op_def(node.op)
            known[node.op] = None if op_def is None else set(attr.name for attr in op_def.attr)
        if known[node.op] is None:
            continue  # an unregistered op: check_ops_known says so
        extra = sorted(name for name in node.attr if not name.startswith("_") and name not in known[node.op])
        if extra:
            raise BadInput("TF {} cannot import the graph: node {} ({}) has attr {} that this TF's {} does not define "
                           "(written by a newer TF)".format(tfcompat.version_string(), node.name, node.op,
                                                            ", ".join(extra), node.op),
                           where, "use the TensorFlow the graph was written with, or a newer one")


def importing(where, call, *args, **kwargs):
    """Run a TF import (import_graph_def / import_meta_graph); its errors become one BadInput line."""
    try:
        return call(*args, **kwargs)
    except Exception as exc:
        if not isinstance(exc, (tfcompat.tf().errors.OpError, ValueError, KeyError, TypeError)):
            raise
        raise BadInput("TF {} cannot import the graph: {}".format(tfcompat.version_string(), tf_error_line(exc)),
                       where, "re-export the graph, or use the TensorFlow it was written with")


class Restored(object):
    """A model live in its own graph and session. Use as a context manager."""

    def __init__(self, model):
        v1 = tfcompat.v1()
        self.model = model
        self.graph = v1.Graph()
        self.session = v1.Session(graph=self.graph, config=session_config())
        try:
            with self.graph.as_default():
                _LOADERS[model.kind](self)
            check_run_memory(self.graph, model.path)
        except BadInput:
            self.close()
            raise
        except Exception as exc:
            self.close()
            if not isinstance(exc, tfcompat.tf().errors.OpError) and not isinstance(exc, (ValueError, KeyError)):
                raise
            if isinstance(exc, (tfcompat.tf().errors.DataLossError, tfcompat.tf().errors.OutOfRangeError)):
                from migrate.artifacts import damaged_checkpoint
                raise damaged_checkpoint(model.checkpoint or model.path, exc)
            raise BadInput("cannot restore the model: {}".format(tf_error_line(exc)), model.path,
                           "check that the checkpoint belongs to this graph (names, shapes, dtypes)")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        if self.session is not None:
            self.session.close()
            self.session = None

    def tensor(self, name):
        return self.graph.get_tensor_by_name(tensor_name(name))

    def run(self, outputs, feeds):
        fetches = [self.tensor(name) for name in outputs]
        feed_dict = {self.tensor(name): value for name, value in feeds.items()}
        return dict(zip(outputs, run_checked(self.session, fetches, feed_dict, self.model.path)))


def run_checked(session, fetches, feed_dict, where):
    """session.run with migrate's errors: a bad feed or a failing op is one BadInput line, a run past the
    deadline names the op it waited on. The run happens in a worker thread while this (main) thread waits in
    short joins, so SIGINT/SIGTERM are handled at once even while TF blocks (a signal handler only runs when
    the main thread is in Python); on an interrupt the session is closed, which cancels the blocked run."""
    try:
        return run_interruptible(session, fetches, feed_dict)
    except (ValueError, TypeError) as exc:  # raised before running: a feed of the wrong shape or dtype
        raise BadInput("cannot feed the inputs: {}".format(tf_error_line(exc)), where,
                       "give --inputs-npz arrays with the dtypes and shapes of the model's inputs")
    except tfcompat.tf().errors.DeadlineExceededError:
        raise timed_out(session.graph, fetches, feed_dict, where)
    except tfcompat.tf().errors.OpError as exc:
        raise BadInput("running the model failed: {}".format(tf_error_line(exc)), where,
                       "check that the inputs (--inputs-npz, --batch, --set) fit the model")


# Worker threads left blocked in TF (an op that ignores cancellation, e.g. StagingArea's Unstage): the CLI
# then ends the process with os._exit, as TF's teardown would wait for them.
ABANDONED_RUNS = []
_GRACE_SECONDS = 5.0  # past the deadline, for TF to cancel the run itself


def run_interruptible(session, fetches, feed_dict=None):
    """session.run(fetches, feed_dict) in a daemon thread; KeyboardInterrupt (or io.Terminated) in the
    caller's thread closes the session (cancelling the run) and propagates. A run still going after the
    deadline plus a grace period (an op TF cannot cancel) is abandoned: DeadlineExceededError."""
    import threading
    import time
    box = {}

    def work():
        try:
            box["values"] = session.run(fetches, feed_dict)
        except BaseException as exc:  # handed to the caller's thread
            box["error"] = exc
    if threading.current_thread() is not threading.main_thread():
        return session.run(fetches, feed_dict)  # signals go to the main thread anyway
    worker = threading.Thread(target=work, name="migrate-session-run")
    worker.daemon = True
    worker.start()
    limit = run_timeout() + _GRACE_SECONDS if run_timeout() else None
    started = time.time()
    try:
        while worker.is_alive():
            worker.join(0.1)
            if limit is not None and worker.is_alive() and time.time() - started > limit:
                _abandon(session, worker)
                raise tfcompat.tf().errors.DeadlineExceededError(None, None, "the run ignored its deadline")
    except BaseException as exc:
        if not isinstance(exc, tfcompat.tf().errors.DeadlineExceededError):
            _abandon(session, worker)
        raise
    if "error" in box:
        raise box["error"]
    return box["values"]


def _abandon(session, worker):
    """Close the session (cancels what TF can cancel) without waiting on a close that may itself block."""
    import threading
    closer = threading.Thread(target=session.close, name="migrate-session-close")
    closer.daemon = True
    closer.start()
    worker.join(5.0)
    if worker.is_alive():
        ABANDONED_RUNS.append(worker)


def suggest_input_at(op):
    """--input-at value for a live tf.Operation that blocked: its outputs."""
    return ",".join(t.name for t in op.outputs[:3]) or op.name + ":0"


def blocking_ops(graph, fetches, fed):
    """Ops of a live tf.Graph in the fetches' ancestry (not behind a fed tensor) that wait for data."""
    seen, stack, found = set(), [], []
    for name in fetches:
        try:
            stack.append(graph.as_graph_element(name).op if ":" in name else graph.get_operation_by_name(name))
        except (KeyError, ValueError):
            continue
    while stack:
        op = stack.pop()
        if op.name in seen:
            continue
        seen.add(op.name)
        if op.type in opsets.BLOCKING_OPS:
            found.append(op)
        for tensor in op.inputs:
            if tensor.name not in fed:
                stack.append(tensor.op)
        stack.extend(op.control_inputs)
    order = dict((op.name, i) for i, op in enumerate(graph.get_operations()))
    return sorted(found, key=lambda op: order.get(op.name, 0))


def timed_out(graph, fetches, feed_dict, where):
    """BadInput for a run that passed the deadline, naming the op it most likely waited on."""
    names = [getattr(f, "name", str(f)) for f in (fetches if isinstance(fetches, (list, tuple)) else [fetches])]
    fed = set(getattr(t, "name", str(t)) for t in (feed_dict or {}))
    blocking = blocking_ops(graph, names, fed)
    what = "{} ({})".format(blocking[0].name, blocking[0].type) if blocking else "an op of the graph"
    fix = ("it reads an input pipeline nothing fills: pass --input-at {} to feed there instead".format(
        suggest_input_at(blocking[0])) if blocking and blocking[0].type in opsets.PIPELINE_BOUNDARY_OPS
        else "if it waits for data, pass --input-at TENSOR where the data enters; raise --timeout for slow models")
    return BadInput("a session run did not finish within {:g} s: it waits on {}".format(run_timeout(), what),
                    where, fix)


# Verification and constant folding run graphs: a tensor whose static shape is larger than this bound is refused
# before anything runs (a 7-node graph can ask for a 1 G-element Fill). Bound: twice the largest weight the
# graph holds (Const, variable, or a weight fed as a placeholder) plus RUN_MARGIN_BYTES.
RUN_MARGIN_BYTES = 256 << 20
WEIGHT_OPS = opsets.WEIGHT_OPS


def _static_bytes(tensor):
    """Bytes of a tensor whose rank is known; unknown dims count as 1 (a lower bound: only a size the
    shape proves is ever refused). None for unknown rank and strings."""
    dtype = tensor.dtype.base_dtype
    if dtype.name in ("string", "resource", "variant") or tensor.shape.ndims is None:
        return None
    count = 1
    for dim in tensor.shape.as_list():
        count *= dim if dim is not None and dim >= 0 else 1
    return count * dtype.size


def _variable_bytes(op):
    try:
        dims = tfcompat.attr_shape_dims(op.get_attr("shape"))
        count = 1
        for dim in dims:
            count *= max(int(dim), 1)
        return count * op.get_attr("dtype").size
    except Exception:
        return None


def run_bound(graph):
    """(bound in bytes, largest weight in bytes) for running `graph` (a tf.Graph)."""
    largest = 0
    for op in graph.get_operations():
        if op.type in WEIGHT_OPS:
            largest = max(largest, _weight_bytes(op))
    return 2 * largest + RUN_MARGIN_BYTES, largest


def _weight_bytes(op):
    sizes = [_variable_bytes(op)] if op.type in opsets.FREEZABLE_VARIABLE_OPS else \
        [_static_bytes(t) for t in op.outputs]
    return max([0] + [size for size in sizes if size])


def oversized_tensors(graph):
    """[(tensor, bytes, bound)] of the tensors `graph` would compute over run_bound. One pass over the ops
    (the bound is never under RUN_MARGIN_BYTES, so only tensors above it are kept until the bound is known)."""
    largest, above_margin = 0, []
    for op in graph.get_operations():
        if op.type in WEIGHT_OPS:
            largest = max(largest, _weight_bytes(op))
            continue
        for tensor in op.outputs:
            size = _static_bytes(tensor)
            if size is not None and size > RUN_MARGIN_BYTES:
                above_margin.append((tensor, size))
    bound = 2 * largest + RUN_MARGIN_BYTES
    return [(tensor, size, bound) for tensor, size in above_margin if size > bound]


def check_run_memory(graph, where):
    """BadInput before running `graph` when its shapes prove a tensor larger than run_bound."""
    found = oversized_tensors(graph)
    if found:
        tensor, size, bound = found[0]
        raise too_big(tensor.name, tensor.op.type, size, bound, where)


def too_big(tensor, op, size, bound, where, runs="verification runs",
            fix="pass --no-verify to write the graph without running it, or feed smaller inputs"):
    return BadInput("tensor '{}' ({}) would take {:.2f} GiB, over the {:.2f} GiB per-tensor bound of {} (2x the "
                    "largest weight + {} MiB)".format(tensor, op, size / 2.0 ** 30, bound / 2.0 ** 30, runs,
                                                      RUN_MARGIN_BYTES >> 20), where, fix)


def session_config():
    """The ConfigProto of every session migrate opens (tfcompat.session_config) with --timeout's deadline."""
    return tfcompat.session_config(run_timeout())


def _import_graph(restored, graph_def):
    check_ops_known(graph_def, restored.model.path)
    importing(restored.model.path, tfcompat.v1().import_graph_def, graph_def, name="")


def _load_frozen(restored):
    _import_graph(restored, restored.model.graph_def)
    init = [n for n in restored.model.graph_def.node if n.name == TABLE_INIT_NODE]
    if init:
        run_checked(restored.session, restored.graph.get_operation_by_name(TABLE_INIT_NODE), None,
                    restored.model.path)


def _meta_for_import(meta):
    """A copy TF of every version can import: 2.21 raises InvalidVersion on '0.12.head' producer strings."""
    from tensorflow.core.protobuf import meta_graph_pb2
    copy = meta_graph_pb2.MetaGraphDef()
    copy.CopyFrom(meta)
    version = copy.meta_info_def.tensorflow_version
    if version and not _is_pep440(version):
        copy.meta_info_def.tensorflow_version = ".".join(str(x) for x in tfcompat.parse_version(version))
    normalize_for_import(copy.graph_def)
    return copy


def normalize_for_import(graph_def, producer_op_list=None):
    """Make a graph importable and freezable by the running TF: legacy `Variable` ops become `VariableV2`
    (same attrs; TF 2.x's convert_variables_to_constants only knows the V2 op), shape hints are dropped, and
    attrs the running TF does not know are dropped where the writer's op list says they hold their default
    (a newer TF's GatherV2.batch_dims=0 in TF 1.13): what import_meta_graph does with stripped_op_list."""
    for node in graph_def.node:
        if node.op == "Variable":
            node.op = "VariableV2"
    strip_shape_hints(graph_def)
    if producer_op_list is not None and len(producer_op_list.op):
        strip_unknown_defaults(graph_def, producer_op_list)


def strip_unknown_defaults(graph_def, producer_op_list):
    producer = dict((op.name, dict((a.name, a.default_value) for a in op.attr if a.HasField("default_value")))
                    for op in producer_op_list.op)
    known = {}
    for node in graph_def.node:
        if node.op not in known:
            op_def = tfcompat.op_def(node.op)
            known[node.op] = set(a.name for a in op_def.attr) if op_def is not None else None
        if known[node.op] is None:
            continue
        for name in [a for a in node.attr if a not in known[node.op] and not a.startswith("_")]:
            if name in producer.get(node.op, {}) and node.attr[name] == producer[node.op][name]:
                del node.attr[name]


def strip_shape_hints(graph_def):
    """Drop `_output_shapes`: hints old TF wrote that newer TF may reject (FusedBatchNormGradV3's reserve
    space changed shape between 1.15 and 2.x); TF recomputes shapes on import anyway."""
    for node in graph_def.node:
        if "_output_shapes" in node.attr:
            del node.attr["_output_shapes"]


def _is_pep440(text):
    import re
    return bool(re.match(r"^\d+(\.\d+)*((a|b|rc)\d+)?(\.post\d+)?(\.dev\d+)?$", text))


def _load_checkpoint(restored):
    model = restored.model
    meta = _meta_for_import(model.meta_graph)
    check_ops_known(meta.graph_def, model.path)
    artifacts.check_checkpoint_matches(model)
    v1 = tfcompat.v1()
    saver = importing(model.path, v1.train.import_meta_graph, meta, clear_devices=True)
    if saver is None:  # no saver_def and no variables collection: restore with the graph's own restore op
        _run_graph_restore(restored)
    else:
        saver.restore(restored.session, reader_prefix(model.checkpoint))
    _init_tables(restored)


def _load_graph_with_checkpoint(restored):
    from tensorflow.core.framework import graph_pb2
    graph_def = graph_pb2.GraphDef()
    graph_def.CopyFrom(restored.model.graph_def)  # graphs holding variables are small: weights are elsewhere
    normalize_for_import(graph_def)
    _import_graph(restored, graph_def)
    artifacts.check_checkpoint_matches(restored.model)
    _run_graph_restore(restored)
    _init_tables(restored)


def _run_graph_restore(restored):
    """Run the `save/restore_all` op a Saver wrote into the graph, feeding the checkpoint prefix."""
    graph_def = restored.model.graph_def
    restore = opsets.restore_root(graph_def)
    if restore is None:
        raise BadInput("graph has variables but no restore op (save/restore_all)", restored.model.path,
                       "pass a .meta graph or a SavedModel instead")
    by_name = dict((n.name, n) for n in graph_def.node)
    filename = opsets.restore_filename(graph_def)
    feeds = {}
    if filename and filename in by_name and by_name[filename].op in opsets.FEEDABLE_FILENAME_OPS:
        feeds[restored.graph.get_tensor_by_name(filename + ":0")] = reader_prefix(restored.model.checkpoint)
    restored.session.run(restored.graph.get_operation_by_name(restore), feeds)


def _init_tables(restored):
    v1 = tfcompat.v1()
    initializers = restored.graph.get_collection(v1.GraphKeys.TABLE_INITIALIZERS)
    if initializers:
        restored.session.run(initializers)


def _load_saved_model(restored):
    model = restored.model
    check_ops_known(model.graph_def, model.path)
    v1 = tfcompat.v1()
    try:
        v1.saved_model.loader.load(restored.session, model.tags, model.saved_model_dir, clear_devices=True)
    except TypeError:  # very old loaders take no saver kwargs
        v1.saved_model.loader.load(restored.session, model.tags, model.saved_model_dir)


_LOADERS = {
    m.FROZEN_GRAPH: _load_frozen,
    m.CHECKPOINT: _load_checkpoint,
    m.SESSION_BUNDLE: _load_checkpoint,
    m.GRAPH_WITH_CHECKPOINT: _load_graph_with_checkpoint,
    m.SAVED_MODEL: _load_saved_model,
}
