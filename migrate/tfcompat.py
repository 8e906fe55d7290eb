"""The only module that knows TensorFlow versions.

Everything else asks here: which TF is installed, where the TF1 API lives, which TF-TRT API generation this
TF has and whether TensorRT can really be used. Probes never call anything that can abort the process:
`get_loaded_tensorrt_version()` SIGABRTs in TF 2.12-2.17 when TensorRT is missing, so we never call it; the
TensorRT library is looked for with ctypes instead.
"""
import contextlib
import ctypes
import ctypes.util
import importlib
import os
import re
import sys
from collections import namedtuple

# TF-TRT API generations.
TRT_NONE = "none"                # TF < 1.7: no TF-TRT at all
TRT_CONTRIB = "contrib"          # TF 1.7-1.13: tensorflow.contrib.tensorrt.create_inference_graph
TRT_CONVERTER_V1 = "converter-v1"  # TF 1.14+: trt_convert.TrtGraphConverter (graph mode)
TRT_CONVERTER_V2 = "converter-v2"  # TF 2.x: trt_convert.TrtGraphConverterV2 (from a SavedModel)

CONTRIB_MODULE = "tensorflow.contrib.tensorrt"
TRT_CONVERT_MODULE = "tensorflow.python.compiler.tensorrt.trt_convert"
TRT_LIBRARY = "nvinfer"

_tf = None


def tf():
    """The tensorflow module, imported on first use (importing TF costs seconds)."""
    global _tf
    if _tf is None:
        # 3: TF's C++ ERROR lines too (e.g. `E0000 ... tensor.cc:166] ...` beside a corrupt Const): migrate
        # says what went wrong in its own one line; MIGRATE_DEBUG=1 keeps TF's errors visible.
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2" if os.environ.get("MIGRATE_DEBUG") == "1" else "3")
        with _quiet_import():
            _tf = importlib.import_module("tensorflow")
        _quiet_tf_logging(_tf)
    return _tf


@contextlib.contextmanager
def _quiet_import():
    """Importing TF writes to stderr whatever its log level (TF 2.18+: absl INFO lines printed before the
    level applies; TF 1.x: numpy FutureWarnings). migrate's stderr carries one line per error: silence the
    import, at the file-descriptor level (C++ writes there), unless MIGRATE_DEBUG=1."""
    import warnings
    saved = None
    if os.environ.get("MIGRATE_DEBUG") != "1":
        try:
            sys.stderr.flush()
            saved = os.dup(2)
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 2)
            os.close(devnull)
        except OSError:
            saved = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        if saved is not None:
            os.dup2(saved, 2)
            os.close(saved)


def _quiet_tf_logging(tf_module):
    # migrate reports outcomes itself (TF-TRT's "needs to be built with TensorRT" arrives as our reason line);
    # TF's own Python log lines would say the same thing twice, out of order.
    try:
        tf_module.get_logger().setLevel("CRITICAL")
    except AttributeError:  # TF < 1.14
        tf_module.logging.set_verbosity(tf_module.logging.FATAL)


def version_string():
    return tf().__version__


def parse_version(text):
    """'1.15.5' -> (1, 15, 5); '2.21.0rc1' -> (2, 21, 0); '0.12.head' -> (0, 12, 0)."""
    numbers = [int(part) for part in re.findall(r"\d+", text or "")[:3]]
    return tuple(numbers + [0] * (3 - len(numbers)))


def version():
    return parse_version(version_string())


def is_tf2():
    return version() >= (2, 0, 0)


def v1():
    """The TF1 API namespace: tf.compat.v1 from 1.13 on, plain tf before."""
    module = tf()
    if version() >= (1, 13, 0):
        return module.compat.v1
    return module


def set_run_timeout(config, seconds):
    """Give every run of a session made with this ConfigProto a deadline. ConfigProto.operation_timeout_in_ms
    exists in every TF of the matrix (1.7-2.21) and ends a run blocked in a queue dequeue or an iterator
    with DeadlineExceededError (measured in 1.7.1, 1.15.5 and 2.x); RunOptions.timeout_in_ms does too but
    must be passed to each call. 0 or None: no deadline."""
    if seconds:
        config.operation_timeout_in_ms = int(seconds * 1000)
    return config


def has_estimator():
    """tf.estimator exists in TF 1.x and 2.0-2.15; it is gone from 2.16 on."""
    try:
        return hasattr(v1(), "estimator") and hasattr(v1().estimator, "Estimator")
    except Exception:  # the lazy loader raises ImportError when tensorflow-estimator is absent
        return False


