"""`migrate freeze` on zoo models old TF wrote and on real third-party artifacts: numbers must match."""
import hashlib
import os

import numpy as np
import pytest

from migrate import api, artifacts, freezing, verify
from migrate.errors import BadInput
from tests.conftest import ATTRS_LACKING, assert_compared, expected_unknown_ops

RTOL, ATOL = 1e-4, 1e-5


def _frozen_outputs(path, outputs, feeds):
    frozen = artifacts.load(path)
    assert frozen.kind == "frozen_graph"
    assert not any(n.op in ("VariableV2", "Variable", "VarHandleOp", "Assign", "RestoreV2", "SaveV2")
                   for n in frozen.graph_def.node)
    return verify.run_model(frozen, outputs, feeds)


def _tree_digest(root):
    digest = hashlib.sha256()
    for folder, _, files in sorted(os.walk(root)):
        for name in sorted(files):
            digest.update(name.encode())
            digest.update(open(os.path.join(folder, name), "rb").read())
    return digest.hexdigest()


def _unknown_ops(zoo_model):
    """The ops of the zoo model this TF lacks, by the manifest (conftest.expected_unknown_ops); the code's own
    probe must agree (else the expectation, not the code, would decide what is tested). For a frozen graph
    plain TF cannot import, its attrs this TF lacks (a bare GraphDef has no op list saying they hold their
    default; conftest.expected_unknown_ops and tests/test_outputs.py check that refusal)."""
    from migrate import inspect_model, tfcompat
    expected = expected_unknown_ops(zoo_model)
    found = tfcompat.unregistered_ops(inspect_model.op_histogram(artifacts.load(zoo_model.path).graph_def))
    assert sorted(found) == [op for op in expected if op != ATTRS_LACKING], (
        "this TF's registry lacks {}, the manifest says {}".format(found, expected))
    if zoo_model.kind == "frozen_graph" and not found:
        from tests.test_outputs import _plain_tf_imports
        graph_def = artifacts.load(zoo_model.path).graph_def
        lacking = [n.op for n in graph_def.node if set(a for a in n.attr if not a.startswith("_")) - set(
            a.name for a in tfcompat.op_def(n.op).attr)]  # imports, then fails to run (Cast.Truncate in TF 1.7)
        if lacking and not expected:  # TF's own op registry says so (not migrate's code)
            expected = [ATTRS_LACKING]
        if not _plain_tf_imports(zoo_model.path):
            assert expected, "plain TF cannot import it, yet the manifest expects it to run here"
    return expected


def assert_refused(run_cli, verb, zoo_model, out, unknown, *args):
    """`migrate VERB` on a zoo model holding ops this TF lacks: one line naming them, exit 2, nothing written."""
    code, _, err = run_cli(verb, zoo_model.path, *((out,) if verb == "convert" else ("-o", out)) + args)
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    named = [op for op in unknown if op != ATTRS_LACKING]
    if named:
        assert "ops not registered" in lines[0] and all(op in lines[0] for op in named), (lines[0], unknown)
    else:  # attrs this TF lacks
        assert "cannot import the graph" in lines[0], (lines[0], unknown)
    assert not os.path.exists(out)


