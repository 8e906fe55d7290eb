"""Op categories every stage consults. Keep the lists here, in one place; README "Op categories" mirrors them.

TF-TRT's converter tables (which ops each TF-TRT generation converts, dtypes, attribute checks) are op knowledge
too; they are data read from TF's sources and live in migrate/planning/tables.py (`migrate plan`)."""
import re

# v1 control flow (while frames and cond switches): passes and freezing must keep frames intact.
V1_CONTROL_FLOW = frozenset([
    "Enter", "RefEnter", "Exit", "RefExit", "Switch", "RefSwitch", "Merge", "RefMerge",
    "NextIteration", "RefNextIteration", "LoopCond",
])

VARIABLE_OPS = frozenset(["Variable", "VariableV2", "VarHandleOp", "AutoReloadVariable"])

# Ops that only make sense while training or saving; they never belong in an inference graph.
TRAINING_ONLY_OPS = frozenset([
    "Assign", "AssignAdd", "AssignSub", "AssignVariableOp", "AssignAddVariableOp", "AssignSubVariableOp",
    "ScatterAdd", "ScatterSub", "ScatterUpdate", "ResourceScatterAdd", "ResourceScatterUpdate",
    "SaveV2", "Save", "SaveSlices", "RestoreV2", "Restore", "RestoreSlice", "MergeV2Checkpoints", "ShardedFilename",
    "ShardedFilespec", "ScalarSummary", "HistogramSummary", "ImageSummary", "AudioSummary", "TensorSummary",
    "TensorSummaryV2", "MergeSummary", "WriteSummary", "WriteScalarSummary", "IsVariableInitialized",
    "VarIsInitializedOp", "BroadcastGradientArgs", "ZerosLike", "OnesLike",
])
_APPLY_OP = re.compile(r"^(Resource)?(Sparse)?Apply[A-Z]")  # ApplyAdam, ResourceApplyGradientDescent, ...

DEBUG_OPS = frozenset(["Assert", "CheckNumerics", "Print", "PrintV2"])

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


def is_training_only(op):
    return op in TRAINING_ONLY_OPS or bool(_APPLY_OP.match(op))


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