def estimator_export(estimator, export_dir_base, serving_input_receiver_fn):
    """Estimator.export_saved_model (TF >= 1.13), export_savedmodel before; returns the export directory."""
    method = getattr(estimator, "export_saved_model", None) or estimator.export_savedmodel
    return method(export_dir_base, serving_input_receiver_fn)


def unregistered_ops(op_names):
    """The op names this TF build does not know (a graph holding them cannot be imported here).

    TF 1.x registers contrib ops (DecodeWav/Mfcc in TF < 1.8, ...) only when their python module is imported,
    so an unknown op there first triggers loading contrib's op modules."""
    unknown = _unknown_now(op_names)
    if unknown and not is_tf2() and _load_contrib_ops():
        unknown = _unknown_now(unknown)
    return unknown


def _unknown_now(op_names):
    from tensorflow.python.framework import op_def_registry
    if hasattr(op_def_registry, "get_registered_ops"):  # TF 1.x
        known = op_def_registry.get_registered_ops()
        return sorted(name for name in set(op_names) if name not in known)
    return sorted(name for name in set(op_names) if op_def_registry.get(name) is None)


_contrib_loaded = []


def _load_contrib_ops():
    """Import every tensorflow.contrib.*.python.ops module once (TF 1.x only). True if anything loaded."""
    if _contrib_loaded:
        return False
    _contrib_loaded.append(True)
    import pkgutil
    try:
        contrib = importlib.import_module("tensorflow.contrib")
    except Exception:
        return False
    loaded = False
    for info in pkgutil.walk_packages(contrib.__path__, "tensorflow.contrib.", onerror=lambda name: None):
        if ".python.ops." in info[1] and info[1].endswith("_ops") and "test" not in info[1]:
            try:
                importlib.import_module(info[1])
                loaded = True
            except Exception:  # some contrib modules need extras (e.g. ffmpeg, cloud); skip them
                continue
    return loaded


def op_def(op_type):
    """The OpDef this TF build registers for an op type (is_stateful, outputs, ...), or None if unknown."""
    tf()  # importing tensorflow fills the registry
    from tensorflow.python.framework import op_def_registry
    if hasattr(op_def_registry, "get_registered_ops"):  # TF 1.x
        return op_def_registry.get_registered_ops().get(op_type)
    return op_def_registry.get(op_type)


def fused_batch_norm_builders():
    """{op type: builder} for the FusedBatchNorm generations this TF can build (V3 only from TF 1.15).

    Each builder takes (x, scale, offset, mean, variance, epsilon=, data_format=, is_training=, name=)
    and returns the op's outputs; tf.nn.fused_batch_norm picks one generation for you, these pick exactly one.
    """
    from tensorflow.python.ops import gen_nn_ops
    tf()
    candidates = [("FusedBatchNorm", "_fused_batch_norm"), ("FusedBatchNorm", "fused_batch_norm"),
                  ("FusedBatchNormV2", "fused_batch_norm_v2"), ("FusedBatchNormV3", "fused_batch_norm_v3")]
    builders = {}
    for op_type, function in candidates:
        if op_type not in builders and hasattr(gen_nn_ops, function):
            builders[op_type] = getattr(gen_nn_ops, function)
    return builders


def graph_util():
    """convert_variables_to_constants, extract_sub_graph, remove_training_nodes live here."""
    return v1().graph_util


def checkpoint_reader(prefix):
    return v1().train.NewCheckpointReader(prefix)


def gpus():
    """Names of GPUs TensorFlow can see (empty on all our machines)."""
    module = tf()
    try:
        return [d.name for d in module.config.list_physical_devices("GPU")]
    except AttributeError:
        pass
    try:
        return [d.name for d in module.config.experimental.list_physical_devices("GPU")]
    except AttributeError:
        from tensorflow.python.client import device_lib
        return [d.name for d in device_lib.list_local_devices() if d.device_type == "GPU"]


@contextlib.contextmanager
def tf1_control_flow():
    """Build tf.cond / tf.while_loop / TensorArray as TF1 ops (Switch/Merge/Enter/Exit) while inside.

    TF 2.x builds functional If/While ops by default even in graph mode; legacy artifacts have the TF1 ops.
    The switch is process-wide, so it is restored on exit. TF < 1.14 has only TF1 control flow.
    """
    module = v1()
    if not hasattr(module, "disable_control_flow_v2"):
        yield
        return
    was_enabled = module.control_flow_v2_enabled()
    module.disable_control_flow_v2()
    try:
        yield
    finally:
        if was_enabled:
            module.enable_control_flow_v2()


