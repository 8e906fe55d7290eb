"""Estimator / TF Transform serving exports (issue 11.3): tf.Example inputs, vocabulary tables read from the
model's own assets, tables made and initialized inside functions. Every verb runs WITHOUT --inputs-npz and
--allow-unsafe-ops; what it writes must give the goldens the TF that wrote the model computed."""
import os
import shutil

import numpy as np
import pytest

from migrate import api, artifacts, examples, safety, tfcompat, verify
from migrate.verification import runners
from migrate.errors import BadInput

RTOL, ATOL = 1e-4, 1e-5
EXAMPLE_MODELS = ("estimator_examples", "estimator_tft")
COLORS = ["red", "green", "blue", "cyan", "magenta"]  # legacy_models.estimator.VOCAB


def _unknown_ops(zoo_model):
    from tests.test_freeze import _unknown_ops as unknown
    return unknown(zoo_model)


def _refused_here(zoo_model, tmp_path, run_cli):
    """True, after checking `migrate export`'s one-line refusal (exit 2, nothing written), when the manifest says
    the model holds ops this TF lacks (tests/conftest.py NEWER_OPS; the registry must agree): not a skip."""
    from tests.test_freeze import assert_refused
    unknown = _unknown_ops(zoo_model)
    if unknown:
        assert_refused(run_cli, "export", zoo_model, os.path.join(str(tmp_path), "refused"), unknown)
    return bool(unknown)


def _golden_feed(zoo_model):
    golden = zoo_model.golden()
    return golden, {"input_example_tensor:0": golden["input_example_tensor:0"]}


def _assert_golden(actual, golden):
    np.testing.assert_allclose(actual["scores:0"], golden["scores:0"], rtol=RTOL, atol=ATOL)


@pytest.mark.zoo(*EXAMPLE_MODELS)
def test_every_verb_without_flags(zoo_model, tmp_path, run_cli):
    """inspect/freeze/optimize/export/verify/convert with no --inputs-npz, no --allow-unsafe-ops."""
    if _refused_here(zoo_model, tmp_path, run_cli):
        return
    golden, feed = _golden_feed(zoo_model)
    out = str(tmp_path)
    code, text, err = run_cli("inspect", zoo_model.path)
    assert code == 0, err
    assert "input input_example_tensor string" in text

    frozen = os.path.join(out, "frozen.pb")
    code, text, err = run_cli("freeze", zoo_model.path, "-o", frozen)
    assert code == 0, err
    assert "OK   scores:0" in text and "lookup tables" in text
    _assert_golden(verify.run_model(artifacts.load(frozen), ["scores:0"], feed), golden)

    optimized = os.path.join(out, "optimized.pb")
    code, text, err = run_cli("optimize", frozen, "-o", optimized)
    assert code == 0, err
    _assert_golden(verify.run_model(artifacts.load(optimized), ["scores:0"], feed), golden)

    exported = os.path.join(out, "exported")
    code, text, err = run_cli("export", zoo_model.path, "-o", exported)
    assert code == 0, err
    for name in zoo_model.entry["signatures"]:
        sig = artifacts.load(zoo_model.path).signatures[name]
        _assert_golden(runners.run_signature(exported, sig, feed), golden)

    code, text, err = run_cli("verify", zoo_model.path, exported)
    assert code == 0, err
    assert "OK   scores" in text

    converted = os.path.join(out, "converted")
    code, text, err = run_cli("convert", zoo_model.path, converted)
    assert code == 0, err
    sig = artifacts.load(zoo_model.path).signatures["serving_default"]
    _assert_golden(runners.run_signature(os.path.join(converted, "saved_model"), sig, feed), golden)
    _assert_golden(verify.run_model(artifacts.load(os.path.join(converted, "optimized.pb")), ["scores:0"], feed),
                   golden)


