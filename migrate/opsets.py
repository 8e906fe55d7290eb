"""Op categories every stage consults. Keep the lists here, in one place; README "Op categories" mirrors them.

TF-TRT's converter tables (which ops each TF-TRT generation converts, dtypes, attribute checks) are op knowledge
too; they are data read from TF's sources and live in migrate/planning/tables.py (`migrate plan`)."""
import re

# v1 control flow (while frames and cond switches): passes and freezing must keep frames intact.
V1_CONTROL_FLOW = frozenset([
    "Enter", "RefEnter", "Exit", "RefExit", "Switch", "RefSwitch", "Merge", "RefMerge",
    "NextIteration", "RefNextIteration", "LoopCond",
])

SWITCH_OPS = frozenset(["Switch", "RefSwitch"])
MERGE_OPS = frozenset(["Merge", "RefMerge"])
NEXT_ITERATION_OPS = frozenset(["NextIteration", "RefNextIteration"])  # a while loop's back edges
# Ops that only exist inside (or at the border of) a v1 while loop.
WHILE_LOOP_OPS = frozenset(["Enter", "RefEnter", "Exit", "RefExit", "LoopCond"]) | NEXT_ITERATION_OPS
# Ops whose meaning lives in graph_def.library functions: we do not look inside them.
CALL_OPS = frozenset(["PartitionedCall", "StatefulPartitionedCall"])
FUNCTION_CALL_OPS = CALL_OPS | frozenset(["If", "StatelessIf", "While", "StatelessWhile", "Case", "StatelessCase",
                                          "SymbolicGradient", "RemoteCall"])

PLACEHOLDER_OPS = frozenset(["Placeholder", "PlaceholderV2", "PlaceholderWithDefault"])
# Ops that draw new values on every run unless seeded (attrs seed and seed2 both 0: unseeded; either set: the
# same sequence in every new session): verification names them when an output that reads one differs.
RANDOM_OPS = frozenset([
    "RandomUniform", "RandomUniformInt", "RandomStandardNormal", "TruncatedNormal", "ParameterizedTruncatedNormal",
    "Multinomial", "RandomShuffle", "RandomGamma", "RandomPoisson", "RandomPoissonV2", "RandomCrop",
])
# How a dropout reads its switch: keep_prob + uniform, then Floor (keep_prob = 1.0 keeps all); or
# uniform >= rate (TF >= 1.13's dropout, rate = 1 - keep_prob; rate = 0.0 keeps all).
DROPOUT_RATE_OPS = frozenset(["GreaterEqual", "Greater"])
# Placeholders whose shape attr is binding (a PlaceholderWithDefault may be fed any shape).
SHAPED_PLACEHOLDER_OPS = frozenset(["Placeholder", "PlaceholderV2"])
# Ops a train/infer switch (freezing.rewrites.switch_values) can be: a PlaceholderWithDefault, or a bool Placeholder.
SWITCH_PLACEHOLDER_OPS = frozenset(["Placeholder", "PlaceholderWithDefault"])
# Source nodes a checkpoint file name may come from that the loader can feed with the prefix.
FEEDABLE_FILENAME_OPS = frozenset(["Const", "Placeholder", "PlaceholderWithDefault"])

# Variables TF's convert_variables_to_constants turns into Consts: what freeze (session and streaming) converts.
FREEZABLE_VARIABLE_OPS = frozenset(["Variable", "VariableV2", "VarHandleOp"])
VARIABLE_OPS = FREEZABLE_VARIABLE_OPS | frozenset(["AutoReloadVariable"])
# Reads of a resource variable's handle TF's converter rewrites (ReadVariableOp -> Identity, ResourceGather ->
# GatherV2, ResourceGatherNd -> GatherNd), and the writes freeze drops.
RESOURCE_READ_OPS = frozenset(["ReadVariableOp", "ResourceGather", "ResourceGatherNd"])
RESOURCE_WRITE_OPS = frozenset(["AssignVariableOp", "AssignAddVariableOp", "AssignSubVariableOp"])
# Ops that only work on ref (mutable) inputs, with the twin freeze rewrites them to (works on a constant).
REF_TWINS = {"RefSwitch": "Switch", "RefEnter": "Enter", "RefExit": "Exit", "RefMerge": "Merge",
             "RefIdentity": "Identity", "RefNextIteration": "NextIteration", "RefSelect": "Select"}