def rnn_cells():
    """tf.nn.rnn_cell (BasicRNNCell, GRUCell, ...) or None: Keras 3 builds (TF >= 2.17) no longer have it."""
    try:
        cells = v1().nn.rnn_cell
        cells.GRUCell  # the lazy loader raises here when the Keras behind it is missing
        return cells
    except Exception:
        return None


def session_config(run_timeout_seconds):
    """CPU only, Grappler and the classic optimizer's L1 off: Grappler would rewrite the graphs we compare (a
    comparison wants them run as written), and on large graphs its first-run rewrite costs more than the run (1.07 GB MLP: 96 s -> 24 s).
    RewriterConfig.disable_meta_optimizer exists from TF 1.8 (TF 1.7 runs without it)."""
    config = v1().ConfigProto(device_count={"GPU": 0}, allow_soft_placement=True)
    # The classic graph optimizer's L1 (common subexpression elimination, constant folding) off as well: the
    # same kernels compute the same values at run time, and on a 120k-node chain it was about half of the
    # first run (executor creation). OptimizerOptions.L0 exists in every TF of the matrix.
    config.graph_options.optimizer_options.opt_level = v1().OptimizerOptions.L0
    rewrites = config.graph_options.rewrite_options
    if "disable_meta_optimizer" in type(rewrites).DESCRIPTOR.fields_by_name:  # TF >= 1.8
        rewrites.disable_meta_optimizer = True
    return set_run_timeout(config, run_timeout_seconds)


# Verification runs (verification/runners.run_file) import a graph through TF's C API: the GraphDef goes into the
# Graph's C graph in one call (TF_GraphImportGraphDefWithResults, what import_graph_def itself calls) and each node
# gets a bare Python Operation wrapper (the one Operation constructor TF uses for C-created ops), without what
# import_graph_def adds per node for building graphs in Python: attr-scope, kernel-label and gradient lookups,
# control-dependency and control-flow-context processing, colocation and device functions (55% of a verified
# optimize of 120k nodes went there). The session runs the C graph either way. Before 1.13 (the oldest C-API TF
# of the matrix; TF 1.7's Graph is not built on the C API unless TF_C_API_GRAPH_CONSTRUCTION=1), and for a graph
# with a function library (import_graph_def registers its functions on the Python side): import_graph_def.
IMPORT_C_API = "c-api"
IMPORT_PYTHON = "import_graph_def"
_C_IMPORT_SINCE = (1, 13, 0)


def run_import_path(graph_def=None, tf_version=None):
    """IMPORT_C_API or IMPORT_PYTHON: how import_for_run imports graph_def (None: a graph without functions)
    in this TF (or in tf_version)."""
    if (tf_version or version()) < _C_IMPORT_SINCE:
        return IMPORT_PYTHON
    if graph_def is not None and (len(graph_def.library.function) or len(graph_def.library.gradient)):
        return IMPORT_PYTHON
    return IMPORT_C_API


def import_for_run(graph, graph_def, wrappers=True, serialized=None):
    """Import graph_def into the fresh tf.Graph `graph` (no prefix) for running it in a session; returns the
    path taken (run_import_path). Either way every node has an Operation (get_operations, get_tensor_by_name
    work); TF's errors are import_graph_def's (ValueError for an invalid graph). wrappers=False: the C path
    makes no Operation at all (a check that the graph imports, nothing to run: a quarter of an unverified
    optimize of 120k nodes went to making them). serialized: graph_def's bytes when the caller has them (the
    file it was parsed from): the C path imports those instead of serializing graph_def again."""
    path = run_import_path(graph_def)
    if path == IMPORT_PYTHON or getattr(graph, "_c_graph", None) is None:
        with graph.as_default():
            v1().import_graph_def(graph_def, name="")
        return IMPORT_PYTHON
    from tensorflow.python.framework import c_api_util, errors, ops
    try:
        from tensorflow.python.client import pywrap_tf_session as c_api  # TF >= 2.2
    except ImportError:
        from tensorflow.python import pywrap_tensorflow as c_api
    scoped = c_api_util.ScopedTFImportGraphDefOptions()
    c_api.TF_ImportGraphDefOptionsSetPrefix(scoped.options, "")
    c_api.TF_ImportGraphDefOptionsSetUniquifyNames(scoped.options, True)
    with graph._mutation_lock():  # a session cannot extend its graph halfway through (as in import_graph_def)
        if serialized is None:
            serialized = graph_def.SerializeToString()
        with c_api_util.tf_buffer(serialized) as serialized:
            try:
                with _c_graph(graph) as c_graph:
                    results = c_api.TF_GraphImportGraphDefWithResults(c_graph, serialized, scoped.options)
                c_api_util.ScopedTFImportGraphDefResults(results)  # deletes them
            except errors.InvalidArgumentError as exc:
                raise ValueError(str(exc))  # as import_graph_def does
        if not wrappers:
            return IMPORT_C_API
        if hasattr(graph, "new_operations"):  # TF 2.13+: the C++ PyGraph lists the ops it has no wrapper for
            c_ops = graph.new_operations()
        else:
            c_ops = list(c_api_util.new_tf_operations(graph))
        if hasattr(ops.Operation, "_from_c_op"):  # TF 2.x
            for c_op in c_ops:
                ops.Operation._from_c_op(c_op=c_op, g=graph)
        else:
            for c_op in c_ops:
                ops.Operation(c_op, graph)
    return IMPORT_C_API


