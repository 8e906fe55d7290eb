"""`migrate onnx` and ONNX in `verify`: every zoo model written by old TF and real third-party graphs converted
by tf2onnx, run by onnxruntime and matched against TF (and against the goldens old TF computed); what tf2onnx
cannot convert is one line naming the node and op; the calibration cache renamed to ONNX tensor names."""
import os

import numpy as np
import pytest

from migrate import tfcompat
from tests.conftest import expected_unknown_ops, require_onnx

# Zoo models tf2onnx 1.17 cannot convert, and the op the one-line error names (lookup tables: tf2onnx needs the
# table's contents from a live session, which a graph def does not carry; tf.Example parsing has no ONNX op).
UNCONVERTIBLE = {
    "lookup": ("HashTableV2", "LookupTableFindV2"),
    "estimator_examples": ("HashTableV2", "LookupTableFindV2", "LookupTableSizeV2", "ParseExample",
                           "ParseExampleV2", "StringToHashBucketFast"),
    "estimator_tft": ("StatefulPartitionedCall", "HashTableV2", "LookupTableFindV2", "ParseExampleV2",
                      "ParseExample", "LookupTableSizeV2"),
}


@pytest.fixture
def onnx_modules():
    return require_onnx()


def _onnx_golden_check(path, model, golden, outputs):
    """The written ONNX file run by onnxruntime on the golden inputs matches what old TF computed."""
    import onnxruntime
    from migrate import verify
    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    names = set(i.name for i in list(session.get_inputs()) + list(session.get_overridable_initializers()))
    feeds = {}
    for tensor in model.inputs:
        name = tensor if tensor in names else verify.cut_placeholder(tensor)
        if name in names:
            feeds[name] = golden[tensor]
    outputs = [o.name for o in session.get_outputs()]
    values = dict(zip(outputs, session.run(outputs, feeds)))
    for tensor in outputs:
        np.testing.assert_allclose(values[tensor], golden[tensor], rtol=1e-4, atol=1e-5)


def test_zoo_model_to_onnx(onnx_modules, zoo_model, tmp_path):
    from migrate import api
    from migrate.errors import BadInput
    if expected_unknown_ops(zoo_model):
        pytest.skip("written by a newer TF than this one (refusal covered by test_freeze)")
    output = str(tmp_path / "model.onnx")
    kwargs = dict(outputs=zoo_model.outputs, inputs_npz=zoo_model.golden_path, rtol=1e-4, atol=1e-5)
    if zoo_model.name in UNCONVERTIBLE:
        with pytest.raises(BadInput) as caught:
            api.onnx(zoo_model.path, output, **kwargs)
        line = str(caught.value)
        assert "cannot convert node" in line and "\n" not in line, line
        assert any("(op {})".format(op) in line for op in UNCONVERTIBLE[zoo_model.name]), line
        assert "try --opset" in line and "--outputs" in line, line
        assert not os.path.exists(output)
        return
    signatures = zoo_model.entry.get("signatures") or {None: None}
    for signature in sorted(signatures, key=str):  # a SavedModel: one ONNX model per signature
        if signature is not None:
            kwargs.update(outputs=None, signature=signature)
            output = str(tmp_path / "{}.onnx".format(signature))
        expected = sorted(signatures[signature]["outputs"].values()) if signature else zoo_model.outputs
        result = api.onnx(zoo_model.path, output, **kwargs)
        rows = result["comparisons"]
        assert rows and all(row.ok for row in rows), rows
        assert any(row.checked for row in rows), rows
        assert sorted(result["outputs"]) == sorted(expected), (result["outputs"], expected)
        assert len(rows) == len(expected), rows
        onnx = onnx_modules[1]
        proto = onnx.load(output)
        onnx.checker.check_model(proto)
        assert not any(node.domain not in ("", "ai.onnx") for node in proto.graph.node)
        _onnx_golden_check(output, zoo_model, zoo_model.golden(), expected)