ASSIGN_TWINS = {"Assign": None, "AssignAdd": "Add", "AssignSub": "Sub"}
# Ref-taking ops the streaming freeze rewrites as freeze does, minus those that carry refs through loops.
REF_LOOP_OPS = frozenset(["RefEnter", "RefExit", "RefNextIteration", "RefMerge"])
STREAMABLE_REF_OPS = (frozenset(REF_TWINS) | frozenset(ASSIGN_TWINS)) - REF_LOOP_OPS
# Ops that produce ref tensors: an Identity after them turns a ref into a value.
REF_PRODUCING_OPS = frozenset(["Variable", "VariableV2", "TemporaryVariable", "RefSwitch", "RefEnter",
                               "RefMerge", "RefIdentity", "RefNextIteration", "RefExit"])
# Nodes whose value bounds what a run may allocate (session.run_bound): weights, and weights fed as inputs.
WEIGHT_OPS = FREEZABLE_VARIABLE_OPS | frozenset(["Const", "Placeholder", "PlaceholderV2"])

# Checkpoint reads (input 0: the file name) and the assigns a restore op uses to set a variable from them.
CHECKPOINT_READ_OPS = frozenset(["RestoreV2", "Restore", "RestoreSlice"])
SLICED_READ_OPS = frozenset(["RestoreV2", "RestoreSlice"])  # input 2: shape-and-slice specs
RESTORE_ASSIGN_OPS = frozenset(["Assign", "AssignVariableOp"])

# Ops that pass input 0 through unchanged (what a forwarding-chain walk steps over).
FORWARDING_OPS = frozenset(["Identity", "IdentityN", "StopGradient", "Snapshot", "PreventGradient", "NoOp"])
PASS_THROUGH_OPS = frozenset(["Identity", "Snapshot", "StopGradient"])
IDENTITY_OPS = frozenset(["Identity", "Snapshot"])
# Between a string input and its parse op: TF 2.x's parse_single_example reshapes the scalar to [1].
RESHAPE_OPS = frozenset(["Reshape", "ExpandDims", "Squeeze"])
SHAPE_OPS = frozenset(["Shape", "Size", "Rank"])  # outputs known from a static shape alone

# fold_batch_norms: a linear op, then an optional bias, then a batch norm in inference mode.
LINEAR_OPS = frozenset(["Conv2D", "DepthwiseConv2dNative", "MatMul"])
BATCH_NORM_OPS = frozenset(["FusedBatchNorm", "FusedBatchNormV2", "FusedBatchNormV3"])
BIAS_OPS = frozenset(["BiasAdd", "Add", "AddV2", "Sub"])
ORDERED_BIAS_OPS = frozenset(["Sub", "BiasAdd"])  # the bias must be the second operand

# Ops that only make sense while training or saving; they never belong in an inference graph.
TRAINING_ONLY_OPS = frozenset([
    "Assign", "AssignAdd", "AssignSub", "AssignVariableOp", "AssignAddVariableOp", "AssignSubVariableOp",
    "ScatterAdd", "ScatterSub", "ScatterUpdate", "ResourceScatterAdd", "ResourceScatterUpdate",
    "SaveV2", "Save", "SaveSlices", "RestoreV2", "Restore", "RestoreSlice", "MergeV2Checkpoints", "ShardedFilename",
    "ShardedFilespec", "ScalarSummary", "HistogramSummary", "ImageSummary", "AudioSummary", "TensorSummary",
    "TensorSummaryV2", "MergeSummary", "WriteSummary", "WriteScalarSummary", "IsVariableInitialized",
    "VarIsInitializedOp", "BroadcastGradientArgs", "ZerosLike", "OnesLike",
])
APPLY_OP = re.compile(r"^(Resource)?(Sparse)?Apply[A-Z]")  # ApplyAdam, ResourceApplyGradientDescent, ...

FORWARDING_DEBUG_OPS = frozenset(["CheckNumerics", "CheckNumericsV2", "Print"])  # output 0 = input 0
SINK_DEBUG_OPS = frozenset(["Assert", "PrintV2"])                                  # no outputs
DEBUG_OPS = FORWARDING_DEBUG_OPS | SINK_DEBUG_OPS  # what strip_debug strips and inspect reports

TABLE_OPS = frozenset([
    "HashTable", "HashTableV2", "MutableHashTable", "MutableHashTableV2", "MutableHashTableOfTensors",
    "MutableHashTableOfTensorsV2", "MutableDenseHashTable", "MutableDenseHashTableV2",
    "LookupTableFind", "LookupTableFindV2", "LookupTableImport", "LookupTableImportV2",
    "LookupTableSize", "LookupTableSizeV2", "InitializeTable", "InitializeTableV2",
    "InitializeTableFromTextFile", "InitializeTableFromTextFileV2",
])