@contextlib.contextmanager
def _c_graph(graph):
    """The TF_Graph of a tf.Graph: a scoped handle from TF 2.x (graph._c_graph.get()), the handle itself before."""
    handle = graph._c_graph
    if hasattr(handle, "get"):
        with handle.get() as c_graph:
            yield c_graph
    else:
        yield handle


def checkpoint_dtypes(reader):
    """{key: tf.DType} of a checkpoint reader; {} when this TF's reader cannot tell (no
    get_variable_to_dtype_map)."""
    return reader.get_variable_to_dtype_map() if hasattr(reader, "get_variable_to_dtype_map") else {}


def asset_file_defs(meta_graph):
    """A MetaGraphDef's asset_file_def list; [] from a TF whose MetaGraphDef proto lacks the field."""
    return list(getattr(meta_graph, "asset_file_def", []))


def attr_shape_dims(shape):
    """Dims of a shape attr as Operation.get_attr returns it: a TensorShapeProto (dim[].size) or a list."""
    return [d.size for d in shape.dim] if hasattr(shape, "dim") else list(shape)


def error_message(exc):
    """An exception's message: TF's OpError.message (without the op trace str() may append), else str()."""
    text = getattr(exc, "message", None) or str(exc)
    return text if isinstance(text, str) else str(text)


# What TF says when a checkpoint's data cannot be read back: a truncated .data shard ('Read less bytes than
# requested'), a flipped bit ('Checksum does not match'), wrapped as DataLossError / OutOfRangeError.
_DAMAGED_CHECKPOINT = re.compile(r"Checksum|less bytes|DATA_LOSS|OUT_OF_RANGE|corrupt")


def is_damaged_checkpoint_error(exc):
    """Did reading a checkpoint tensor fail because its data is damaged (whatever this TF raises)?"""
    return isinstance(exc, tf().errors.OpError) or "less bytes" in str(exc) or "Checksum" in str(exc)


def damaged_checkpoint_line(exc):
    """The line of TF's message that says what is damaged (TF 2.x puts 'Graph execution error:' first and
    what went wrong further down), without the 'ErrorName: ' prefix."""
    lines = [text.strip() for text in error_message(exc).splitlines() if text.strip()]
    telling = [text for text in lines if _DAMAGED_CHECKPOINT.search(text)]
    return re.sub(r"^\w+: ", "", (telling or lines or [type(exc).__name__])[0])


def write_error_reason(exc):
    """'No space left on device' out of TF's 'ResourceExhaustedError: {{function_node ...}} /tmp/x; No space
    left on device [Op:SaveV2]'."""
    text = error_message(exc).strip().splitlines()[0]
    reason = text.rsplit("; ", 1)[-1]
    return re.sub(r"\s*\[Op:\w+\]$", "", reason).strip() or type(exc).__name__


def is_duplicate_saver_error(exc):
    """SavedModelBuilder of TF 1.7 (no `saver` keyword) builds its own Saver, which raises ValueError
    '... same name ...' when the graph holds two variables saved under one name."""
    return isinstance(exc, ValueError) and "same name" in str(exc)


def export_lookup_table(handle, key_dtype, value_dtype):
    """(keys, values) tensors exporting a live lookup table: LookupTableExportV2 for resource handles,
    LookupTableExport for ref handles (TF 1.x tables). Raises UnimplementedError when run on TF < 1.8."""
    from tensorflow.python.ops import gen_lookup_ops
    export = (gen_lookup_ops.lookup_table_export_v2 if handle.dtype == tf().resource
              else gen_lookup_ops.lookup_table_export)
    return export(handle, key_dtype, value_dtype)


LookupApi = namedtuple("LookupApi", ["HashTable", "TextFileInitializer", "TextFileIndex"])


