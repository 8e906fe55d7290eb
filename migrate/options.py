"""Option records: one per option group the CLI verbs share (cli.py's decorators build them from the flags),
so every verb that runs TF-TRT takes the same TF-TRT flags and hands the library the same record.

Each record is a namedtuple with defaults (Python 3.6: no dataclasses); build one with keywords, e.g.
`TrtOptions(precision="FP16", minimum_segment_size=2)`; `_replace` gives a changed copy.
  ShapeOptions   --static --max-batch --input-shape
  TrtOptions     --precision --calib-data --minimum-segment-size --max-workspace-size --maximum-cached-engines
                 --dynamic --api --require-trt (--no-trt: no record at all)
  VerifyOptions  --inputs-npz --batch --seed --rtol --atol (--no-verify: verify=False)
"""
from collections import namedtuple


def _record(name, fields, doc):
    record = namedtuple(name, [field for field, _ in fields])
    record.__new__.__defaults__ = tuple(default for _, default in fields)
    record.__doc__ = doc
    return record


ShapeOptions = _record("ShapeOptions", [("static", False), ("max_batch", None), ("input_shapes", None)],
                       "Input shapes: static makes every input shape fully defined, batch = max_batch (1 when "
                       "unset); input_shapes {name: [dims, None keeps the graph's]}.")

TrtOptions = _record("TrtOptions", [
    ("precision", "FP32"), ("calib_data", None), ("minimum_segment_size", 3), ("max_workspace_size", 1 << 30),
    ("maximum_cached_engines", None), ("dynamic", False), ("api", "auto"), ("require_trt", False)],
    "TF-TRT: what the converter is asked for (tftrt.DEFAULT_OPTIONS names the same keys); calib_data an .npz or "
    "a folder of .npz files; require_trt: no engines built is exit 3.")

VerifyOptions = _record("VerifyOptions", [("inputs_npz", None), ("batch", 1), ("seed", 0), ("rtol", 1e-5),
                                          ("atol", 1e-5), ("verify", True)],
                        "Verification: inputs from inputs_npz, else generated (batch = size of unknown dims, "
                        "seed); tolerances; verify=False skips the comparison.")


def shape_options(shapes):
    """ShapeOptions with --static's default batch (1) filled in."""
    shapes = shapes or ShapeOptions()
    if shapes.static and shapes.max_batch is None:
        shapes = shapes._replace(max_batch=1)
    return shapes._replace(input_shapes=dict(shapes.input_shapes or {}))


def trt_dict(trt, shapes=None):
    """The {option: value} api.optimize / api.convert take as `trt` (None: no TF-TRT), from a TrtOptions and the
    ShapeOptions TF-TRT builds its engines for."""
    if trt is None:
        return None
    shapes = shape_options(shapes)
    result = trt._asdict()
    result.update(max_batch=shapes.max_batch, static=shapes.static, input_shapes=shapes.input_shapes)
    return result