# Table initializers that read the file their second input names (a model's vocabulary asset).
FILE_TABLE_INITIALIZERS = frozenset(["InitializeTableFromTextFile", "InitializeTableFromTextFileV2"])
TABLE_FIND_OPS = frozenset(["LookupTableFind", "LookupTableFindV2"])
KEY_VALUE_TABLE_INITIALIZERS = frozenset(["InitializeTable", "InitializeTableV2"])  # inputs: handle, keys, values
# Static tables: freeze reads their contents and re-initializes them from constants (migrate_init_tables).
HASH_TABLE_OPS = frozenset(["HashTable", "HashTableV2"])

# Ops that parse serialized tf.Example protos (input 0: the serialized string tensor); SINGLE_: one scalar proto.
EXAMPLE_PARSE_OPS = frozenset(["ParseExample", "ParseExampleV2", "ParseSingleExample"])
SINGLE_EXAMPLE_PARSE_OPS = frozenset(["ParseSingleExample"])

# Ops that touch files, the network or run Python: never executed from a model without --allow-unsafe-ops.
# (Checkpoint Save/Restore ops are listed too: we restore with our own reader, never by running a model's
# restore ops, so any such op the model would run itself is refused.)
UNSAFE_OPS = frozenset([
    "ReadFile", "WriteFile", "MatchingFiles", "FixedLengthRecordReader", "FixedLengthRecordReaderV2",
    "TFRecordReader", "TFRecordReaderV2", "TextLineReader", "TextLineReaderV2", "WholeFileReader",
    "WholeFileReaderV2", "IdentityReader", "IdentityReaderV2", "LMDBReader", "ReaderReadV2", "ReaderRead",
    "TFRecordDataset", "TextLineDataset", "FixedLengthRecordDataset",
    "Save", "SaveV2", "SaveSlices", "Restore", "RestoreV2", "RestoreSlice", "MergeV2Checkpoints",
    "PyFunc", "PyFuncStateless", "EagerPyFunc",
    "DebugIdentity", "DebugNanCount", "DebugNumericSummary", "DebugIdentityV2",
    "WriteSummary", "CreateSummaryFileWriter", "CreateSummaryDbWriter", "ImportEvent", "WriteAudioSummary",
    "WriteGraphSummary", "WriteHistogramSummary", "WriteImageSummary", "WriteRawProtoSummary",
    "WriteScalarSummary", "FlushSummaryWriter", "SummaryWriter",
    "InitializeTableFromTextFile", "InitializeTableFromTextFileV2",  # reads the vocabulary file it names
    "Rpc", "TryRpc",
])


# Input pipelines: queues, tf.data iterators, staging areas. Nothing in an exported model can feed them; the
# boundary ops (a dequeue, GetNext) are where migrate puts placeholders (--input-at), and each op here can
# block a session run forever when nothing fills it.
QUEUE_OPS = frozenset([
    "FIFOQueue", "FIFOQueueV2", "RandomShuffleQueue", "RandomShuffleQueueV2", "PaddingFIFOQueue",
    "PaddingFIFOQueueV2", "PriorityQueue", "PriorityQueueV2", "FakeQueue",
    "QueueEnqueue", "QueueEnqueueV2", "QueueEnqueueMany", "QueueEnqueueManyV2", "QueueClose", "QueueCloseV2",
    "QueueSize", "QueueSizeV2", "QueueIsClosed", "QueueIsClosedV2",
])
DEQUEUE_OPS = frozenset([
    "QueueDequeue", "QueueDequeueV2", "QueueDequeueMany", "QueueDequeueManyV2", "QueueDequeueUpTo",
    "QueueDequeueUpToV2",
])
BATCHED_DEQUEUE_OPS = frozenset(["QueueDequeueMany", "QueueDequeueManyV2", "QueueDequeueUpTo",
                                 "QueueDequeueUpToV2"])  # add a batch dim to each queue component