def lookup_api():
    """Static string->id table classes: tf.contrib.lookup before TF 1.14, tf.compat.v1.lookup after."""
    lookup = getattr(v1(), "lookup", None)
    if lookup is not None and hasattr(lookup, "StaticHashTable"):
        return LookupApi(lookup.StaticHashTable, lookup.TextFileInitializer, lookup.TextFileIndex)
    contrib_lookup = importlib.import_module("tensorflow.contrib.lookup")
    return LookupApi(contrib_lookup.HashTable, contrib_lookup.TextFileInitializer, contrib_lookup.TextFileIndex)


# ----------------------------------------------------------------------------------------------- TF-TRT

TrtStatus = namedtuple("TrtStatus", [
    "generation",      # TRT_NONE / TRT_CONTRIB / TRT_CONVERTER_V1 / TRT_CONVERTER_V2
    "module",          # module the gate chose
    "module_file",     # where it was imported from, or None
    "import_error",    # why it did not import, or None
    "built_with_trt",  # True / False / None (unknown)
    "linked_version",  # TensorRT version TF was compiled against, or None
    "library",         # path of libnvinfer found on this machine, or None
    "usable",          # True only when engines can really be built
    "reason",          # one sentence: why not usable (or what will happen)
])


def trt_generation(tf_version=None, prefer=None):
    """The TF-TRT API generation for a TF version; `prefer` is 'v1' or 'v2' (--api), None for auto."""
    tf_version = tf_version or version()
    if tf_version < (1, 7, 0):
        return TRT_NONE
    if tf_version < (1, 14, 0):
        return TRT_CONTRIB
    if prefer == "v1":
        return TRT_CONVERTER_V1
    if prefer == "v2" or tf_version >= (2, 0, 0):
        return TRT_CONVERTER_V2
    return TRT_CONVERTER_V1


def trt_module_name(generation):
    return CONTRIB_MODULE if generation == TRT_CONTRIB else TRT_CONVERT_MODULE


def import_trt_module(generation):
    """(module, error text) for the generation's TF-TRT module."""
    if generation == TRT_NONE:
        return None, "TF {} predates TF-TRT (needs TF >= 1.7)".format(version_string())
    name = trt_module_name(generation)
    try:
        return importlib.import_module(name), None
    except Exception as exc:  # ImportError, or NotFoundError when the .so fails to load
        return None, "{}: {}".format(type(exc).__name__, str(exc).splitlines()[0] if str(exc) else "")


def _trt_enabled_probe():
    """(built_with_trt, linked_version) from the probes each TF generation has, none of which abort."""
    candidates = [
        "tensorflow.compiler.tf2tensorrt._pywrap_py_utils",  # TF 2.x
        "tensorflow.compiler.tf2tensorrt.wrap_py_utils",     # TF 1.14 / 1.15
        "tensorflow.contrib.tensorrt.wrap_conversion",       # TF 1.x contrib
        CONTRIB_MODULE,
    ]
    for name in candidates:
        try:
            module = importlib.import_module(name)
        except Exception:
            continue
        enabled = None
        if hasattr(module, "is_tensorrt_enabled"):
            enabled = bool(module.is_tensorrt_enabled())
        linked = None
        # get_linked_tensorrt_version only reads a compile-time constant; it is safe where TF was built with TRT.
        if enabled and hasattr(module, "get_linked_tensorrt_version"):
            linked = ".".join(str(x) for x in module.get_linked_tensorrt_version())
        if enabled is None and hasattr(module, "get_linked_tensorrt_version"):
            linked_tuple = tuple(module.get_linked_tensorrt_version())
            enabled = any(linked_tuple)
            linked = ".".join(str(x) for x in linked_tuple) if enabled else None
        if enabled is not None:
            return enabled, linked
    return None, None


def find_tensorrt_library():
    """Path/name of a loadable libnvinfer, or None. ctypes failing to load is an OSError, never an abort."""
    candidates = []
    found = ctypes.util.find_library(TRT_LIBRARY)
    if found:
        candidates.append(found)
    candidates += ["libnvinfer.so.{}".format(major) for major in (10, 8, 7, 6, 5, 4)]
    for name in candidates:
        try:
            ctypes.CDLL(name)
            return name
        except OSError:
            continue
    return None


def trt_status(prefer=None):
    """What the gate chose for this TF, and whether TensorRT engines can really be built here."""
    generation = trt_generation(prefer=prefer)
    module, error = import_trt_module(generation)
    module_file = getattr(module, "__file__", None) if module else None
    built, linked = (None, None)
    if module is not None:
        built, linked = _trt_enabled_probe()
    library = find_tensorrt_library()
    usable = bool(module is not None and built is not False and library)
    reason = _trt_reason(generation, module, error, built, library)
    return TrtStatus(generation, trt_module_name(generation) if generation != TRT_NONE else None,
                     module_file, error, built, linked, library, usable, reason)