@pytest.mark.zoo(*EXAMPLE_MODELS)
def test_generated_examples_parse_and_use_the_vocabulary(zoo_model, tmp_path, run_cli):
    """The generated protos are real tf.Examples with the keys, dtypes and shapes the graph parses, colors drawn
    from the model's vocabulary asset (found through graph-level or in-function tables), same seed same bytes;
    and the model's outputs differ between rows (verification compares something)."""
    if _refused_here(zoo_model, tmp_path, run_cli):
        return
    tf = tfcompat.tf()
    model = artifacts.load(zoo_model.path)
    specs = {"input_example_tensor:0": ("string", [None])}
    found = verify.example_inputs(model, specs)
    parsed = found["input_example_tensor:0"]
    by_key = dict((f.key, f) for f in parsed.features)
    assert sorted(by_key) == ["color", "x"]
    assert by_key["x"].kind == "dense" and by_key["x"].dtype == "float32" and by_key["x"].shape == [3]
    assert by_key["color"].vocabulary == COLORS  # read from assets/colors.txt
    feeds = verify.generate_feeds(specs, batch=16, seed=3, examples=found)
    again = verify.generate_feeds(specs, batch=16, seed=3, examples=found)
    other = verify.generate_feeds(specs, batch=16, seed=4, examples=found)
    protos = feeds["input_example_tensor:0"]
    assert protos.shape == (16,) and list(protos) == list(again["input_example_tensor:0"])
    assert list(protos) != list(other["input_example_tensor:0"])
    colors = set()
    for serialized in protos:
        example = tf.train.Example.FromString(serialized)
        assert len(example.features.feature["x"].float_list.value) == 3
        values = example.features.feature["color"].bytes_list.value
        assert values and all(v.decode() in COLORS for v in values)
        colors.update(v.decode() for v in values)
    assert len(colors) >= 3
    scores = verify.run_model(model, ["scores:0"], feeds)["scores:0"]
    assert scores.shape == (16, 1) and len(np.unique(np.round(scores, 6))) > 8


@pytest.mark.zoo(*EXAMPLE_MODELS)
def test_npz_keys_signature_or_tensor_for_every_verb(zoo_model, tmp_path, run_cli):
    """--inputs-npz keyed by the signature input key (`examples`) or by the tensor name, in every verb."""
    if _refused_here(zoo_model, tmp_path, run_cli):
        return
    golden, _ = _golden_feed(zoo_model)
    by_key = os.path.join(str(tmp_path), "by_key.npz")
    by_tensor = os.path.join(str(tmp_path), "by_tensor.npz")
    np.savez(by_key, examples=golden["input_example_tensor:0"])
    np.savez(by_tensor, **{"input_example_tensor:0": golden["input_example_tensor:0"]})
    for npz in (by_key, by_tensor):
        tag = os.path.basename(npz)[:-4]
        frozen = os.path.join(str(tmp_path), tag + ".pb")
        code, text, err = run_cli("freeze", zoo_model.path, "-o", frozen, "--inputs-npz", npz)
        assert code == 0, err
        assert "shape=[{}, 1]".format(len(golden["scores:0"])) in text  # the npz rows, not generated ones
        code, text, err = run_cli("convert", zoo_model.path, os.path.join(str(tmp_path), tag), "--no-trt",
                                  "--inputs-npz", npz)
        assert code == 0, err
        exported = os.path.join(str(tmp_path), tag + "_exported")
        code, text, err = run_cli("export", zoo_model.path, "-o", exported, "--inputs-npz", npz)
        assert code == 0, err
        code, text, err = run_cli("verify", zoo_model.path, exported, "--inputs-npz", npz)
        assert code == 0, err
        assert "shape=[{}, 1]".format(len(golden["scores:0"])) in text


