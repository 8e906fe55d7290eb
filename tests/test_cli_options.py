"""The option groups cli.py shares between verbs: every verb that runs TF-TRT (optimize, convert) takes the same
TF-TRT flags and each reaches the converter (the report's tf_trt.kwargs_used: what TF-TRT was, or would have
been, called with in this TF); convert --report writes its report where asked."""
import json
import os

import numpy as np
import pytest

from migrate import options, tfcompat

TF = tfcompat.version()[:2]
CALL = {tfcompat.TRT_CONTRIB: "create_inference_graph", tfcompat.TRT_CONVERTER_V1: "TrtGraphConverter",
        tfcompat.TRT_CONVERTER_V2: "TrtGraphConverterV2"}
FLAGS = ["--minimum-segment-size", "2", "--max-workspace-size", "1000", "--maximum-cached-engines", "2",
         "--dynamic", "--api", "auto"]


@pytest.fixture
def frozen(tmp_path):
    """x [?, 3] -> y = relu(x * 2) + 1: a frozen graph with a segment TF-TRT could take."""
    v1 = tfcompat.v1()
    graph = v1.Graph()
    with graph.as_default():
        x = v1.placeholder(v1.float32, [None, 3], name="x")
        v1.add(v1.nn.relu(x * 2.0), 1.0, name="y")
    path = os.path.join(str(tmp_path), "frozen.pb")
    with open(path, "wb") as handle:
        handle.write(graph.as_graph_def().SerializeToString())
    return path


def _run(run_cli, verb, frozen, tmp_path, *flags):
    report = os.path.join(str(tmp_path), "r.json")
    out = os.path.join(str(tmp_path), "out" if verb == "convert" else "o.pb")
    target = [out] if verb == "convert" else ["-o", out]
    code, stdout, err = run_cli(verb, frozen, *(target + ["--outputs", "y", "--report", report] + list(flags)))
    return code, err, report, out


@pytest.mark.parametrize("verb", ["optimize", "convert"])
def test_every_tftrt_flag_reaches_the_converter(verb, frozen, tmp_path, run_cli):
    status = tfcompat.trt_status()
    if TF < (1, 9):  # the 1.7 wheel has no TF-TRT module: the version table refuses what contrib lacks
        code, err, _, _ = _run(run_cli, verb, frozen, tmp_path, *FLAGS)
        assert code == 2 and "needs" in err and "TF 1.9" in err, err
        return
    code, err, report, out = _run(run_cli, verb, frozen, tmp_path, *FLAGS)
    assert code == 0, err
    with open(report) as handle:
        trt = json.load(handle)["tf_trt"]
    assert status.module_file is not None
    used = trt["kwargs_used"][CALL[trt["generation"]]]
    assert used["minimum_segment_size"] == 2 and used["max_workspace_size_bytes"] == 1000, used
    assert used["maximum_cached_engines"] == 2, used
    assert used["use_dynamic_shape" if trt["generation"] == tfcompat.TRT_CONVERTER_V2 else "is_dynamic_op"] is True
    if verb == "convert":  # --report is the report.json written into OUT_DIR
        with open(os.path.join(out, "report.json")) as handle:
            assert json.load(handle) == json.load(open(report))


@pytest.mark.parametrize("verb", ["optimize", "convert"])
def test_api_flag_picks_the_converter(verb, frozen, tmp_path, run_cli):
    code, err, report, _ = _run(run_cli, verb, frozen, tmp_path, "--api", "v1")
    if TF < (1, 14):
        assert code == 2 and "api 'v1'" in err and "needs TF >= 1.14" in err, err
        return
    assert code == 0, err
    with open(report) as handle:
        trt = json.load(handle)["tf_trt"]
    assert trt["generation"] == tfcompat.TRT_CONVERTER_V1 and "TrtGraphConverter" in trt["kwargs_used"], trt


def test_convert_no_trt_reports_tftrt_not_requested_and_outputs_match(frozen, tmp_path, run_cli):
    code, err, report, out = _run(run_cli, "convert", frozen, tmp_path, "--no-trt")
    assert code == 0, err
    with open(report) as handle:
        summary = json.load(handle)
    assert summary["tf_trt"] == "not requested (--no-trt)"
    rows = [row for rows in summary["steps"]["verify"].values() for row in rows]
    assert [(row["output"], row["status"]) for row in rows] == [("y:0", "ok")]


def test_trt_dict_fills_static_batch_and_shapes():
    trt = options.trt_dict(options.TrtOptions(precision="FP16", dynamic=True),
                           options.ShapeOptions(static=True, input_shapes={"x": [None, 3]}))
    assert trt == {"precision": "FP16", "calib_data": None, "minimum_segment_size": 3, "max_workspace_size": 1 << 30,
                   "maximum_cached_engines": None, "dynamic": True, "api": "auto", "require_trt": False,
                   "max_batch": 1, "static": True, "input_shapes": {"x": [None, 3]}}
    assert options.trt_dict(None, options.ShapeOptions(static=True)) is None
    assert np.isclose(options.VerifyOptions().rtol, 1e-5)


def test_api_takes_option_records_and_returns_named_results(frozen, tmp_path):
    from migrate import api
    out = os.path.join(str(tmp_path), "o.pb")
    x = np.arange(6, dtype=np.float32).reshape(2, 3) - 2
    npz = os.path.join(str(tmp_path), "x.npz")
    np.savez(npz, x=x)
    result = api.optimize(frozen, out, outputs=["y"], options=(
        options.ShapeOptions(static=True, max_batch=2), options.VerifyOptions(inputs_npz=npz, rtol=0, atol=0)))
    assert isinstance(result, options.OptimizeResult) and result.outputs == ["y:0"]
    assert result["outputs"] is result.outputs and result.get("trt") is None  # the dict spelling still reads
    assert [(row.output, row.ok, row.checked, row.max_abs) for row in result.comparisons] == [("y:0", True, True, 0.0)]
    assert "set_static_shapes" in result.passes
    from migrate import artifacts
    x_node = [n for n in artifacts.load(out).graph_def.node if n.name == "x"][0]
    assert [d.size for d in x_node.attr["shape"].shape.dim] == [2, 3]  # the ShapeOptions reached the passes
    with pytest.raises(TypeError, match="not an option record"):
        api.optimize(frozen, out, outputs=["y"], options=({"static": True},))
