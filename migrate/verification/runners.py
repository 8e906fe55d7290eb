"""Runners: one per artifact kind, each `run(feeds) -> {output tensor: array}` (the idea of Polygraphy's runners;
compare.py is the comparator). feeds: {tensor name: array}; a feeds.Feeds carrying an `alternate` batch gives a
feeds.Results whose `alternate` is the run on it (what compare uses to tell outputs the inputs do not reach).

  SessionRunner(model, outputs)          a Model (checkpoint, SavedModel, frozen graph in memory, ...) restored
                                         in its own Graph + Session (session.Restored)
  GraphFileRunner(path, outputs, where)  a binary frozen GraphDef file, its large Consts fed from arrays read
                                         from the file (the weights are in memory once)
  SignatureRunner(directory, sig)        one signature of a written SavedModel, loaded the way users load it
  OnnxRunner(model, outputs)             an ONNX model (migrate/onnx) run by onnxruntime on the CPU

A new kind is a class with `run(feeds)` and `where` (what its errors name); check() runs a
reference and a candidate and compares. Errors a run raises are the runner's (BadInput naming `where`)."""
import gc

from migrate import gcpause, tfcompat
from migrate.freezing.streaming import target as stream_target
from migrate.graph import files as graph_files
from migrate.errors import BadInput
from migrate.graph.names import tensor_name
from migrate.verification import compare as comparison, randomness
from migrate.verification.feeds import Results, plain, present_feeds, with_tensors


class SessionRunner(object):
    """A Model run in its own Graph + Session: run(feeds) -> {output: array} (only the feeds its graph has).
    fixed: {tensor: value} fed on every run besides the feeds (train/infer switches set with --set)."""

    def __init__(self, model, outputs, fixed=None):
        self.model, self.outputs, self.where, self.fixed = model, list(outputs), model.path, fixed

    def run(self, feeds):
        return run_model(self.model, self.outputs, with_tensors(feeds, self.fixed))


class GraphFileRunner(object):
    """A binary frozen GraphDef file run with its weights fed (run_file); `where` names it in errors."""

    def __init__(self, path, outputs, where=None, reuse=None):
        self.path, self.outputs, self.where, self.reuse = path, list(outputs), where, reuse

    def run(self, feeds):
        return run_file(self.path, self.outputs, feeds, self.where, reuse=self.reuse)


class SignatureRunner(object):
    """One signature of the SavedModel at `directory` (run_signature); outputs keyed by the sig's tensors."""

    def __init__(self, directory, sig):
        self.directory, self.sig, self.where = directory, sig, directory

    def run(self, feeds):
        return run_signature(self.directory, self.sig, feeds)


class OnnxRunner(object):
    """An ONNX model (migrate/onnx/model.py OnnxModel) run by onnxruntime on the CPU; feeds by ONNX input name
    (tf2onnx keeps TF tensor names: 'x:0'), feeds it has no input for ignored."""

    def __init__(self, model, outputs):
        self.model, self.outputs, self.where = model, list(outputs), model.path

    def run(self, feeds):
        return run_batches(lambda batch: self.model.run(self.outputs, batch), feeds)


def runner_for(model, outputs):
    """The runner for a loaded model: OnnxRunner for an ONNX model, else SessionRunner."""
    return OnnxRunner(model, outputs) if model.kind == "onnx" else SessionRunner(model, outputs)


def check(reference, candidate, feeds, rtol=1e-5, atol=1e-5, candidate_first=False):
    """[Comparison] of two runners on the same feeds (the candidate gets them without the alternate batch).
    candidate_first: run the candidate first (its fed weights are freed before the reference loads)."""
    if candidate_first:
        actual = candidate.run(plain(feeds))
        expected = reference.run(feeds)
    else:
        expected = reference.run(feeds)
        actual = candidate.run(plain(feeds))
    return comparison.compare(expected, actual, rtol, atol)


def run_model(model, outputs, feeds):
    """{output: array} from running `model` on `feeds` (only the feeds its graph has)."""
    from migrate.session import Restored
    with Restored(model) as restored:
        results = run_batches(lambda batch: restored.run(list(outputs), present_feeds(restored.graph, batch)), feeds)
    results.random = lambda: randomness.explain(model.graph_def, outputs)
    return results


def run_batches(run, feeds):
    """Results of run(feeds), with run(feeds.alternate) as its alternate when feeds carry one."""
    results = Results(run(feeds))
    results.origin = getattr(feeds, "origin", Results.origin)
    alternate = getattr(feeds, "alternate", None)
    if alternate is not None:
        results.alternate = run(alternate)
    return results


def check_models(reference, candidate, outputs, feeds, rtol=1e-5, atol=1e-5):
    """Run both models on the same feeds, each in its own session; [Comparison] per output."""
    return check(SessionRunner(reference, outputs), SessionRunner(candidate, outputs), feeds, rtol, atol)


def check_frozen(reference, candidate, outputs, feeds, rtol=1e-5, atol=1e-5, reuse=None):
    """check_models, lean for a streamed candidate (stream_target.StreamedModel in a binary file): the file is read
    back node by node and run with each large Const (a weight) imported as a Placeholder fed the value parsed
    from that Const (GraphFileRunner). Same nodes, same values, same computation, but the weights are in memory
    once (TF's import_graph_def would hold the GraphDef, its serialized copy, TF's own parse and the graph's
    NodeDefs at the same time). Other candidates: check_models. reuse: {tensor: array} the freeze wrote,
    fed where the file holds their bytes exactly (graph_files.read_back)."""
    if not isinstance(candidate, stream_target.StreamedModel) or candidate.text or candidate.file_path is None:
        return check_models(reference, candidate, outputs, feeds, rtol, atol)
    # The candidate first: its weights are numpy arrays, freed when it is done. The reference's variables
    # stay in the process after its session is deleted (TF 2.21 keeps them), so it goes last.
    return check(SessionRunner(reference, outputs), GraphFileRunner(candidate.file_path, outputs, candidate.path,
                                                                    reuse), feeds, rtol, atol, candidate_first=True)


