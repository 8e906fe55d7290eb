"""Freeze: restore a model in its own session, turn the variables its outputs need into constants,
drop everything training-only, and keep tables working.

Steps (each noted in the FreezeRecord):
  outputs   --outputs, else the signature, else ranked forward sinks (ambiguity is an error that lists them)
  restore   session.Restored: meta graph / SavedModel / graph + checkpoint, tables initialized
  switches  train/infer PlaceholderWithDefault (is_training, keras_learning_phase) -> Const; --set overrides
  tables    contents read from the live tables, re-initialized from constants by node `migrate_init_tables`
  convert   TF's convert_variables_to_constants (ref + resource variables, pruned to the outputs)
  rewrite   what would not import frozen: Assign*/Ref* ops left reachable become their value-semantics twins

Modules: outputs.py (which tensors to keep, FreezeRecord), rewrites.py (switches, ref/resource rewrites),
session_path.py (restore in a session + TF's converter), streaming/ (weights streamed from the checkpoint
straight into the file: plan.py, reader.py, target.py)."""
from migrate.freezing import session_path, streaming




def freeze(model, outputs=None, signature=None, set_values=None, allow=None, deny=None, clear_devices=True,
           stream_to=None):
    """(frozen Model, FreezeRecord). The input model is not modified.

    stream_to (a path or streaming.Target): write the frozen graph there by streaming weights from the
    checkpoint one tensor at a time (streaming/) when that path applies; the Model returned then reads its
    GraphDef from that file. Otherwise (a note says why) the session path runs and nothing is written."""
    fallback = None
    if stream_to is not None:
        try:
            return streaming.freeze_to_file(model, stream_to, outputs, signature, set_values, allow, deny,
                                            clear_devices)
        except streaming.Unsupported as why:
            fallback = "in-memory freeze: streaming does not apply ({})".format(why)
    return session_path.freeze(model, outputs, signature, set_values, allow, deny, clear_devices, fallback)