@pytest.mark.parametrize("name", ["DS_CNN_S", "LSTM_S"])
def test_real_keyword_spotting_graphs(onnx_modules, artifact, tmp_path, name):
    """ARM's frozen KWS graphs (TF ~1.4): DecodeWav/AudioSpectrogram/Mfcc have no ONNX op, named in one line;
    fed at the Mfcc features (--input-at) the conv net and the LSTM (a v1 while loop) convert and match."""
    from migrate import api
    from migrate.onnx.convert import ConversionFailed
    source = artifact("arm_kws_frozen/{}.pb".format(name))
    rng = np.random.RandomState(0)
    output = str(tmp_path / "kws.onnx")
    with pytest.raises(ConversionFailed) as caught:
        api.onnx(source, output, outputs=["labels_softmax"], inputs_npz=_wav_npz(tmp_path, rng))
    assert "(op DecodeWav)" in str(caught.value) and "--input-at" in str(caught.value), str(caught.value)
    result = api.onnx(source, output, outputs=["labels_softmax"], input_at=["Mfcc:0"], batch=1)
    rows = result["comparisons"]
    assert [row.output for row in rows] == ["labels_softmax:0"] and rows[0].ok and rows[0].checked, rows
    assert result["inputs"] == ["Mfcc:0"]
    assert os.path.getsize(output) > 10000


def _wav_npz(tmp_path, rng):
    import io
    import struct
    import wave
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(16000)
        samples = list(rng.randint(-3000, 3000, 15999)) + [257]  # no trailing NUL byte ('S' arrays strip it)
        handle.writeframes(struct.pack("<16000h", *samples))
    path = str(tmp_path / "wav.npz")
    np.savez(path, **{"wav_data:0": np.array(buffer.getvalue(), dtype="S")})
    return path


def test_real_legacy_quantized_graph_gives_one_line(onnx_modules, artifact, tmp_path, run_cli):
    """uTensor's quant_mnist (QuantizeV2/QuantizedMatMul, qint32): tf2onnx raises KeyError tf.qint32: the
    line names a node and its op, exit 2, nothing written."""
    source = artifact("utensor_cifar10_cnn/quant_mnist.pb")
    output = str(tmp_path / "q.onnx")
    npz = str(tmp_path / "x.npz")
    np.savez(npz, **{"x:0": np.random.RandomState(0).rand(2, 784).astype(np.float32)})
    code, out, err = run_cli("onnx", source, "-o", output, "--inputs-npz", npz)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1, (code, err)
    assert lines[0].startswith("migrate: error: " + source + ": tf2onnx (opset 13) cannot convert node '"), err
    assert "(op Quantize" in lines[0] or "(op Requantize" in lines[0] or "(op Dequantize" in lines[0], err
    assert "try --opset" in lines[0] and "Traceback" not in err
    assert not os.path.exists(output)


def _private_shape_attr_graph(path):
    """A frozen MLP whose MatMul carries a private attr holding a scalar TensorShapeProto (`shape {}`), as
    graphs written through some TF tools do: tf2onnx 1.17 copies it into an ONNX attribute and onnx.helper
    raises TypeError: '' is not an accepted attribute value."""
    tf = tfcompat.v1()
    graph = tf.Graph()
    with graph.as_default():
        x = tf.placeholder(tf.float32, [None, 4], name="x")
        w = tf.constant(np.random.RandomState(1).rand(4, 3).astype(np.float32))
        tf.nn.softmax(tf.matmul(x, w, name="matmul"), name="probs")
    graph_def = graph.as_graph_def()
    from tensorflow.core.framework import attr_value_pb2, tensor_shape_pb2
    node = next(n for n in graph_def.node if n.name == "matmul")
    node.attr["_output_shape_hint"].CopyFrom(attr_value_pb2.AttrValue(shape=tensor_shape_pb2.TensorShapeProto()))
    with open(path, "wb") as handle:
        handle.write(graph_def.SerializeToString())
    return graph_def