@pytest.mark.zoo("estimator_tft")
def test_tables_initialized_in_functions_survive_freeze(zoo_model, tmp_path, run_cli):
    """The table is created by a `__creator` function and initialized by an `__initializer` one given the
    asset: the frozen graph re-initializes it from constants on the call's handle (migrate_init_tables), so
    it runs without the vocabulary file and gives the goldens; an out-of-vocabulary color (purple) included."""
    if _refused_here(zoo_model, tmp_path, run_cli):
        return
    model = artifacts.load(zoo_model.path)
    calls = [n.attr["f"].func.name for n in model.graph_def.node if n.op == "StatefulPartitionedCall"]
    functions = dict((f.signature.name, f) for f in model.graph_def.library.function)
    from migrate.graph.ops import function_nodes
    inside = set(n.op for name in calls for n in function_nodes(name, functions))
    assert {"HashTableV2", "InitializeTableFromTextFileV2", "LookupTableFindV2"} <= inside
    assert not any(n.op in ("HashTableV2", "InitializeTableFromTextFileV2") for n in model.graph_def.node)
    golden, feed = _golden_feed(zoo_model)
    out = os.path.join(str(tmp_path), "frozen.pb")
    result = api.freeze(zoo_model.path, out)
    assert result.record.tables and all(row.ok for row in result.comparisons)
    shutil.rmtree(os.path.join(zoo_model.path, "assets"))  # the frozen graph must not need the file
    frozen = artifacts.load(out)
    inits = [n for n in frozen.graph_def.node if n.op == "InitializeTableV2"]
    assert len(inits) == 1 and inits[0].input[0].startswith("StatefulPartitionedCall")
    keys = [n for n in frozen.graph_def.node if n.name == inits[0].input[1]][0]
    assert sorted(v.decode() for v in tfcompat.v1().make_ndarray(keys.attr["value"].tensor)) == sorted(COLORS)
    _assert_golden(verify.run_model(frozen, ["scores:0"], feed), golden)


@pytest.mark.zoo("estimator_tft")
def test_tables_in_functions_export_tf1_format(zoo_model, tmp_path, run_cli):
    """--format tf1 keeps the graph, the asset and the source's table initializer (the call to the
    `__initializer` function); the SavedModel reloads without the source and gives the goldens."""
    if _refused_here(zoo_model, tmp_path, run_cli):
        return
    golden, feed = _golden_feed(zoo_model)
    sig = artifacts.load(zoo_model.path).signatures["serving_default"]
    out = os.path.join(str(tmp_path), "tf1")
    api.export(zoo_model.path, out, fmt="tf1")
    assert sorted(os.listdir(os.path.join(out, "assets"))) == ["colors.txt"]
    shutil.rmtree(zoo_model.root)
    _assert_golden(runners.run_signature(out, sig, feed), golden)


@pytest.mark.zoo(*EXAMPLE_MODELS)
def test_safety_allows_own_assets_and_restore_but_not_other_files(zoo_model, tmp_path, run_cli):
    if _refused_here(zoo_model, tmp_path, run_cli):
        return
    model = artifacts.load(zoo_model.path)
    assert safety.unsafe_nodes(model, ["scores:0"]) == []
    # a file name that is not one of the model's assets: the initializer reads whatever it names
    stripped = artifacts.load(zoo_model.path)
    stripped.assets = {}
    found = safety.unsafe_nodes(stripped, ["scores:0"])
    assert found and any("InitializeTableFromTextFile" in op for _, op in found)
    # an asset whose real path lies outside the SavedModel (a symlink out of assets/)
    outside = os.path.join(str(tmp_path), "elsewhere.txt")
    with open(outside, "w") as handle:
        handle.write("\n".join(COLORS) + "\n")
    asset = os.path.join(zoo_model.path, "assets", "colors.txt")
    os.remove(asset)
    os.symlink(outside, asset)
    found = safety.unsafe_nodes(artifacts.load(zoo_model.path), ["scores:0"])
    assert found and any("InitializeTableFromTextFile" in op for _, op in found)
    with pytest.raises(BadInput) as error:
        api.freeze(zoo_model.path, os.path.join(str(tmp_path), "f.pb"))
    assert "--allow-unsafe-ops" in error.value.fix


@pytest.mark.zoo(*EXAMPLE_MODELS)
def test_migrates_own_tf2_export_passes_the_gate(zoo_model, tmp_path, run_cli):
    """A TF2 SavedModel migrate wrote restores through `__traced_restore` (RestoreV2 in a function, fed the
    file name migrate passes): allowed; `migrate verify src exported/` runs."""
    if _refused_here(zoo_model, tmp_path, run_cli):
        return
    if not tfcompat.is_tf2():
        pytest.skip("a TF2 SavedModel needs TF 2.x")
    exported = os.path.join(str(tmp_path), "exported")
    api.export(zoo_model.path, exported, fmt="tf2")
    model = artifacts.load(exported)
    restore = [f.signature.name for f in model.graph_def.library.function if "traced_restore" in f.signature.name]
    assert restore and any(n.op == "RestoreV2" for f in model.graph_def.library.function
                           if f.signature.name in restore for n in f.node_def)
    assert safety.unsafe_nodes(model, list(model.signatures["serving_default"].outputs.values())) == []
    rows, _ = api.verify_artifacts(zoo_model.path, exported)
    assert rows and all(row.ok for row in rows)


