"""Streaming freeze: the frozen GraphDef goes to its file node by node, each weight read from the checkpoint
on its own, so peak memory is about the largest single tensor plus the graph structure (not all weights in a
session, plus the frozen GraphDef, plus the serialized copy).

No session runs. The graph structure is edited as the session path edits it (the outputs, the train/infer
switches, Assign*/Ref* rewrites, devices and pruning come from freezing/outputs.py and rewrites.py), and the
variables become Consts the way TF's convert_variables_to_constants makes them:
  VariableV2 / Variable / VarHandleOp     -> Const holding the checkpoint value (dtype from the variable)
  ReadVariableOp of a converted handle     -> Identity (T = dtype), data input only, as TF does
  Identity chain between handle and read   -> T = the value dtype
  ResourceGather / ResourceGatherNd        -> GatherV2 (+ '<name>/axis' Const) / GatherNd, as TF does
The checkpoint key of a variable is what the graph's own restore op (the saver_def's, else `*restore_all`)
assigns to it; variables that op does not restore, or restores from a slice, are not streamed.

A serialized GraphDef is a sequence of length-prefixed fields: each NodeDef is field 1 (wire type 2), then
library (2) and versions (4); protobuf parsers accept them in any order. A weight node is written as its
NodeDef without the value, followed by the hand-encoded `value` attr whose tensor_content is the numpy
buffer itself (never copied into a protobuf).

What is not handled raises Unsupported (the caller falls back to the session path):
--allow/--deny, lookup tables, partitioned (sliced) variables, variables the restore op does not restore
or the checkpoint lacks (or stores with another shape/dtype), resource handles read by anything but
ReadVariableOp / ResourceGather(Nd) / Assign*VariableOp (function calls, v2 control flow, VarIsInitializedOp),
ops other than Assign*/RefSwitch/RefIdentity that take ref inputs (ScatterUpdate, Apply*, CountUpTo,
ref tensors through while loops: RefEnter/RefExit/RefNextIteration/RefMerge), variables an init op
(main_op / legacy_init_op / table initializers) assigns after the restore, restore ops inside functions."""
import time

from migrate import artifacts
from migrate import model as m
from migrate.freezing.outputs import FreezeRecord
from migrate.freezing.streaming.plan import Unsupported, check_size, plan_freeze

__all__ = ["Unsupported", "freeze_to_file"]
from migrate.freezing.streaming.target import StreamedModel, Target, write_frozen
from migrate.graph.names import tensor_name


def freeze_to_file(model, target, outputs=None, signature=None, set_values=None, allow=None, deny=None,
                   clear_devices=True):
    """Freeze `model` straight into `target` (a path, written in place, or a Target): (StreamedModel,
    FreezeRecord). Raises Unsupported, having written nothing, when the session path is needed;
    BadInput for what is wrong with the input whichever path runs (outputs, --set, unknown ops, size)."""
    started = time.time()
    path = target.path if isinstance(target, Target) else target
    text = target.text if isinstance(target, Target) else path.endswith(artifacts.TEXT_SUFFIXES)
    plan = plan_freeze(model, outputs, signature, set_values, allow, deny, clear_devices)
    check_size(plan, model.path)
    written = write_frozen(plan, path, text, keep=target.weights if isinstance(target, Target) else None)
    inputs = sorted(tensor_name(n.name) for n in plan.graph_def.node if n.op == "Placeholder")
    notes = list(model.provenance) + ["streamed: {} variable(s), {:.1f} MB, read from the checkpoint one at a "
                                      "time".format(len(plan.weights), written / 1e6)]
    result = StreamedModel(path, text, m.FROZEN_GRAPH, model.path, None, checkpoint=None, meta_graph=None,
                           inputs=inputs, outputs=plan.outputs, signatures=model.signatures,
                           producer=model.producer, tags=model.tags, assets=model.assets,
                           provenance=list(model.provenance) + ["froze {} variables from {}".format(
                               plan.variables, model.path)])
    record = FreezeRecord(plan.outputs, plan.how, plan.variables, plan.switches, [], plan.rewritten,
                          plan.nodes_before, len(plan.graph_def.node), time.time() - started, notes)
    return result, record