def test_empty_attribute_value_made_convertible_by_onnx_prep(onnx_modules, tmp_path):
    from migrate import api
    tf2onnx = onnx_modules[0]
    source = str(tmp_path / "frozen.pb")
    graph_def = _private_shape_attr_graph(source)
    with pytest.raises(TypeError) as caught:  # tf2onnx itself, on the graph as it is
        with tfcompat.quiet_native_stderr():
            tf2onnx.convert.from_graph_def(graph_def, input_names=["x:0"], output_names=["probs:0"], opset=13)
    assert "'' is not an accepted attribute value" in str(caught.value)
    result = api.onnx(source, str(tmp_path / "m.onnx"), outputs=["probs"], batch=3)
    assert result["prep_dropped"]["_output_shape_hint"] == 1
    assert result["attribution"].startswith("made convertible by onnx_prep (removed _output_shape_hint)"), \
        result["attribution"]
    assert "'' is not an accepted attribute value" in result["attribution"]
    assert [row.output for row in result["comparisons"]] == ["probs:0"]
    assert all(row.ok and row.checked for row in result["comparisons"])


def test_verify_onnx_against_saved_model_both_ways(onnx_modules, zoo_model_mlp, tmp_path, run_cli):
    from migrate import api
    model = zoo_model_mlp
    onnx_path = str(tmp_path / "mlp.onnx")
    api.onnx(model.path, onnx_path, outputs=model.outputs, inputs_npz=model.golden_path)
    saved = str(tmp_path / "saved")
    api.export(model.path, saved, outputs=model.outputs)
    for a, b in ((onnx_path, saved), (saved, onnx_path)):
        rows, _ = api.verify_artifacts(a, b, inputs_npz=model.golden_path, batch=4)
        assert sorted(row.output.split(":")[0] for row in rows) == ["logits", "probabilities"], rows
        assert all(row.ok and row.checked for row in rows), rows
    # content, not the name: the ONNX file under a .pb name is still run as ONNX
    renamed = str(tmp_path / "model_onnx.pb")
    os.rename(onnx_path, renamed)
    code, out, err = run_cli("verify", renamed, model.path, "--inputs-npz", model.golden_path)
    assert code == 0 and out.count("OK  ") == 2, (out, err)
    # a mismatch is exit 1: the ONNX weights changed
    onnx = onnx_modules[1]
    proto = onnx.load(renamed)
    init = proto.graph.initializer[0]
    values = onnx.numpy_helper.to_array(init).copy()
    values.flat[0] += 1.0
    init.CopyFrom(onnx.numpy_helper.from_array(values, init.name))
    onnx.save(proto, renamed)
    code, out, err = run_cli("verify", renamed, model.path, "--inputs-npz", model.golden_path)
    assert code == 1 and "FAIL" in out, (out, err)


@pytest.fixture
def zoo_model_mlp(tmp_path):
    import json
    import shutil
    from tests.conftest import ZOO_ROOT, ZooModel, _missing
    zoo = os.path.join(ZOO_ROOT, "zoo-tf1.15")
    manifest_path = os.path.join(zoo, "manifest.json")
    if not os.path.isfile(manifest_path):
        _missing("zoo-tf1.15 not under {}".format(ZOO_ROOT))
    with open(manifest_path) as handle:
        entry = next(e for e in json.load(handle)["models"] if e["name"] == "mlp")
    del shutil
    return ZooModel("zoo-tf1.15", zoo, entry, tmp_path)


