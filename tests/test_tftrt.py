"""TF-TRT conversion in the running TF: what the gate chose, what really happened, and unchanged numbers.

What each test expects follows what `migrate env`'s probe (tfcompat.trt_status) reports for this machine:
where TensorRT is usable, engines must be built; where it is not (every machine we have: CPU-only, no
libnvinfer), an honest zero: which API ran (or why none could), the exact reason, phrased from the probe's
facts (module imported, is_tensorrt_enabled, libnvinfer found), and that the graph that comes back computes
what the input computed. Per-version behaviour of a converter without TensorRT is as observed on the matrix;
nothing here is mocked.
"""
import numpy as np
import pytest
from tensorflow.core.framework import graph_pb2

from migrate import tfcompat, tftrt
from migrate.errors import BadInput

TF = tfcompat.version()[:2]
NOT_BUILT = "Tensorflow has not been built with TensorRT support."
STATUS = tfcompat.trt_status()  # what `migrate env` reports here


@pytest.fixture(scope="module")
def tiny():
    """Placeholder x [?, 4] -> MatMul with a Const -> Relu y, frozen (built in its own graph)."""
    tf, v1 = tfcompat.tf(), tfcompat.v1()
    graph = v1.Graph()
    with graph.as_default():
        x = v1.placeholder(tf.float32, [None, 4], name="x")
        weights = tf.constant(np.linspace(-1.0, 1.0, 12, dtype=np.float32).reshape(4, 3), name="w")
        tf.nn.relu(tf.matmul(x, weights, name="mm"), name="y")
    return graph.as_graph_def()


@pytest.fixture(scope="module")
def feed():
    return {"x:0": np.random.RandomState(0).randn(3, 4).astype(np.float32)}


def run(graph_def, feed, fetch="y:0"):
    """Run a GraphDef in its own graph and session (TF's default graph is never touched)."""
    v1 = tfcompat.v1()
    graph = v1.Graph()
    with graph.as_default():
        v1.import_graph_def(graph_def, name="")
    with v1.Session(graph=graph) as session:
        return session.run(fetch, feed)


def assert_same_numbers(before, after, feed):
    np.testing.assert_allclose(run(after, feed), run(before, feed), rtol=1e-6, atol=1e-6)


def zero_engines(version_text):
    """The reason a converter that ran gives for building nothing, from the probe's facts."""
    causes = []
    if STATUS.built_with_trt is False:
        causes.append("TF {} built without TensorRT (is_tensorrt_enabled() is False)".format(version_text))
    if not STATUS.library:
        causes.append("TensorRT library (libnvinfer) not found")
    assert causes, "zero_engines() asked where the probe says TensorRT is usable"
    return "converter ran and built 0 TRTEngineOps: " + " and ".join(causes)


def refused(call):
    """The reason when the gate skips a TF 2.x converter whose constructor would refuse (the probe says TF is
    built without TensorRT), else None: a TF built with TensorRT but without libnvinfer here fails later, in a
    way no machine of ours has shown."""
    return not_called(call) if STATUS.built_with_trt is False else None


def observed():
    """(generation, api_call, attempted, reason) the running TF gives the tiny graph with default options, where
    TensorRT is not usable (reason None: not pinned, see refused)."""
    here = tfcompat.version_string()
    if STATUS.module_file is None:  # the gate's module is not in this build (TF 1.7 CPU wheel: no contrib)
        assert STATUS.generation == tfcompat.TRT_CONTRIB, STATUS  # every newer TF ships the converter module
        return (tfcompat.TRT_CONTRIB, tfcompat.CONTRIB_MODULE + ".create_inference_graph", False, STATUS.reason)
    if STATUS.generation == tfcompat.TRT_CONTRIB:  # create_inference_graph runs without TensorRT, builds nothing
        return (tfcompat.TRT_CONTRIB, tfcompat.CONTRIB_MODULE + ".create_inference_graph", True, zero_engines(here))
    if TF < (2, 0):  # TrtGraphConverter.convert() succeeds with 0 engines
        return tfcompat.TRT_CONVERTER_V1, "TrtGraphConverter.convert", True, zero_engines(here)
    # TF 2.x: the V2 constructor would refuse before converting anything (test_tf2_converters_refuse_...):
    # the gate knows it from is_tensorrt_enabled() and does not call it
    reason = refused("TrtGraphConverterV2")
    return tfcompat.TRT_CONVERTER_V2, "TrtGraphConverterV2.convert", reason is None, reason