# ------------------------------------------------------------------------------------------ parse specs

def _parse_graph(kind):
    """A graph built by the running TF parsing `serialized` with every kind of feature it has."""
    tf1 = tfcompat.v1()
    graph = tfcompat.tf().Graph()
    with graph.as_default():
        if kind == "single":
            serialized = tf1.placeholder(tf1.string, [], name="serialized")
            parsed = tf1.parse_single_example(serialized, {
                "a": tf1.FixedLenFeature([2], tf1.float32), "b": tf1.VarLenFeature(tf1.int64),
                "c": tf1.FixedLenFeature([], tf1.string, default_value="z")})
        else:
            serialized = tf1.placeholder(tf1.string, [None], name="serialized")
            spec = {"a": tf1.FixedLenFeature([2, 2], tf1.float32), "b": tf1.VarLenFeature(tf1.int64),
                    "c": tf1.FixedLenFeature([1], tf1.string, default_value="z"),
                    "d": tf1.FixedLenSequenceFeature([3], tf1.float32, allow_missing=True)}
            if kind == "ragged":
                spec["r"] = tfcompat.tf().io.RaggedFeature(tf1.int64)
            parsed = tf1.parse_example(serialized, spec)
        outputs = {}
        for key, value in parsed.items():
            if hasattr(value, "dense_shape"):
                value = value.values
            elif hasattr(value, "flat_values"):
                value = value.flat_values
            outputs[key] = tf1.identity(value, name="out_" + key)
    return graph.as_graph_def(), sorted(t.name for t in outputs.values())


@pytest.mark.parametrize("kind", ["batch", "single", "ragged"])
def test_examples_fit_every_parse_op(kind):
    """ParseExample / ParseExampleV2 (whichever this TF writes), ParseSingleExample, ragged keys: the generated
    protos parse with the graph's own op, every key present with the right count and dtype."""
    if kind == "ragged" and not hasattr(getattr(tfcompat.tf(), "io", None), "RaggedFeature"):
        pytest.skip("tf.io.RaggedFeature needs TF >= 2.1 (ParseExampleV2)")
    graph_def, outputs = _parse_graph(kind)
    from migrate import model as m
    model = m.Model(m.FROZEN_GRAPH, "<test>", graph_def)
    dims = [] if kind == "single" else [None]
    specs = {"serialized:0": ("string", dims)}
    found = verify.example_inputs(model, specs)
    parsed = found["serialized:0"]
    keys = dict((f.key, f) for f in parsed.features)
    assert set(keys) >= {"a", "b", "c"}
    assert keys["b"].kind == "sparse" and keys["b"].dtype == "int64"
    if kind == "ragged":
        assert keys["r"].kind == "ragged"
    feeds = verify.generate_feeds(specs, batch=4, seed=0, examples=found)
    values = verify.run_model(model, outputs, feeds)
    rows = 1 if kind == "single" else 4
    values = dict((name, np.asarray(value)) for name, value in values.items())
    a = values["out_a:0"]
    assert a.size == rows * (2 if kind == "single" else 4) and np.all(np.isfinite(a)) and np.std(a) > 0
    assert values["out_c:0"].size == rows and not any(v == b"z" for v in values["out_c:0"].reshape(-1))
    assert 1 * rows <= values["out_b:0"].size <= 3 * rows
    assert examples.describe(parsed).startswith("serialized:0: tf.Example protos")


# ------------------------------------------------------------------------------------------ a real export