def test_zoo_model_freezes_and_matches_goldens(zoo_model, tmp_path, run_cli):
    if zoo_model.kind == "frozen_graph":  # nothing to freeze: one line pointing at optimize/export
        with pytest.raises(BadInput, match="already a frozen graph.*migrate optimize"):
            api.freeze(zoo_model.path, os.path.join(str(tmp_path), "f.pb"), outputs=zoo_model.outputs)
        assert not os.path.exists(os.path.join(str(tmp_path), "f.pb"))
        return
    unknown = _unknown_ops(zoo_model)
    if unknown:  # written by a newer TF than this one (FusedBatchNormV3 before TF 1.14): a clear refusal
        assert_refused(run_cli, "freeze", zoo_model, os.path.join(str(tmp_path), "f.pb"), unknown, "--outputs",
                       ",".join(zoo_model.outputs))
        return
    golden = zoo_model.golden()
    feeds = dict((name, golden[name]) for name in zoo_model.inputs)
    before = _tree_digest(zoo_model.root)
    out = os.path.join(str(tmp_path), "frozen.pb")
    if zoo_model.kind == "frozen_graph":  # nothing to freeze: said in one line, nothing written
        with pytest.raises(BadInput) as error:
            api.freeze(zoo_model.path, out, outputs=zoo_model.outputs, inputs_npz=zoo_model.golden_path)
        assert "already a frozen graph" in str(error.value) and not os.path.exists(out)
        return
    result = api.freeze(zoo_model.path, out, outputs=zoo_model.outputs, inputs_npz=zoo_model.golden_path)
    assert_compared(result.comparisons, zoo_model.outputs)
    actual = _frozen_outputs(out, zoo_model.outputs, feeds)
    for name in zoo_model.outputs:
        np.testing.assert_allclose(actual[name], golden[name], rtol=RTOL, atol=ATOL, err_msg=name)
    assert _tree_digest(zoo_model.root) == before  # input untouched


@pytest.mark.zoo("cnn_bn")
def test_cnn_bn_drops_training_branch(zoo_model, tmp_path):
    model = artifacts.load(zoo_model.path)
    unknown = _unknown_ops(zoo_model)
    if unknown:  # the library refuses as the CLI does (test_zoo_model_freezes_and_matches_goldens)
        with pytest.raises(BadInput, match="ops not registered in TF .*" + unknown[0]):
            freezing.freeze(model, outputs=["probabilities"])
        return
    frozen, record = freezing.freeze(model, outputs=["probabilities"])
    assert record.switches == {"is_training": False}
    ops = set(n.op for n in frozen.graph_def.node)
    assert not ops & {"AssignSub", "Assign", "RefSwitch", "VariableV2", "PlaceholderWithDefault"}


def test_regression_three_formats_agree(artifact, tmp_path):
    root = artifact("tf2onnx_regression_3formats")
    x = np.linspace(-2, 3, 7).astype(np.float32)
    feeds = {"X:0": x}
    frozen_ckpt = os.path.join(str(tmp_path), "ckpt.pb")
    frozen_saved = os.path.join(str(tmp_path), "saved.pb")
    npz = os.path.join(str(tmp_path), "x.npz")
    np.savez(npz, **feeds)
    api.freeze(os.path.join(root, "checkpoint"), frozen_ckpt, outputs=["pred"], inputs_npz=npz)
    api.freeze(os.path.join(root, "saved_model"), frozen_saved, inputs_npz=npz)
    from_ckpt = _frozen_outputs(frozen_ckpt, ["pred:0"], feeds)["pred:0"]
    from_saved = _frozen_outputs(frozen_saved, ["pred:0"], feeds)["pred:0"]
    given = verify.run_model(artifacts.load(os.path.join(root, "graphdef", "frozen.pb")), ["pred:0"], feeds)
    np.testing.assert_allclose(from_ckpt, given["pred:0"], rtol=1e-6)
    np.testing.assert_allclose(from_saved, given["pred:0"], rtol=1e-6)
    assert np.ptp(from_ckpt) > 0  # a real linear function, not a constant


@pytest.mark.parametrize("relative", [
    "serving_half_plus_two_cpu", "serving_half_plus_two_2_versions", "serving_half_plus_two_mkl",
    "serving_half_plus_two_v2ckpt_bundle", "serving_session_bundles_v1/half_plus_two_2016_v1ckpt",
    "serving_session_bundles_v1/half_plus_two_0.12_sharded_v1",
])
def test_half_plus_two_family(artifact, tmp_path, relative):
    """Every TF Serving test model computes y = 0.5 x + 2 on its default signature."""
    path = artifact(relative)
    model = artifacts.load(path)
    sig = model.signatures["serving_default"]
    x_name, y_name = list(sig.inputs.values())[0], list(sig.outputs.values())[0]
    x = np.array([0.0, 1.0, 4.0], dtype=np.float32)
    shape = verify.tensor_specs(model, [x_name])[x_name][1]
    x_fed = x.reshape([-1] + [1] * (len(shape) - 1)) if shape else x  # unknown shape: elementwise on a vector
    npz = os.path.join(str(tmp_path), "x.npz")
    np.savez(npz, **{x_name: x_fed})
    out = os.path.join(str(tmp_path), "frozen.pb")
    result = api.freeze(path, out, inputs_npz=npz)
    assert_compared(result.comparisons, [y_name])
    y = verify.run_model(artifacts.load(out), [y_name], {x_name: x_fed})[y_name]
    np.testing.assert_allclose(y.reshape(-1), 0.5 * x + 2.0)