def test_the_probe_agrees_with_itself():
    """usable means: the gate's module imported, TF not built without TensorRT, libnvinfer loads."""
    assert STATUS.usable == bool(STATUS.module_file and STATUS.built_with_trt is not False and STATUS.library)


def not_called(call):
    return ("TF {}: TensorFlow has not been built with TensorRT support (is_tensorrt_enabled() is False); {} not "
            "called: its constructor raises RuntimeError '{}' whenever is_tensorrt_enabled() is False "
            "(TF >= 2.12)".format(tfcompat.version_string(), call, NOT_BUILT))


@pytest.mark.parametrize("call", ["TrtGraphConverter", "TrtGraphConverterV2"])
def test_tf2_converters_refuse_when_tf_lacks_tensorrt(call, tmp_path):
    """What the gate relies on to skip the call, checked against TF itself: in TF 2.x built without TensorRT
    each converter constructor raises; in TF 1.14/1.15 they construct (and convert() builds 0 engines)."""
    if TF < (1, 14):
        assert tfcompat.trt_converter_refusal(tfcompat.trt_generation(), call) is None
        return
    module, _ = tfcompat.import_trt_module(tfcompat.TRT_CONVERTER_V2)
    refusal = tfcompat.trt_converter_refusal(tfcompat.TRT_CONVERTER_V2, call)
    if call == "TrtGraphConverterV2" and not tfcompat.executing_eagerly():
        assert refusal is None  # TF 1.x: V2 needs eager execution; tftrt says so without calling it
        return
    try:
        if call == "TrtGraphConverter":  # graph mode, as tftrt calls it
            with tfcompat.v1().Graph().as_default():
                module.TrtGraphConverter(input_graph_def=tfcompat.v1().GraphDef())
        else:
            module.TrtGraphConverterV2(input_saved_model_dir=str(tmp_path))
        raised = None
    except RuntimeError as exc:
        raised = str(exc)
    if TF >= (2, 12) and STATUS.built_with_trt is False:  # what the probe says decides what TF must do
        assert raised == NOT_BUILT and refusal == not_called(call)
    else:
        assert raised != NOT_BUILT and refusal is None


def test_default_conversion_reports_what_really_happened(tiny, feed):
    if STATUS.usable:  # engines must be built (segments of one op: the tiny graph has two)
        result, outcome = tftrt.convert(tiny, ["y"], {"minimum_segment_size": 1})
        assert outcome.generation == STATUS.generation and outcome.attempted
        assert outcome.converted is True and outcome.engines >= 1, outcome.reason
        assert tftrt.count_engines(result) == outcome.engines
        assert_same_numbers(tiny, result, feed)
        return
    result, outcome = tftrt.convert(tiny, ["y"], {})
    generation, api_call, attempted, reason = observed()
    assert (outcome.generation, outcome.api_call) == (generation, api_call)
    assert outcome.engines == 0 and outcome.converted is False
    assert outcome.reason == reason or (reason is None and "TensorRT" in outcome.reason), outcome.reason
    assert outcome.attempted == attempted or reason is None
    assert tftrt.count_engines(result) == 0
    if STATUS.module_file is None:
        assert "does not include" in outcome.reason and outcome.kwargs_used == {}
    if TF >= (2, 0) and STATUS.built_with_trt is False:
        assert "has not been built with TensorRT support" in outcome.reason
    if not attempted or TF >= (2, 0):  # nothing converted: the very input comes back
        assert result is tiny and outcome.graph_changed is False
    else:  # the converter's own (unchanged) graph comes back
        assert result is not tiny and outcome.graph_changed is False
    assert outcome.seconds >= 0
    assert_same_numbers(tiny, result, feed)