def test_calibration_cache_renamed_to_onnx_tensor_names(onnx_modules, zoo_model_mlp, tmp_path, run_cli):
    """A TensorRT text cache keyed by TF tensor names ('x:0', 'MatMul' ...) is written beside model.onnx keyed
    by the ONNX graph's tensor names: every name in it exists in the ONNX graph; TF tensors tf2onnx fused away
    are left out and said."""
    from migrate import api
    from migrate.onnx import convert
    model = zoo_model_mlp
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    optimized = str(tmp_path / "opt.pb")
    api.optimize(model.path, optimized, outputs=model.outputs)
    from migrate import artifacts
    graph_def = artifacts.read_graph_def(optimized)
    tf_names = [n.name + (":0" if i % 2 else "") for i, n in enumerate(graph_def.node)]  # both spellings
    rng = np.random.RandomState(0)
    cache = str(tmp_path / "tf.cache")
    with open(cache, "w") as handle:
        handle.write("TRT-8601-EntropyCalibration2\n")
        for name in tf_names:
            handle.write("{}: {:08x}\n".format(name, rng.randint(0x3c000000, 0x3e000000)))
    output = str(out_dir / "model.onnx")
    code, out, err = run_cli("onnx", model.path, "-o", output, "--outputs", ",".join(model.outputs),
                             "--calib-cache", cache)
    assert code == 0, (out, err)
    written = str(out_dir / "calibration.cache")
    header, entries = convert.read_calibration_cache(written)
    assert header == "TRT-8601-EntropyCalibration2"
    onnx = onnx_modules[1]
    known = convert.onnx_tensor_names(onnx.load(output))
    names = [name for name, _ in entries]
    assert names and all(name in known for name in names), sorted(set(names) - known)
    assert "x:0" in names and "probabilities:0" in names  # the input and the outputs keep their scales
    source_scales = dict((n if ":" in n else n + ":0", v) for n, v in convert.read_calibration_cache(cache)[1])
    assert all(source_scales[name] == value for name, value in entries)
    assert "wrote {}".format(written) in out