def run_file(path, outputs, feeds, where=None, keep=None, reuse=None):
    """{output: array} from a binary frozen GraphDef file, its large Consts fed from aligned arrays read
    from the file (read_back): the weights are in memory once, TF's import never copies them. The session
    runs the graph as written (session.session_config: Grappler off). keep: a dict given the {tensor: array}
    fed; reuse: such a dict from another file, arrays byte-identical to this file's Consts (read_back)."""
    from migrate import session as session_mod
    structure, weights = graph_files.read_back(path, reuse=reuse)
    if keep is not None:
        keep.update(weights)
    where = where or path
    session_mod.check_ops_known(structure, where)
    v1 = tfcompat.v1()
    with gcpause.young_only():  # the collection below walks this graph's objects, not all of TF's
        graph = v1.Graph()
        with gcpause.paused():  # one Operation per node, none freed until the graph goes
            session_mod.importing(where, tfcompat.import_for_run, graph, structure)  # C API from TF 1.13
            del structure
            session_mod.check_run_memory(graph, where)
        try:
            with v1.Session(graph=graph, config=session_mod.session_config()) as sess:
                if _has_op(graph, session_mod.TABLE_INIT_NODE):
                    session_mod.run_checked(sess, graph.get_operation_by_name(session_mod.TABLE_INIT_NODE),
                                            None, where)
                fetches = [graph.get_tensor_by_name(tensor_name(name)) for name in outputs]

                def run(batch):
                    fed = dict((graph.get_tensor_by_name(name), value) for name, value in
                               present_feeds(graph, batch).items())
                    fed.update((graph.get_tensor_by_name(name), value) for name, value in weights.items())
                    return dict(zip(outputs, session_mod.run_checked(sess, fetches, fed, where)))
                results = run_batches(run, feeds)
        finally:
            # A tf.Graph and its Operations hold each other: only the cyclic collector frees them, and with them
            # TF's graph (~3 KB per node). Collected here, before the next graph (check_files' reference) is
            # built.
            graph = sess = fetches = run = None
            gc.collect()
    results.random = lambda: randomness.explain(graph_files.read_back(path, values=False)[0], outputs)
    return results


def _has_op(graph, name):
    try:
        graph.get_operation_by_name(name)
        return True
    except KeyError:
        return False


def check_files(reference_path, candidate_path, outputs, feeds, rtol=1e-5, atol=1e-5, output=None):
    """check_models for two binary frozen GraphDef files, each run by run_file, one after the other
    (the candidate first). The reference is fed the candidate's arrays for the Consts whose bytes it holds
    too, every byte compared (graph_files.read_back's reuse): the same values reading them would give, without
    a second copy of the weights; the others are freed before the reference's own are read.

    The candidate is a temp file the user never sees: when it fails to run, the reference runs next and its
    error (naming the input: the feeds or the input graph are at fault) is the one raised; when the reference
    runs where the candidate failed, the result is wrong: VerificationFailed naming `output` (also the name
    other errors give the candidate: its final path, not the temp file)."""
    from migrate.errors import VerificationFailed
    fed = {}  # the candidate's weights: the reference reuses those its own Consts hold byte for byte
    try:
        actual = run_file(candidate_path, outputs, plain(feeds), output, keep=fed)
        failure = None
    except BadInput as exc:
        actual, failure = None, exc.what
    expected = run_file(reference_path, outputs, feeds, reuse=fed)
    if failure is not None:
        raise VerificationFailed("the optimized graph fails where the input runs: " + failure,
                                 output or candidate_path, "nothing was written; leave out the pass that broke it "
                                 "(--passes) and report it")
    return comparison.compare(expected, actual, rtol, atol)


def run_signature(directory, sig, feeds):
    """{output tensor name: array} from the SavedModel at `directory`, fed by the signature's input keys.

    TF 2.x: tf.saved_model.load (the way users and TF Serving's Python clients load it); TF 1.x: the v1
    loader in a fresh Graph + Session."""
    import numpy as np
    by_tensor = dict((tensor, key) for key, tensor in sig.inputs.items())
    if tfcompat.is_tf2():
        tf = tfcompat.tf()
        loaded = tf.saved_model.load(directory)
        function = loaded.signatures[sig.name]
        kwargs = dict((by_tensor[t], tf.constant(v)) for t, v in feeds.items() if t in by_tensor)
        results = function(**kwargs)
        return dict((sig.outputs[key], np.asarray(value)) for key, value in results.items())
    v1 = tfcompat.v1()
    graph = v1.Graph()
    from migrate import session as session_mod
    with v1.Session(graph=graph, config=session_mod.session_config()) as session:
        meta = v1.saved_model.loader.load(session, [v1.saved_model.tag_constants.SERVING], directory)
        saved = meta.signature_def[sig.name]
        feed_dict = dict((saved.inputs[by_tensor[t]].name, v) for t, v in feeds.items() if t in by_tensor)
        keys = sorted(sig.outputs)
        values = session_mod.run_checked(session, [saved.outputs[k].name for k in keys], feed_dict, directory)
    return dict((sig.outputs[k], v) for k, v in zip(keys, values))