def test_only_keywords_this_version_has_are_passed(tiny):
    options = {"max_batch": 4, "maximum_cached_engines": 2}
    if TF < (1, 9):  # by the version table: contrib got maximum_cached_engines in TF 1.9
        with pytest.raises(BadInput, match=r"option maximum_cached_engines needs .*from TF 1\.9"):
            tftrt.convert(tiny, ["y:0"], options)
        return
    _, outcome = tftrt.convert(tiny, ["y:0"], options)
    module, _ = tfcompat.import_trt_module(outcome.generation)
    call, target = {
        tfcompat.TRT_CONTRIB: ("create_inference_graph", getattr(module, "create_inference_graph", None)),
        tfcompat.TRT_CONVERTER_V1: ("TrtGraphConverter", getattr(module, "TrtGraphConverter", None)),
        tfcompat.TRT_CONVERTER_V2: ("TrtGraphConverterV2", getattr(module, "TrtGraphConverterV2", None)),
    }[outcome.generation]
    accepted = tftrt.options.parameters(target.__init__ if call != "create_inference_graph" else target)
    passed = set(outcome.kwargs_used[call])
    assert passed <= accepted
    assert outcome.kwargs_used[call]["maximum_cached_engines"] == 2
    # TF 2.x's V2 converter has no max_batch_size (engines take their batch from build()): it is not passed.
    assert ("max_batch_size" in passed) == (TF < (2, 0))


def test_api_v1_in_this_tf(tiny, feed):
    if TF < (1, 14):
        with pytest.raises(BadInput, match=r"api 'v1' .*needs TF >= 1\.14"):
            tftrt.convert(tiny, ["y"], {"api": "v1"})
        return
    result, outcome = tftrt.convert(tiny, ["y"], {"api": "v1"})
    assert (outcome.generation, outcome.api_call) == (tfcompat.TRT_CONVERTER_V1, "TrtGraphConverter.convert")
    blocklist = "nodes_blacklist" if TF < (2, 0) else "nodes_denylist"
    assert outcome.kwargs_used["TrtGraphConverter"][blocklist] == ["y"]
    assert_same_numbers(tiny, result, feed)
    if STATUS.usable:  # the two-op graph is under the default minimum_segment_size 3: no engine, but no error
        assert outcome.attempted and "raised" not in outcome.reason, outcome.reason
        return
    assert outcome.engines == 0
    if TF < (2, 0):
        assert outcome.attempted and outcome.reason == zero_engines(tfcompat.version_string())
    elif refused("TrtGraphConverter"):  # the constructor would refuse (the gate knows it): not called
        assert outcome.reason == refused("TrtGraphConverter") and outcome.attempted is False
        assert result is tiny


def test_option_this_tf_cannot_honour_names_the_minimum_version(tiny):
    if TF < (1, 9):  # no contrib module to inspect in the 1.7 wheel: the version table answers
        with pytest.raises(BadInput, match=r"option dynamic needs create_inference_graph\(is_dynamic_op=\.\.\.\), "
                                           r"which TF-TRT has from TF 1\.9"):
            tftrt.convert(tiny, ["y"], {"dynamic": True})
    elif TF < (1, 14):  # contrib has every option here; the converter classes come later
        with pytest.raises(BadInput, match=r"api 'v2' .*needs TF >= 1\.14"):
            tftrt.convert(tiny, ["y"], {"api": "v2"})
    elif TF < (1, 15):  # TF 1.14's TrtGraphConverterV2 has no build() (inspected)
        with pytest.raises(BadInput, match=r"option static needs TrtGraphConverterV2\.build\(\), which TF-TRT has "
                                           r"from TF 1\.15; this is TF 1\.14"):
            tftrt.convert(tiny, ["y"], {"api": "v2", "static": True, "max_batch": 2})
    elif TF < (2, 5):  # TF 1.15's TrtGraphConverterV2 has no use_dynamic_shape (inspected)
        with pytest.raises(BadInput, match=r"option dynamic needs TrtGraphConverterV2\(use_dynamic_shape=\.\.\.\), "
                                           r"which TF-TRT has from TF 2\.5; this is TF 1\.15"):
            tftrt.convert(tiny, ["y"], {"api": "v2", "dynamic": True})
    else:  # TF >= 2.5 honours both: they reach the converter
        _, outcome = tftrt.convert(tiny, ["y"], {"dynamic": True, "static": True, "max_batch": 2})
        assert outcome.kwargs_used["TrtGraphConverterV2"]["use_dynamic_shape"] is True
        assert outcome.api_call == "TrtGraphConverterV2.convert+build"