def test_corrupt_onnx_is_one_line(onnx_modules, zoo_model_mlp, tmp_path, run_cli):
    """A truncated model.onnx and a non-ONNX file named .onnx: `verify` says so in one line, exit 2; the
    files are untouched."""
    from migrate import api
    model = zoo_model_mlp
    good = str(tmp_path / "good.onnx")
    api.onnx(model.path, good, outputs=model.outputs)
    with open(good, "rb") as handle:
        data = handle.read()
    truncated = str(tmp_path / "truncated.onnx")
    with open(truncated, "wb") as handle:
        handle.write(data[:len(data) // 2])
    garbage = str(tmp_path / "garbage.onnx")
    with open(garbage, "wb") as handle:
        handle.write(b"\x0a\x03abc not onnx")
    for path, text in ((truncated, "not a valid ONNX model"), (garbage, "named .onnx but not an ONNX model")):
        before = open(path, "rb").read()
        code, out, err = run_cli("verify", path, model.path)
        lines = err.strip().splitlines()
        assert code == 2 and len(lines) == 1 and lines[0].startswith("migrate: error: " + path + ": " + text), err
        assert open(path, "rb").read() == before


def test_onnx_refuses_existing_output_and_bad_opset(onnx_modules, zoo_model_mlp, tmp_path, run_cli):
    model = zoo_model_mlp
    output = str(tmp_path / "m.onnx")
    with open(output, "w") as handle:
        handle.write("keep me")
    code, _, err = run_cli("onnx", model.path, "-o", output)
    assert code == 2 and "output already exists" in err and open(output).read() == "keep me"
    code, _, err = run_cli("onnx", model.path, "-o", str(tmp_path / "n.onnx"), "--opset", "99")
    assert code == 2 and "--opset 99 is outside" in err and len(err.strip().splitlines()) == 1


def test_onnx_verb_refuses_in_one_line_without_the_extra(run_cli, tmp_path):
    """Where the onnx extra is absent (tox.ini: every env but py311) the verb says so in one line, exit 2."""
    if tfcompat.onnx_status().available:
        pytest.skip("the onnx extra is installed here: this env checks the conversion itself")
    code, out, err = run_cli("onnx", str(tmp_path), "-o", str(tmp_path / "m.onnx"))
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "the ONNX road is not available here" in lines[0], err
    assert "pip install 'migrate[onnx]'" in lines[0]


def test_convert_with_onnx_adds_model_onnx(onnx_modules, zoo_model_mlp, tmp_path, run_cli):
    """`convert --onnx`: OUT_DIR gains model.onnx, checked against the source; report.json says so; the ONNX
    model and the exported SavedModel agree (verify, ONNX on one side)."""
    import json
    model = zoo_model_mlp
    out_dir = str(tmp_path / "out")
    code, out, err = run_cli("convert", model.path, out_dir, "--no-trt", "--onnx", "--opset", "15",
                             "--outputs", ",".join(model.outputs), "--inputs-npz", model.golden_path)
    assert code == 0, (out, err)
    assert "model.onnx (opset 15)" in out
    with open(os.path.join(out_dir, "report.json")) as handle:
        step = json.load(handle)["steps"]["onnx"]
    assert step["file"] == "model.onnx" and step["opset"] == 15 and step["against"] == "source"
    assert sorted(row["output"] for row in step["verification"]) == sorted(model.outputs)
    proto = onnx_modules[1].load(os.path.join(out_dir, "model.onnx"))
    assert [o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")] == [15]
    code, out, err = run_cli("verify", os.path.join(out_dir, "model.onnx"), os.path.join(out_dir, "saved_model"),
                             "--inputs-npz", model.golden_path)
    assert code == 0 and out.count("OK  ") == 2, (out, err)
    marker = open(os.path.join(out_dir, ".migrate-output")).read()
    assert "model.onnx" in marker


def test_gate_reports_the_installed_modules(run_cli):
    """tfcompat.onnx_status against the modules themselves: where all three import, their versions; where one
    does not (py36/py37 envs), the reason names it; `migrate env` prints the same."""
    import importlib
    found, missing = {}, []
    for name in ("tf2onnx", "onnx", "onnxruntime"):
        try:
            found[name] = importlib.import_module(name).__version__
        except Exception:
            missing.append(name)
    status = tfcompat.onnx_status()
    assert status.available == (not missing)
    if missing:
        assert all("{} does not import".format(name) in status.reason for name in missing), status.reason
    else:
        assert status.versions == found and status.reason is None
    code, out, _ = run_cli("env")
    line = next(line for line in out.splitlines() if line.startswith("onnx "))
    assert all(version in line for version in found.values()) if not missing else "unavailable" in line


def test_final_check_uses_the_shapes_the_conversion_used(onnx_modules, artifact, zoo_model_mlp, tmp_path,
                                                         run_cli):
    """The onnxruntime check generates its inputs with the shapes given to the conversion (--static
    --input-shape), not the source's: tf2onnx's GRU has an unknown-rank X (it needed --inputs-npz), the zoo MLP
    an unknown batch that --input-shape x:3,8 (no --max-batch) makes 3 (onnxruntime refused the batch of 1)."""
    import onnxruntime
    from migrate import artifacts, verify
    source = artifact("tf2onnx_gru/frozen.pb")
    output = str(tmp_path / "gru.onnx")
    code, out, err = run_cli("onnx", source, "-o", output, "--static", "--input-shape", "X:2,28,28", "--set",
                             "keep_prob=1.0")
    assert code == 0, err
    final = out.split("[3/3] verify")[1]
    assert "OK   output:0 shape=[2, 10] dtype=float32" in final, out
    x = np.random.RandomState(5).rand(2, 28, 28).astype(np.float32)
    session = onnxruntime.InferenceSession(output, providers=["CPUExecutionProvider"])
    got = session.run(["output:0"], {"X:0": x})[0]
    want = verify.run_model(artifacts.load(source), ["output:0"], {"X:0": x, "keep_prob:0": np.float32(1.0)})
    np.testing.assert_allclose(got, want["output:0"], rtol=1e-4, atol=1e-5)
    output = str(tmp_path / "mlp.onnx")
    code, out, err = run_cli("onnx", zoo_model_mlp.path, "-o", output, "--static", "--input-shape", "x:3,8")
    assert code == 0, err
    assert "OK   probabilities:0 shape=[3, 3] dtype=float32" in out.split("[3/3] verify")[1], out
    session = onnxruntime.InferenceSession(output, providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].shape == [3, 8]