def _trt_reason(generation, module, error, built, library):
    tf_version = version_string()
    if generation == TRT_NONE:
        return error
    if module is None:
        if generation == TRT_CONTRIB:
            return ("TF {}: the gate chose {} (TF 1.7-1.13), which this TensorFlow build does not include "
                    "(CPU wheels lack it; GPU builds of that era ship it): {}".format(tf_version, CONTRIB_MODULE, error))
        return "TF {}: {} failed to import: {}".format(tf_version, TRT_CONVERT_MODULE, error)
    if built is False:
        return "TF {}: TensorFlow has not been built with TensorRT support (is_tensorrt_enabled() is False)".format(
            tf_version)
    if not library:
        return ("TF {}: TF-TRT imported from {} but the TensorRT library (libnvinfer) is not found on this "
                "machine".format(tf_version, trt_module_name(generation)))
    return "TF {}: TensorRT available ({})".format(tf_version, library)


# TF 2.x's converter constructors (TrtGraphConverter, TrtGraphConverterV2) first call
# _check_trt_version_compatibility(), which raises RuntimeError "Tensorflow has not been built with TensorRT
# support." when is_tensorrt_enabled() is False: read in trt_convert.py of TF 2.12, 2.15, 2.17 and 2.21 (older
# 2.x are not in our matrix: there the converter is called and what it raises is the reason). TF 1.14/1.15's
# check only compares TensorRT versions; their converters run and build 0 engines, so they are called.
_TRT_CONVERTER_REFUSES_UNBUILT_SINCE = (2, 12, 0)
TRT_NOT_BUILT_ERROR = "Tensorflow has not been built with TensorRT support."


def trt_converter_refusal(generation, call, status=None):
    """Why calling this TF's converter class `call` (generation V1 / V2) could only raise, as the probe already
    knows, or None when it must be called (TensorRT may be usable, or the converter runs without it)."""
    if generation not in (TRT_CONVERTER_V1, TRT_CONVERTER_V2) or version() < _TRT_CONVERTER_REFUSES_UNBUILT_SINCE:
        return None
    status = status or trt_status()
    if status.built_with_trt is not False:
        return None
    return ("{}; {} not called: its constructor raises RuntimeError '{}' whenever is_tensorrt_enabled() is False "
            "(TF >= {})".format(status.reason, call, TRT_NOT_BUILT_ERROR,
                                format_version(_TRT_CONVERTER_REFUSES_UNBUILT_SINCE)))


def trt_missing_cause(status):
    """Why a converter that ran builds no engines here, as a phrase (None when TensorRT looks usable)."""
    causes = []
    if status.built_with_trt is False:
        causes.append("TF {} built without TensorRT (is_tensorrt_enabled() is False)".format(version_string()))
    if not status.library:
        causes.append("TensorRT library (libnvinfer) not found")
    return " and ".join(causes) or None


# The earliest TF whose TF-TRT has a keyword or method, read from TF's own sources (contrib trt_convert.py
# of 1.7 / 1.12 and the installed 1.13-2.21). Live code introspects the installed API; this table names the
# minimum version in error messages, and decides when there is nothing to introspect (TF 1.7 CPU wheels).
_TRT_FEATURE_SINCE = {
    ("create_inference_graph", "is_dynamic_op"): (1, 9, 0),
    ("create_inference_graph", "maximum_cached_engines"): (1, 9, 0),
    ("create_inference_graph", "use_calibration"): (1, 13, 0),
    ("calib_graph_to_infer_graph", "is_dynamic_op"): (1, 10, 0),
    ("TrtGraphConverterV2", "build"): (1, 15, 0),
    ("TrtGraphConverterV2.convert", "calibration_input_fn"): (1, 15, 0),
    ("TrtGraphConverterV2", "use_dynamic_shape"): (2, 5, 0),
}
_TRT_API_SINCE = {"v1": (1, 14, 0), "v2": (1, 14, 0)}  # --api v1 / v2: trt_convert's converter classes


# TrtGraphConverter's keyword for the nodes kept out of engines: nodes_blacklist in 1.x, nodes_denylist in 2.x.
TRT_EXCLUDE_NODES_KEYWORDS = ("nodes_denylist", "nodes_blacklist")


def trt_api(module, name):
    """The TF-TRT entry point `name` (a function or converter class) of an imported TF-TRT module, or None
    when this TF's module lacks it (or no module imported)."""
    return getattr(module, name, None) if module is not None else None