ITERATOR_OPS = frozenset([
    "Iterator", "IteratorV2", "OneShotIterator", "AnonymousIterator", "AnonymousIteratorV2",
    "AnonymousIteratorV3", "MultiDeviceIterator", "MakeIterator", "IteratorFromStringHandle",
    "IteratorFromStringHandleV2", "IteratorToStringHandle", "DeleteIterator",
])
GET_NEXT_OPS = frozenset(["IteratorGetNext", "IteratorGetNextSync"])
# Where a pipeline hands data to the model: the dequeue or GetNext.
PIPELINE_BOUNDARY_OPS = DEQUEUE_OPS | GET_NEXT_OPS
# Ops that wait for data someone else provides (a timed-out run names the first of these it needed).
BLOCKING_OPS = PIPELINE_BOUNDARY_OPS | frozenset([
    "Unstage", "StagePeek", "MapUnstage", "MapPeek", "MapUnstageNoKey", "OrderedMapUnstage", "OrderedMapPeek",
    "OrderedMapUnstageNoKey", "BarrierTakeMany", "ReaderRead", "ReaderReadV2", "ReaderReadUpTo",
    "ReaderReadUpToV2", "IteratorGetNextAsOptional",
])
INPUT_PIPELINE_OPS = QUEUE_OPS | ITERATOR_OPS | BLOCKING_OPS

# Reads of a variable's initialization state: on a frozen variable (a constant) the answer is True.
IS_INITIALIZED_OPS = frozenset(["IsVariableInitialized", "VarIsInitializedOp"])


# Debug ops whose `output_stream` attr picks where they print: these console/log streams are safe; any other
# value ("file:///any/path", which appends to that file) writes a file and makes the node unsafe.
STREAM_DEBUG_OPS = frozenset(["PrintV2"])
CONSOLE_STREAMS = frozenset(["stderr", "stdout", "log(info)", "log(warning)", "log(error)"])


def writes_file(node):
    """The output_stream a debug node (NodeDef) writes to when it is a file, else None."""
    if node.op not in STREAM_DEBUG_OPS or "output_stream" not in node.attr:
        return None
    stream = node.attr["output_stream"].s
    stream = stream.decode("utf-8", "replace") if isinstance(stream, bytes) else stream
    return None if stream in CONSOLE_STREAMS else stream


def is_unsafe(node):
    """True when running this NodeDef touches files, the network or Python."""
    return node.op in UNSAFE_OPS or writes_file(node) is not None


# Graph plumbing that is never a model output even when nothing reads it (output inference skips it):
# input pipelines (queues, readers, iterators, datasets), summaries, and ops with no outputs at all.
NEVER_OUTPUT_OPS = re.compile(
    r"^(Queue[A-Z]\w*|\w*QueueV?\d*|\w*Reader\w*|Iterator\w*|\w*IteratorV?\d*|MakeIterator|"
    r"OneShotIterator|\w*Dataset(V\d)?|\w*Summary(V\d)?|SummaryWriter|NoOp|Assert|PrintV2|"
    r"Save(V2|Slices)?|MergeV2Checkpoints)$")
# v1 cond pivots: Identity of a Switch output that the branch's ops take as a control input.
COND_PIVOT = re.compile(r"(^|/)switch_[tf](_\d+)?$")
# Attrs on NodeDefs in the graphs migrate writes, recording the model's inputs and outputs (outputs.py):
# a list of output indices of that node. A leading underscore: TF's importer skips such attrs (internal
# attrs, like _class and _output_shapes) and no kernel reads them.
RECORDED_OUTPUT_ATTR = "_migrate_outputs"
RECORDED_INPUT_ATTR = "_migrate_inputs"


# Never an inferred output: sources, variables and their reads.
NOT_OUTPUT_OPS = frozenset(["Const", "Placeholder", "PlaceholderWithDefault", "VarHandleOp", "Variable",
                            "VariableV2", "ReadVariableOp", "VarIsInitializedOp", "IsVariableInitialized"])
VARIABLE_READ_OPS = frozenset(["Identity", "ReadVariableOp"])  # how a weight is read (x/read, ReadVariableOp)


def is_training_only(op):
    return op in TRAINING_ONLY_OPS or bool(APPLY_OP.match(op))