def test_half_plus_two_other_signature(artifact, tmp_path):
    path = artifact("serving_half_plus_two_cpu")
    out = os.path.join(str(tmp_path), "frozen.pb")
    api.freeze(path, out, signature="regress_x2_to_y3", outputs=None, verify=False)
    frozen = artifacts.load(out)
    x2 = np.array([[1.0], [3.0]], dtype=np.float32)
    y3 = verify.run_model(frozen, ["y3:0"], {"x2:0": x2})["y3:0"]
    np.testing.assert_allclose(y3, 0.5 * x2 + 3.0)  # half_plus_three


def test_v1_checkpoint_2016(artifact, tmp_path):
    path = artifact("nxt_v1_ckpt")
    model = artifacts.load(path)
    # The only sink is the L1 loss Sum(|label - Relu_1|): the prediction is where the label joins.
    frozen, record = freezing.freeze(model)
    assert record.outputs == ["Relu_1:0"] and record.how_outputs.startswith("inferred")
    assert record.variables == 4  # two weights, two biases; the Adam slots are not needed
    x = np.random.RandomState(0).rand(32, 4).astype(np.float32)
    reader = artifacts.open_checkpoint(model.checkpoint)
    hidden = np.maximum(x.dot(reader.get_tensor("mweight")) + reader.get_tensor("mbias"), 0)
    expected = np.maximum(hidden.dot(reader.get_tensor("mweight2")) + reader.get_tensor("mbias2"), 0)
    actual = verify.run_model(frozen, ["Relu_1:0"], {"Placeholder:0": x})["Relu_1:0"]
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.zoo("mlp")
def test_output_typo_suggests_names(zoo_model, run_cli, tmp_path):
    out = os.path.join(str(tmp_path), "f.pb")
    code, _, err = run_cli("freeze", zoo_model.path, "-o", out, "--outputs", "probabilites")
    assert code == 2 and "did you mean: probabilities" in err
    assert not os.path.exists(out)


@pytest.mark.zoo("mlp")
def test_missing_variable_in_checkpoint(zoo_model, tmp_path, run_cli):
    """A checkpoint that lacks a variable the graph needs: one line naming it, exit 2, no output."""
    import shutil
    prefix = artifacts.load(zoo_model.path).checkpoint
    other = os.path.join(str(tmp_path), "other")
    os.makedirs(other)
    shutil.copy(prefix + ".meta", os.path.join(other, "model.ckpt-6.meta"))
    _write_checkpoint_without(prefix, os.path.join(other, "model.ckpt-6"), drop_suffix="hidden/kernel")
    out = os.path.join(str(tmp_path), "f.pb")
    code, _, err = run_cli("freeze", os.path.join(other, "model.ckpt-6"), "-o", out, "--outputs", "probabilities")
    assert code == 2, err
    assert "hidden/kernel" in err and "not found in checkpoint" in err
    assert len(err.strip().splitlines()) == 1 and not os.path.exists(out)