def test_int8_calibration_is_wired_per_generation(tiny, feed):
    feeds = [{"x": np.random.RandomState(seed).rand(2, 4).astype(np.float32)} for seed in range(3)]
    result, outcome = tftrt.convert(tiny, ["y"], {"precision": "INT8", "calib_feeds": feeds,
                                                  "minimum_segment_size": 1})
    assert_same_numbers(tiny, result, feed)
    if STATUS.usable:  # calibrated engines, where the probe says TensorRT is there
        assert outcome.engines >= 1, outcome.reason
        return
    assert outcome.engines == 0
    here = tfcompat.version_string()
    if STATUS.module_file is None:
        assert outcome.api_call.endswith("create_inference_graph+calib_graph_to_infer_graph")
        assert outcome.attempted is False and "does not include" in outcome.reason
    elif TF == (1, 13):  # feeds ran through the calibration graph; there was nothing to calibrate
        assert outcome.kwargs_used["create_inference_graph"]["use_calibration"] is True
        assert outcome.kwargs_used["Session.run (calibration)"] == {"num_runs": 3}
        assert "calib_graph_to_infer_graph" in outcome.kwargs_used
        assert outcome.reason == zero_engines(here) + (
            "; calib_graph_to_infer_graph found no calibration nodes and returned None")
    elif TF < (2, 0):  # calibrate() runs the feeds and returns the (engine-free) inference graph
        assert outcome.api_call == "TrtGraphConverter.convert+calibrate"
        assert outcome.kwargs_used["TrtGraphConverter.calibrate"]["num_runs"] == 3
        assert outcome.kwargs_used["TrtGraphConverter.calibrate"]["fetch_names"] == ["y:0"]
        assert outcome.reason == zero_engines(here)
    else:  # the constructor would refuse before convert(calibration_input_fn=...) is reached: not called
        assert outcome.kwargs_used["TrtGraphConverterV2"]["use_calibration"] is True
        if refused("TrtGraphConverterV2"):
            assert "TrtGraphConverterV2.convert" not in outcome.kwargs_used
            assert outcome.reason == refused("TrtGraphConverterV2")


def test_int8_without_calibration_data(tiny):
    if TF < (1, 13):
        with pytest.raises(BadInput, match=r"use_calibration=\.\.\.\), which TF-TRT has from TF 1\.13"):
            tftrt.convert(tiny, ["y"], {"precision": "int8"})
        return
    _, outcome = tftrt.convert(tiny, ["y"], {"precision": "int8"})
    call = {tfcompat.TRT_CONTRIB: "create_inference_graph", tfcompat.TRT_CONVERTER_V1: "TrtGraphConverter",
            tfcompat.TRT_CONVERTER_V2: "TrtGraphConverterV2"}[outcome.generation]
    assert outcome.kwargs_used[call]["precision_mode"] == "INT8"
    assert outcome.kwargs_used[call]["use_calibration"] is False


def test_bad_options_are_bad_input(tiny):
    feeds = [{"x": np.zeros((1, 4), np.float32)}]
    with pytest.raises(BadInput, match="calib_feeds given with precision FP16"):
        tftrt.convert(tiny, ["y"], {"precision": "FP16", "calib_feeds": feeds})
    with pytest.raises(BadInput, match=r"calib_feeds\[0\]: missing inputs x:0"):
        tftrt.convert(tiny, ["y"], {"precision": "INT8", "calib_feeds": [{"w": np.zeros((4, 3))}]})
    with pytest.raises(BadInput, match="precision 'INT4' is not one of"):
        tftrt.convert(tiny, ["y"], {"precision": "INT4"})
    with pytest.raises(BadInput, match="output 'nope' is not a node"):
        tftrt.convert(tiny, ["nope"], {})
    with pytest.raises(BadInput, match="max_batch must be a positive integer"):
        tftrt.convert(tiny, ["y"], {"max_batch": 0})


def test_static_and_dynamic_per_generation(tiny):
    generation = tfcompat.trt_generation()
    if generation == tfcompat.TRT_CONTRIB or generation == tfcompat.TRT_CONVERTER_V1:
        # one is_dynamic_op flag: engines are built either at run time or at conversion
        with pytest.raises(BadInput, match="dynamic and static both set"):
            tftrt.convert(tiny, ["y"], {"dynamic": True, "static": True})
    else:  # V2 builds ahead with build(), at shapes it must know
        with pytest.raises(BadInput, match=r"dim 0 \(batch\) is unknown"):
            tftrt.convert(tiny, ["y"], {"static": True})