def test_half_plus_two_export_and_verify_without_npz(artifact, tmp_path, run_cli):
    """TF Serving's half_plus_two (TF 1.14): classify/regress signatures take tf.Example protos."""
    source = artifact("serving_half_plus_two_cpu")
    out = os.path.join(str(tmp_path), "exported")
    result = api.export(source, out)
    assert sorted(result.comparisons) == ["classify_x_to_y", "regress_x2_to_y3", "regress_x_to_y",
                                             "regress_x_to_y2", "serving_default"]
    for name, rows in result.comparisons.items():
        assert rows and all(row.ok for row in rows), name
    model = artifacts.load(source)
    found = verify.example_inputs(model, {"tf_example:0": ("string", None)})
    keys = dict((f.key, f) for f in found["tf_example:0"].features)
    assert sorted(keys) == ["x", "x2"] and keys["x"].shape == [1]
    feeds = verify.generate_feeds({"tf_example:0": ("string", None)}, batch=3, seed=0, examples=found)
    x = np.array([[tfcompat.tf().train.Example.FromString(e).features.feature["x"].float_list.value[0]]
                  for e in feeds["tf_example:0"]], dtype=np.float32)
    assert len(np.unique(x)) == 3
    for name, output in (("regress_x_to_y", "y:0"), ("classify_x_to_y", "y:0")):
        actual = runners.run_signature(out, model.signatures[name], feeds)[output]
        np.testing.assert_allclose(actual, 0.5 * x + 2.0, rtol=1e-6, err_msg=name)
    y2 = runners.run_signature(out, model.signatures["regress_x_to_y2"], feeds)["y2:0"]
    np.testing.assert_allclose(y2, verify.run_model(model, ["y2:0"], feeds)["y2:0"], rtol=1e-6)
    for signature in ("regress_x_to_y", "classify_x_to_y"):
        code, text, err = run_cli("verify", source, out, "--signature", signature, "--batch", "3")
        assert code == 0, err
        assert "shape=[3, 1]" in text
        frozen = os.path.join(str(tmp_path), signature + ".pb")
        code, text, err = run_cli("freeze", source, "--signature", signature, "-o", frozen)
        assert code == 0, err


def test_parse_keys_computed_at_run_time_ask_for_npz():
    """No Examples can be written when the parse op's keys are not constants: the error asks for
    --inputs-npz instead of feeding protos that would not parse."""
    from migrate import model as m
    from migrate.graph.names import node_name
    graph_def, _ = _parse_graph("batch")
    parser = [n for n in graph_def.node if n.op in ("ParseExample", "ParseExampleV2")][0]
    key = [n for n in graph_def.node if n.name == node_name(parser.input[3 if parser.op == "ParseExampleV2"
                                                                          else 2])][0]
    dtype = key.attr["dtype"].type
    key.op = "Placeholder"
    key.attr.clear()
    key.attr["dtype"].type = dtype
    model = m.Model(m.FROZEN_GRAPH, "<test>", graph_def)
    specs = {"serialized:0": ("string", [None])}
    assert verify.example_inputs(model, specs) == {}
    with pytest.raises(BadInput) as error:
        verify.generate_feeds(specs, examples=verify.example_inputs(model, specs))
    assert "--inputs-npz" in error.value.fix


@pytest.mark.zoo("lookup")
def test_string_input_a_table_reads_gets_vocabulary_words(zoo_model, tmp_path, run_cli):
    """A plain string placeholder looked up in a vocabulary-file table: words of that vocabulary, so convert
    needs no --inputs-npz, and the ids the table gives are real ones (not all the OOV row)."""
    if _refused_here(zoo_model, tmp_path, run_cli):
        return
    model = artifacts.load(zoo_model.path)
    specs = {"words:0": ("string", [None])}
    feeds = verify.generate_feeds(specs, batch=12, seed=0, examples=verify.example_inputs(model, specs))
    ids = verify.run_model(model, ["ids:0"], feeds)["ids:0"]
    (asset,) = model.assets.values()
    with open(asset) as handle:
        vocabulary = handle.read().split()
    assert [vocabulary[i] for i in ids] == [w.decode() for w in feeds["words:0"]]
    code, text, err = run_cli("convert", zoo_model.path, os.path.join(str(tmp_path), "out"), "--batch", "4")
    assert code == 0, err
    assert "generated words:0: words of a {}-word vocabulary".format(len(vocabulary)) in text