def trt_feature_since(call, keyword):
    """Earliest TF version (tuple) whose `call` has `keyword`; (0, 0, 0) when every TF-TRT has it."""
    return _TRT_FEATURE_SINCE.get((call, keyword), (0, 0, 0))


def trt_feature_in_this_tf(call, keyword):
    """By the table: does this TF's `call` have `keyword`? For when the module is missing (nothing to inspect)."""
    return version() >= trt_feature_since(call, keyword)


def trt_api_since(api):
    """Earliest TF with the converter class --api `api` names, or None for 'auto'."""
    return _TRT_API_SINCE.get(api)


def trt_api_in_this_tf(api):
    since = trt_api_since(api)
    return since is None or version() >= since


def format_version(numbers):
    """(1, 9, 0) -> '1.9'; (1, 15, 5) -> '1.15.5'."""
    numbers = list(numbers)
    while len(numbers) > 2 and numbers[-1] == 0:
        numbers.pop()
    return ".".join(str(n) for n in numbers)


def executing_eagerly():
    """True where eager execution is on here (TF 2.x outside graph contexts); TF 1.x graph mode is False."""
    probe = getattr(tf(), "executing_eagerly", None)
    return bool(probe()) if probe is not None else False


def v1_saved_model_api():
    """(SavedModelBuilder class, build_tensor_info, build_signature_def) of the TF1 SavedModel writer."""
    saved_model = v1().saved_model
    return (saved_model.builder.SavedModelBuilder, saved_model.utils.build_tensor_info,
            saved_model.signature_def_utils.build_signature_def)


def load_saved_function(path, signature_key):
    """TF 2.x: (loaded object, signature ConcreteFunction, the same with variables frozen to constants).

    Keep the loaded object alive while using the functions: it owns their resources. The frozen function
    loses the dict structure of the outputs (TF 2.21 gives a list): map keys through the signature's.
    """
    from tensorflow.python.framework import convert_to_constants
    loaded = tf().saved_model.load(path)
    signature = loaded.signatures[signature_key]
    return loaded, signature, convert_to_constants.convert_variables_to_constants_v2(signature)


def python_version():
    return "{}.{}.{}".format(*sys.version_info[:3])


def describe():
    """Everything `migrate env` prints: interpreter, TF, TF-TRT generation and TensorRT state, GPUs."""
    status = trt_status()
    return {
        "python": python_version(),
        "tensorflow": version_string(),
        "tensorflow_file": tf().__file__,
        "tf1_api": v1().__name__,
        "tf_trt_generation": status.generation,
        "tf_trt_module": status.module,
        "tf_trt_module_file": status.module_file,
        "tf_trt_import_error": status.import_error,
        "tensorrt_built_in": status.built_with_trt,
        "tensorrt_linked_version": status.linked_version,
        "tensorrt_library": status.library,
        "tensorrt_usable": status.usable,
        "tensorrt_reason": status.reason,
        "gpus": gpus(),
        "verification_import": run_import_path(),
        "estimator": has_estimator(),
        "onnx": onnx_status().versions if onnx_status().available else "unavailable: " + onnx_status().reason,
    }


def saved_model_builder_kwargs(init_op, asset_tensors, saver=None):
    """Keyword arguments for SavedModelBuilder.add_meta_graph_and_variables naming the init op and assets the
    way this TF's builder takes them: main_op (TF >= 1.5ish, v1 builder) or legacy_init_op; assets_collection.

    asset_tensors: [(string Const tensor, file path)]: each Const is pointed at the file so the builder
    copies it into assets/ (a SavedModel loader feeds asset paths only while its init op runs)."""
    import inspect as _inspect
    from tensorflow.core.framework import attr_value_pb2
    builder = v1().saved_model.builder.SavedModelBuilder
    params = _inspect.signature(builder.add_meta_graph_and_variables).parameters
    kwargs = {}
    if init_op is not None:
        kwargs["main_op" if "main_op" in params else "legacy_init_op"] = init_op
    if asset_tensors:
        for tensor, path in asset_tensors:
            tensor.op._set_attr("value", attr_value_pb2.AttrValue(
                tensor=v1().make_tensor_proto(path.encode("utf-8"))))
        kwargs["assets_collection"] = [tensor for tensor, _ in asset_tensors]
    if saver is not None and "saver" in params:
        kwargs["saver"] = saver
    return kwargs