def scoped_graph():
    """The tiny graph under name scopes: 'in/x' -> ... -> 'out/y' (signature keys differ from node names)."""
    tf, v1 = tfcompat.tf(), tfcompat.v1()
    graph = v1.Graph()
    with graph.as_default():
        with tf.name_scope("in"):
            x = v1.placeholder(tf.float32, [None, 4], name="x")
        with tf.name_scope("out"):
            tf.nn.relu(tf.matmul(x, tf.constant(np.eye(4, 3, dtype=np.float32), name="w")), name="y")
    return graph.as_graph_def()


@pytest.mark.parametrize("names", [("x", "y"), ("in/x", "out/y")], ids=["plain", "scoped"])
def test_saved_model_the_v2_path_writes_and_reads_back(tiny, names, tmp_path):
    graph_def = tiny if names[0] == "x" else scoped_graph()
    feed = {names[0] + ":0": np.random.RandomState(1).randn(2, 4).astype(np.float32)}
    fetch = names[1] + ":0"
    inputs, outputs = tftrt.signature_keys([names[0]]), tftrt.signature_keys([names[1]])
    source = tftrt.write_saved_model(graph_def, inputs, outputs, str(tmp_path / "v1"))
    expected = run(graph_def, feed, fetch)
    if TF < (2, 0):  # TF 1.x reads it back with the TF1 loader
        v1 = tfcompat.v1()
        with v1.Session(graph=v1.Graph()) as session:
            meta = v1.saved_model.loader.load(session, ["serve"], source)
            signature = meta.signature_def["serving_default"]
            (in_key,), (out_key,) = inputs, outputs
            got = session.run(signature.outputs[out_key].name, {signature.inputs[in_key].name: feed[names[0] + ":0"]})
        np.testing.assert_allclose(got, expected, rtol=1e-6)
        return
    # TF 2.x: the frozen serving function keeps the names, from the TF1 SavedModel we write ...
    np.testing.assert_allclose(run(tftrt.saved_function_graph(source, inputs, outputs), feed, fetch), expected,
                               rtol=1e-6)
    # ... and from a TF2 SavedModel saved as TrtGraphConverterV2.save() does (inputs named by key, outputs Identity)
    loaded, signature, _ = tfcompat.load_saved_function(source, tftrt.SIGNATURE_KEY)
    resaved = str(tmp_path / "v2")
    tfcompat.tf().saved_model.save(loaded, resaved, signatures={tftrt.SIGNATURE_KEY: signature})
    back = tftrt.saved_function_graph(resaved, inputs, outputs)
    assert [n.op for n in back.node if n.name == names[0]] == ["Placeholder"]
    assert [n.op for n in back.node if n.name == names[1]] == ["Identity"]
    np.testing.assert_allclose(run(back, feed, fetch), expected, rtol=1e-6)


def test_signature_keys_are_identifier_safe():
    assert tftrt.signature_keys(["in/x:0", "in/x:1", "1st", "in_x"]) == {
        "in_x": "in/x:0", "in_x_1": "in/x:1", "t_1st": "1st:0", "in_x_2": "in_x:0"}


def test_engines_are_counted_in_the_function_library_too():
    graph_def = graph_pb2.GraphDef()
    graph_def.node.add(name="a", op="TRTEngineOp")
    graph_def.node.add(name="b", op="Relu")
    function = graph_def.library.function.add()
    function.signature.name = "segment"
    function.node_def.add(name="c", op="TRTEngineOp")
    assert tftrt.count_engines(graph_def) == 2


def test_rename_node_rewrites_data_and_control_inputs():
    graph_def = graph_pb2.GraphDef()
    graph_def.node.add(name="x", op="Placeholder")
    graph_def.node.add(name="s", op="Split", input=["x", "x:1", "^x"])
    tftrt.rename_node(graph_def, "x", "input")
    assert [n.name for n in graph_def.node] == ["input", "s"]
    assert list(graph_def.node[1].input) == ["input", "input:1", "^input"]


def test_version_table_and_formatting():
    assert tfcompat.format_version((1, 9, 0)) == "1.9"
    assert tfcompat.format_version((1, 15, 5)) == "1.15.5"
    assert tfcompat.trt_feature_since("create_inference_graph", "use_calibration") == (1, 13, 0)
    assert tfcompat.trt_feature_since("TrtGraphConverter", "precision_mode") == (0, 0, 0)
    assert tfcompat.trt_api_in_this_tf("v2") == (TF >= (1, 14))
