"""TF-TRT of TF 2.x: trt_convert.TrtGraphConverterV2 run on a temporary SavedModel (+ build, calibration),
the converted serving function read back as a frozen GraphDef with the original names."""
import os
import shutil
import tempfile

import numpy as np

from migrate import tfcompat
from collections import namedtuple

from migrate.errors import BadInput
from migrate.graph.names import node_name
from migrate.tftrt.options import Api, input_specs
from migrate.tftrt.outcome import ran
from migrate.tftrt.saved_model import SERVE_TAG, SIGNATURE_KEY, saved_function_graph, signature_keys, write_saved_model

_V2Plan = namedtuple("_V2Plan", ["kwargs", "convert_kwargs", "inputs", "outputs", "calibration", "build"])


def convert(module, graph_def, outputs, opts, feeds, record):
    """GraphDef -> temporary TF1 SavedModel -> converter (convert, build, save) -> the saved serving function,
    frozen, with the original input/output names. Engines prebuilt by build() are stored as SavedModel
    assets, which a GraphDef cannot carry: the TRTEngineOps in the returned graph rebuild them on first run."""
    cls = tfcompat.trt_api(module, "TrtGraphConverterV2")
    record.api_call = "TrtGraphConverterV2.convert" + ("+build" if opts["static"] else "")
    if module is None:
        return record.not_attempted(graph_def, tfcompat.trt_status().reason)
    if cls is None:
        return record.not_attempted(graph_def, "TF {}: {} has no TrtGraphConverterV2".format(
            tfcompat.version_string(), tfcompat.TRT_CONVERT_MODULE))
    plan = _v2_plan(module, cls, graph_def, outputs, opts, feeds)
    if not tfcompat.executing_eagerly():
        return record.not_attempted(graph_def, "TF {}: TrtGraphConverterV2 needs eager execution (TF 2 "
                                    "behaviour), which is off here".format(tfcompat.version_string()))
    refusal = tfcompat.trt_converter_refusal(record.generation, "TrtGraphConverterV2")
    if refusal:  # the probe already knows: no temporary SavedModel of the graph is written for nothing
        record.planned("TrtGraphConverterV2", _v2_constructor_kwargs(plan))
        return record.not_attempted(graph_def, refusal)
    workdir = tempfile.mkdtemp(prefix="migrate-tftrt-")
    try:
        source_dir, converted_dir = os.path.join(workdir, "source"), os.path.join(workdir, "converted")
        try:
            write_saved_model(graph_def, plan.inputs, plan.outputs, source_dir)
        except Exception as exc:  # disk full / file size limit in TMPDIR: say where, never the temp path
            if not isinstance(exc, (IOError, OSError)) and workdir not in str(exc):
                raise
            raise BadInput("cannot write TF-TRT's temporary SavedModel: {}".format(
                tfcompat.write_error_reason(exc)),
                           tempfile.gettempdir(), "free space there, set TMPDIR to a larger disk, or pass --no-trt")
        try:
            _run_v2(cls, plan, source_dir, converted_dir, record)
            record.step = "reading back the converted SavedModel"
            result = saved_function_graph(converted_dir, plan.inputs, plan.outputs)
        except Exception as exc:
            return record.failed(graph_def, exc)
        return ran(record, graph_def, result, opts)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _v2_plan(module, cls, graph_def, outputs, opts, feeds):
    """Constructor and convert() keywords, signature keys, and the inputs for calibration and build."""
    specs = input_specs(graph_def, outputs)
    inputs = signature_keys(sorted(specs))
    kwargs = _v2_kwargs(module, Api("TrtGraphConverterV2", cls), opts, feeds is not None)
    convert_kwargs, calibration = {}, None
    if feeds is not None:
        Api("TrtGraphConverterV2.convert", cls.convert).require("calibration_input_fn", "calib_feeds")
        calibration = [dict((key, feed[tensor]) for key, tensor in inputs.items()) for feed in feeds]
        convert_kwargs["calibration_input_fn"] = _yielder(calibration)
    build = None
    if opts["static"]:
        Api("TrtGraphConverterV2", cls).require("build", "static")
        build = [_zeros_at_static_shapes(graph_def, outputs, opts, specs, inputs)]
    return _V2Plan(kwargs, convert_kwargs, inputs, signature_keys(outputs), calibration, build)


def _v2_kwargs(module, api, opts, calibrating):
    """Constructor keywords: direct ones from TF 2.8, a TrtConversionParams before."""
    wanted = {"precision_mode": opts["precision"], "minimum_segment_size": opts["minimum_segment_size"],
              "max_workspace_size_bytes": opts["max_workspace_size"]}
    if opts["maximum_cached_engines"] is not None:
        wanted["maximum_cached_engines"] = opts["maximum_cached_engines"]
    if opts["precision"] == "INT8":
        wanted["use_calibration"] = calibrating
    direct = {}
    if opts["dynamic"]:
        api.require("use_dynamic_shape", "dynamic")
        direct["use_dynamic_shape"] = True
    if api.has("precision_mode"):
        return dict(wanted, **direct)
    params = module.DEFAULT_TRT_CONVERSION_PARAMS
    if opts["max_batch"] is not None and "max_batch_size" in params._fields:
        wanted["max_batch_size"] = opts["max_batch"]
    direct["conversion_params"] = params._replace(**dict(
        (key, value) for key, value in wanted.items() if key in params._fields))
    return direct


def _zeros_at_static_shapes(graph_def, outputs, opts, specs, inputs):
    """{signature key: zeros} at the shapes set_static_shapes gives (unknown batch = max_batch)."""
    from migrate.passes import base, set_static_shapes
    context = base.PassContext(outputs=outputs, options={"static": True, "max_batch": opts["max_batch"],
                                                          "input_shapes": opts["input_shapes"] or {}})
    fixed, _ = set_static_shapes.run(graph_def, context)
    wanted = set(node_name(tensor) for tensor in specs)
    shapes = dict((node.name, [dim.size for dim in node.attr["shape"].shape.dim])
                  for node in fixed.node if node.name in wanted)
    return dict((key, np.zeros(shapes[node_name(tensor)], dtype=specs[tensor][0]))
                for key, tensor in inputs.items())


def _yielder(batches):
    def input_fn():
        for batch in batches:
            yield batch
    return input_fn


def _v2_constructor_kwargs(plan):
    return dict(plan.kwargs, input_saved_model_dir="<temporary SavedModel>", input_saved_model_tags=[SERVE_TAG],
                input_saved_model_signature_key=SIGNATURE_KEY)


def _run_v2(cls, plan, source_dir, converted_dir, record):
    record.calling("TrtGraphConverterV2", _v2_constructor_kwargs(plan))
    converter = cls(input_saved_model_dir=source_dir, input_saved_model_tags=[SERVE_TAG],
                    input_saved_model_signature_key=SIGNATURE_KEY, **plan.kwargs)
    shown = dict(plan.convert_kwargs)
    if plan.calibration is not None:
        shown["calibration_input_fn"] = "<{} calib_feeds>".format(len(plan.calibration))
    record.calling("TrtGraphConverterV2.convert", shown)
    converter.convert(**plan.convert_kwargs)
    if plan.build is not None:
        record.calling("TrtGraphConverterV2.build", {"input_fn": dict(
            (key, list(value.shape)) for key, value in plan.build[0].items())})
        converter.build(input_fn=_yielder(plan.build))
    record.calling("TrtGraphConverterV2.save", {"output_saved_model_dir": "<temporary SavedModel>"})
    converter.save(converted_dir)
