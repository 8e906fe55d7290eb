"""Runs of written artifacts for verification: a streamed frozen graph file run with its weights fed
(check_pair, run_file, check_files) and a SavedModel signature (run_signature)."""
from migrate import stream, tfcompat
from migrate.errors import BadInput
from migrate.graph.names import tensor_name


def check_pair(reference, candidate, outputs, feeds, rtol=1e-5, atol=1e-5):
    """verify.check_pair, lean for a streamed candidate: the reference runs first and closes its session;
    then the streamed file is read back node by node and run with each large Const (a weight) imported as
    a Placeholder fed the value parsed from that Const. Same nodes, same values, same computation, but the
    weights are in memory once (TF's import_graph_def would hold the GraphDef, its serialized copy, TF's
    own parse and the graph's NodeDefs at the same time). Other candidates: verify.check_pair."""
    from migrate import verify
    if not isinstance(candidate, stream.StreamedModel) or candidate.text or candidate.file_path is None:
        return verify.check_pair(reference, candidate, outputs, feeds, rtol, atol)
    # The candidate first: its weights are numpy arrays, freed when it is done. The reference's variables
    # stay in the process after its session is deleted (TF 2.21 keeps them), so it goes last.
    actual = run_streamed(candidate, outputs, verify.plain(feeds))
    expected = verify.run_model(reference, outputs, feeds)
    return verify.compare(expected, actual, rtol, atol)


def run_streamed(candidate, outputs, feeds):
    """{output: array} from the file of a StreamedModel, weights fed (see check_pair)."""
    return run_file(candidate.file_path, outputs, feeds, candidate.path)


def run_file(path, outputs, feeds, where=None):
    """{output: array} from a binary frozen GraphDef file, its large Consts fed from aligned arrays read
    from the file (read_back): the weights are in memory once, TF's import never copies them. The session
    runs the graph as written (session._session_config: Grappler off)."""
    from migrate import session as session_mod
    structure, weights = stream.read_back(path)
    where = where or path
    session_mod.check_ops_known(structure, where)
    v1 = tfcompat.v1()
    graph = v1.Graph()
    with graph.as_default():
        session_mod._importing(where, v1.import_graph_def, structure, name="")
    del structure
    session_mod.check_run_memory(graph, where)
    with v1.Session(graph=graph, config=session_mod._session_config()) as sess:
        present = set(op.name for op in graph.get_operations())
        if session_mod.TABLE_INIT_NODE in present:
            session_mod.run_checked(sess, graph.get_operation_by_name(session_mod.TABLE_INIT_NODE), None, where)
        fetches = [graph.get_tensor_by_name(tensor_name(name)) for name in outputs]
        from migrate import verify

        def run(batch):
            fed = dict((graph.get_tensor_by_name(name), value) for name, value in
                       verify.present_feeds(graph, batch).items())
            fed.update((graph.get_tensor_by_name(name), value) for name, value in weights.items())
            return dict(zip(outputs, session_mod.run_checked(sess, fetches, fed, where)))
        return verify.run_batches(run, feeds)


def check_files(reference_path, candidate_path, outputs, feeds, rtol=1e-5, atol=1e-5, output=None):
    """verify.check_pair for two binary frozen GraphDef files, each run by run_file, one after the other
    (the candidate first: its fed weights are freed before the reference is read).

    The candidate is a temp file the user never sees: when it fails to run, the reference runs next and its
    error (naming the input: the feeds or the input graph are at fault) is the one raised; when the reference
    runs where the candidate failed, the result is wrong: VerificationFailed naming `output` (also the name
    other errors give the candidate: its final path, not the temp file)."""
    from migrate import verify
    from migrate.errors import VerificationFailed
    try:
        actual = run_file(candidate_path, outputs, verify.plain(feeds), output)
        failure = None
    except BadInput as exc:
        actual, failure = None, exc.what
    expected = run_file(reference_path, outputs, feeds)
    if failure is not None:
        raise VerificationFailed("the optimized graph fails where the input runs: " + failure,
                                 output or candidate_path, "nothing was written; leave out the pass that broke it "
                                 "(--passes) and report it")
    return verify.compare(expected, actual, rtol, atol)


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
    with v1.Session(graph=graph, config=session_mod._session_config()) as session:
        meta = v1.saved_model.loader.load(session, [v1.saved_model.tag_constants.SERVING], directory)
        saved = meta.signature_def[sig.name]
        feed_dict = dict((saved.inputs[by_tensor[t]].name, v) for t, v in feeds.items() if t in by_tensor)
        keys = sorted(sig.outputs)
        values = session_mod.run_checked(session, [saved.outputs[k].name for k in keys], feed_dict, directory)
    return dict((sig.outputs[k], v) for k, v in zip(keys, values))
