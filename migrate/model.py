"""The one record that travels through every stage: what a model is, where its weights live."""
from collections import namedtuple

# Kinds of artifact we load.
CHECKPOINT = "checkpoint"            # meta graph + checkpoint (V1 or V2), incl. Estimator model_dirs
GRAPH_WITH_CHECKPOINT = "graph+checkpoint"  # graph .pb/.pbtxt holding variables + a checkpoint beside it
FROZEN_GRAPH = "frozen_graph"        # GraphDef with weights as constants
SAVED_MODEL = "saved_model"          # TF1 (or TF2) SavedModel directory
SESSION_BUNDLE = "session_bundle"    # pre-SavedModel export: export.meta + export checkpoint

# A signature: inputs/outputs map keys to tensor names ('x' -> 'x:0').
# specs: {tensor: (dtype name, dims or None)} for the inputs, when the artifact recorded them.
Signature = namedtuple("Signature", ["name", "inputs", "outputs", "method", "specs"])
Signature.__new__.__defaults__ = (None,)


class Model(object):
    """A loaded artifact. Weights stay where they are (checkpoint, constants, SavedModel variables).

    graph_def       GraphDef (constants included for frozen graphs)
    meta_graph      MetaGraphDef or None (checkpoint, SavedModel, session bundle)
    checkpoint      checkpoint prefix the weights come from, or None
    signatures      {name: Signature}
    inputs/outputs  tensor names chosen for this model (signature, user, or inferred)
    producer        TF version string that wrote it when recorded ('1.15.5'), else None
    provenance      list of strings: what was done to get here ('loaded ...', 'froze ...')
    """

    def __init__(self, kind, path, graph_def, meta_graph=None, checkpoint=None, signatures=None,
                 inputs=None, outputs=None, producer=None, tags=None, assets=None, provenance=None,
                 saved_model_dir=None):
        self.kind = kind
        self.path = path
        self.graph_def = graph_def
        self.meta_graph = meta_graph
        self.checkpoint = checkpoint
        self.signatures = signatures or {}
        self.inputs = list(inputs or [])
        self.outputs = list(outputs or [])
        self.producer = producer
        self.tags = list(tags or [])
        self.assets = dict(assets or {})
        self.provenance = list(provenance or [])
        self.saved_model_dir = saved_model_dir

    def derive(self, **changes):
        """A new Model with some fields changed; provenance grows, the original is untouched."""
        fields = dict(self.__dict__)
        note = changes.pop("note", None)
        fields.update(changes)
        if note:
            fields["provenance"] = list(self.provenance) + [note]
        kind = fields.pop("kind")
        path = fields.pop("path")
        graph_def = fields.pop("graph_def")
        return Model(kind, path, graph_def, **fields)

    def __repr__(self):
        return "Model(kind={!r}, path={!r}, nodes={}, checkpoint={!r})".format(
            self.kind, self.path, len(self.graph_def.node), self.checkpoint)