# ------------------------------------------------------------------------------------------ well-known names
# The node freeze adds to re-initialize static lookup tables from constants: run it once before inference.
TABLE_INIT_NODE = "migrate_init_tables"
# Collections / signatures whose ops the loaders run after the restore: tf.GraphKeys.TABLE_INITIALIZERS
# (session.py's _init_tables, for checkpoints and session bundles) and tf.saved_model.loader.load's main op
# (saved_model_main_op, else legacy_init_op) and TF2's init signature.
TABLE_INIT_COLLECTION = "table_initializer"
SAVED_MODEL_INIT_COLLECTIONS = ("saved_model_main_op", "legacy_init_op")
INIT_COLLECTIONS = (TABLE_INIT_COLLECTION,) + SAVED_MODEL_INIT_COLLECTIONS
SAVED_MODEL_TRAIN_COLLECTION = "saved_model_train_op"
INIT_SIGNATURE = "__saved_model_init_op"
RESTORE_ALL = "restore_all"  # tf.train.Saver's restore op: `save/restore_all`


def _node_name(tensor):
    return tensor.lstrip("^").split(":")[0]


def restore_root(graph_def, meta_graph=None):
    """Name of the op a loader runs to restore a model's variables from its checkpoint: the saver_def's
    restore op when the meta graph has one, else the first NoOp named `*restore_all` in graph order (what a
    tf.train.Saver writes); None when there is neither. Session loading, streaming and safety all ask here."""
    if meta_graph is not None and meta_graph.HasField("saver_def") and meta_graph.saver_def.restore_op_name:
        return _node_name(meta_graph.saver_def.restore_op_name)
    for node in graph_def.node:
        if node.name.endswith(RESTORE_ALL) and node.op == "NoOp":
            return node.name
    return None


def restore_filename(graph_def, meta_graph=None):
    """Name of the node the loader feeds with the checkpoint prefix: the saver_def's filename tensor, else
    the file-name input of the first checkpoint read in graph order; None when there is none."""
    if meta_graph is not None and meta_graph.HasField("saver_def") and meta_graph.saver_def.restore_op_name:
        return _node_name(meta_graph.saver_def.filename_tensor_name)
    for node in graph_def.node:
        if node.op in CHECKPOINT_READ_OPS and node.input:
            return _node_name(node.input[0])
    return None


def categorize(op_histogram):
    """{category: sorted op names present} for the ops in a {op: count} histogram."""
    ops = set(op_histogram)
    return {
        "training_only": sorted(op for op in ops if is_training_only(op)),
        "v1_control_flow": sorted(ops & V1_CONTROL_FLOW),
        "tables": sorted(ops & TABLE_OPS),
        "debug": sorted(ops & DEBUG_OPS),
        "unsafe": sorted(ops & UNSAFE_OPS),
        "variables": sorted(ops & VARIABLE_OPS),
        "input_pipeline": sorted(ops & INPUT_PIPELINE_OPS),
    }

# The ONNX road (migrate/onnx): private attrs (`_` + name, no kernel reads them) the ONNX-prep step keeps for
# tf2onnx; every other private attr goes, since tf2onnx copies attrs into ONNX attributes and onnx.helper cannot
# encode some (a scalar TensorShapeProto or an empty NameAttrList: "TypeError: '' is not an accepted attribute
# value").
ONNX_KEPT_PRIVATE_ATTRS = frozenset(["_output_shapes"])

# INT8 calibration (`migrate calibrate`): the ops whose output 0 TensorRT quantizes, as it places INT8 ranges on
# the outputs of compute layers (convolutions, matrix products, bias/element-wise adds, activations, pooling,
# concatenation, batch norm). Float graph inputs (Placeholders) are calibrated too. README "Op categories".
QUANTIZABLE_OPS = frozenset([
    "Conv2D", "Conv3D", "DepthwiseConv2dNative", "Conv2DBackpropInput",
    "MatMul", "BatchMatMul", "BatchMatMulV2",
    "BiasAdd", "Add", "AddV2", "Sub", "Mul", "AddN",
    "Relu", "Relu6", "LeakyRelu", "Elu", "Selu", "Sigmoid", "Tanh", "Softplus", "Softsign",
    "MaxPool", "AvgPool", "MaxPool3D", "AvgPool3D", "MaxPoolV2", "Mean",
    "ConcatV2", "Concat",
    "FusedBatchNorm", "FusedBatchNormV2", "FusedBatchNormV3",
])
CALIBRATED_INPUT_OPS = frozenset(["Placeholder", "PlaceholderV2"])
# Where v1 control flow starts (a cond's Switch, a while frame's Enter) and ends: the nodes between are run
# conditionally or once per iteration, and calibration leaves them out.
CONTROL_FLOW_ENTRY_OPS = frozenset(["Switch", "RefSwitch", "Enter", "RefEnter"])
CONTROL_FLOW_EXIT_OPS = frozenset(["Merge", "RefMerge", "Exit", "RefExit"])