# ---------------------------------------------------------------------------------------------- ONNX road
# The optional `onnx` extra (setup.cfg): tf2onnx converts, onnx reads/checks, onnxruntime runs. tox.ini installs
# it in the py311 envs (TF 2.12-2.21: tf2onnx 1.17, onnxruntime 1.32). Python 3.7 gets older wheels (tf2onnx
# 1.16.1, onnx 1.14.1, onnxruntime 1.14.1: measured to convert and run under TF 1.15), not in the tox matrix.
ONNX_MODULES = ("tf2onnx", "onnx", "onnxruntime")
ONNX_EXTRA_HINT = "pip install 'migrate[onnx]' (tf2onnx, onnx, onnxruntime)"
ONNX_DEFAULT_OPSET = 13      # TensorRT 8.x parses opsets 7-17; 13 also covers onnxruntime >= 1.6
ONNX_MAX_OPSET = 18          # tf2onnx 1.17's newest

OnnxStatus = namedtuple("OnnxStatus", ["available", "versions", "reason"])
_onnx_status = []


def onnx_status():
    """OnnxStatus(available, {module: version}, reason when not): the onnx extra as this install has it.
    Importing never aborts: an ImportError (or onnx's own AttributeError on an old ml_dtypes) is the reason."""
    if _onnx_status:
        return _onnx_status[0]
    versions, problems = {}, []
    for name in ONNX_MODULES:
        try:
            with _quiet_import():
                module = importlib.import_module(name)
            versions[name] = getattr(module, "__version__", "?")
        except Exception as exc:  # ImportError, or AttributeError from a too-old ml_dtypes
            problems.append("{} does not import ({}: {})".format(name, type(exc).__name__,
                                                                str(exc).splitlines()[0] if str(exc) else ""))
    status = OnnxStatus(not problems, versions, "; ".join(problems) or None)
    _onnx_status.append(status)
    return status


def quiet_native_stderr():
    """A context in which C++ log lines on stderr (TF's Grappler run inside tf2onnx) are silenced, unless
    MIGRATE_DEBUG=1: migrate prints one line per error."""
    return _quiet_import()


def require_onnx(where=None):
    """The (tf2onnx, onnx, onnxruntime) modules, or BadInput saying what is missing and how to get it."""
    status = onnx_status()
    if not status.available:
        from migrate.errors import BadInput
        raise BadInput("the ONNX road is not available here: " + status.reason, where, ONNX_EXTRA_HINT)
    if not is_tf2() and version() < (1, 13, 0):
        from migrate.errors import BadInput
        raise BadInput("tf2onnx needs TensorFlow >= 1.13 (this is {})".format(version_string()), where,
                       "run `migrate onnx` under a newer TF: migrate's frozen graphs import there")
    return tuple(importlib.import_module(name) for name in ONNX_MODULES)


def onnx_np_dtype(elem_type):
    """The numpy dtype of an ONNX TensorProto element type: onnx.helper.tensor_dtype_to_np_dtype from onnx 1.13
    on, onnx.mapping's table before (onnx 1.14.1 is what Python 3.7 gets; the table is gone in onnx 1.20)."""
    onnx = importlib.import_module("onnx")
    if hasattr(onnx.helper, "tensor_dtype_to_np_dtype"):
        return onnx.helper.tensor_dtype_to_np_dtype(elem_type)
    return onnx.mapping.TENSOR_TYPE_TO_NP_TYPE[elem_type]


def fake_quant_op():
    """The op simulating INT8 in a graph (calibration): FakeQuantWithMinMaxVars with narrow_range (255 levels,
    symmetric, as TensorRT's INT8); registered with that attr in every TF of the matrix (1.7-2.21)."""
    definition = op_def("FakeQuantWithMinMaxVars")
    if definition is None or "narrow_range" not in set(a.name for a in definition.attr):
        from migrate.errors import BadInput
        raise BadInput("TF {} has no FakeQuantWithMinMaxVars with narrow_range: INT8 cannot be simulated".format(
            version_string()), None, "use TF >= 1.7")
    return "FakeQuantWithMinMaxVars"


def proto_fields_unset(message, allowed):
    """True when every field of the protobuf `message` that `allowed(field descriptor)` refuses is unset, read
    without copying any value (graph/files.py's Const writer). protobuf 7 descriptors have `is_repeated` and no
    `label`; 3.x-4.x (every TF up to 2.17) have `label`."""
    for field in message.DESCRIPTOR.fields:
        if allowed(field):
            continue
        repeated = getattr(field, "is_repeated", None)
        if repeated if repeated is not None else field.label == field.LABEL_REPEATED:
            if len(getattr(message, field.name)):
                return False
        elif field.message_type is not None:
            if message.HasField(field.name):
                return False
        elif getattr(message, field.name) != field.default_value:
            return False
    return True