def _write_checkpoint_without(prefix, new_prefix, drop_suffix):
    """Write a V2 checkpoint with every variable of `prefix` except those ending with drop_suffix."""
    from migrate import tfcompat
    v1 = tfcompat.v1()
    reader = tfcompat.checkpoint_reader(prefix)
    graph = v1.Graph()
    with graph.as_default():
        keep = [v1.Variable(reader.get_tensor(name), name=name) for name in reader.get_variable_to_shape_map()
                if not name.endswith(drop_suffix)]
        saver = v1.train.Saver(keep)
        with v1.Session(graph=graph) as sess:
            sess.run(v1.global_variables_initializer())
            saver.save(sess, new_prefix, write_meta_graph=False)


@pytest.mark.zoo("mlp")
def test_allow_and_deny_lists(zoo_model, tmp_path):
    model = artifacts.load(zoo_model.path)
    frozen, record = freezing.freeze(model, outputs=["probabilities"], deny=["hidden/kernel"])
    kept = sorted(n.name for n in frozen.graph_def.node if n.op == "VariableV2")
    assert kept == ["hidden/kernel"]
    frozen, record = freezing.freeze(model, outputs=["probabilities"], allow=["logits_dense/kernel"])
    kept = sorted(n.name for n in frozen.graph_def.node if n.op == "VariableV2")
    assert kept == ["hidden/bias", "hidden/kernel", "logits_dense/bias"]
    out = os.path.join(str(tmp_path), "partly.pb")
    result = api.freeze(zoo_model.path, out, outputs=["probabilities"], deny=["hidden/kernel"])
    assert result.comparisons is None and os.path.exists(out)


@pytest.mark.zoo("mlp")
def test_isolated_graphs_and_default_graph_untouched(zoo_model, artifact, tmp_path):
    from migrate import tfcompat
    v1 = tfcompat.v1()
    default_before = len(v1.get_default_graph().get_operations())
    first, _ = freezing.freeze(artifacts.load(zoo_model.path), outputs=["probabilities"])
    second, _ = freezing.freeze(artifacts.load(artifact("tf2onnx_regression_3formats/checkpoint")), outputs=["pred"])
    assert len(v1.get_default_graph().get_operations()) == default_before
    first_names = set(n.name for n in first.graph_def.node)
    second_names = set(n.name for n in second.graph_def.node)
    assert "probabilities" in first_names and "pred" not in first_names
    assert "pred" in second_names and "probabilities" not in second_names


@pytest.mark.zoo("lookup", "estimator_examples")
def test_a_table_freezes_in_key_order_to_the_same_bytes(zoo_model, tmp_path, run_cli):
    """A hash table exports in bucket order, which changed from run to run (TF 1.7's lookup model froze to one
    of two files): the table's constants are written in key order, so the same model freezes to the same bytes,
    and the frozen graph still gives the golden outputs."""
    from tensorflow.python.framework import tensor_util
    unknown = _unknown_ops(zoo_model)
    if unknown:  # written by a newer TF than this one: refused in one line (as every verb does)
        return assert_refused(run_cli, "freeze", zoo_model, str(tmp_path / "frozen.pb"), unknown)
    files = []
    for run in range(2):
        out = str(tmp_path / "frozen{}.pb".format(run))
        result = api.freeze(zoo_model.path, out, outputs=zoo_model.outputs, inputs_npz=zoo_model.golden_path)
        assert_compared(result.comparisons, zoo_model.outputs)
        files.append(open(out, "rb").read())
    assert files[0] == files[1]
    frozen = artifacts.load(str(tmp_path / "frozen0.pb")).graph_def
    key_nodes = [n for n in frozen.node if n.name.endswith("/migrate_keys")]
    assert key_nodes, "no table was frozen"
    for node in key_nodes:
        keys = list(tensor_util.MakeNdarray(node.attr["value"].tensor))
        assert len(keys) > 1 and keys == sorted(keys), (node.name, keys)
    golden = zoo_model.golden()
    actual = _frozen_outputs(str(tmp_path / "frozen0.pb"), zoo_model.outputs,
                             dict((name, golden[name]) for name in zoo_model.inputs))
    for name in zoo_model.outputs:
        np.testing.assert_allclose(actual[name], golden[name], rtol=RTOL, atol=ATOL)
