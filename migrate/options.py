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


# ------------------------------------------------------------------------------------------ results

def _result(name, fields, doc):
    """A namedtuple read by attribute (result.comparisons); result["comparisons"] and result.get() still work
    for callers written against the dicts the verbs returned before."""
    base = namedtuple(name, fields)

    def getitem(self, key):
        return getattr(self, key) if isinstance(key, str) else base.__getitem__(self, key)

    def get(self, key, default=None):
        return getattr(self, key, default)
    return type(name, (base,), {"__slots__": (), "__doc__": doc, "__getitem__": getitem, "get": get})


FreezeResult = _result("FreezeResult", ["model", "record", "comparisons", "nodes", "outputs"],
                       "api.freeze: the frozen Model, freeze's record, [Comparison] (None: not verified), node "
                       "count and output tensors of the written graph.")
OptimizeResult = _result("OptimizeResult", ["model", "records", "trt", "comparisons", "outputs", "how_outputs",
                                            "nodes_before", "nodes", "passes", "trt_plan"],
                         "api.optimize: the optimized Model (None once written, in convert), the passes' records, "
                         "the TF-TRT outcome (None: not requested), [Comparison], outputs and how they were "
                         "chosen, node counts, pass names, and where TF-TRT built no engine the plan of what it "
                         "would build with TensorRT (planning.plan's dict; None otherwise).")
PlanResult = _result("PlanResult", ["plan", "graph_def", "outputs"],
                     "api.plan: the plan (planning.plan's JSON-ready dict), the GraphDef it was made of (after "
                     "the passes), the output tensors.")
ExportResult = _result("ExportResult", ["comparisons", "signatures", "format", "written"],
                       "api.export: {signature: [Comparison]}, signature names, tf1/tf2, written.")
VerifyResult = _result("VerifyResult", ["rows", "notes"],
                       "api.verify_artifacts: [Comparison] and notes (unpacks as `rows, notes`).")
ConvertResult = _result("ConvertResult", ["report", "out_dir", "verification"],
                        "api.convert: the report (the dict written as OUT_DIR/report.json and by --report), "
                        "OUT_DIR, {signature: [Comparison]} of the final check.")
CalibrateResult = _result("CalibrateResult", ["report", "out_dir", "recommended"],
                          "api.calibrate: the report (the dict written as OUT_DIR/report.json), OUT_DIR, the "
                          "method it recommends.")
DemoResult = _result("DemoResult", ["summary", "golden_comparisons", "out_dir", "golden_tf"],
                     "api.demo: convert's report, the SavedModel vs TF's goldens, where, the TF that built them.")


def keywords(records):
    """{keyword: value} the api verbs take for option records (one record or a sequence of them): what
    api.freeze / optimize / export / convert / verify_artifacts do with `options=`."""
    if records is None:
        records = ()
    elif hasattr(records, "_fields"):
        records = (records,)
    found, shapes, trt = {}, None, None
    for record in records:
        if isinstance(record, ShapeOptions):
            shapes = shape_options(record)
            found.update(static=shapes.static, max_batch=shapes.max_batch, input_shapes=shapes.input_shapes)
        elif isinstance(record, TrtOptions):
            trt = record
        elif isinstance(record, VerifyOptions):
            found.update(inputs_npz=record.inputs_npz, batch=record.batch, seed=record.seed, rtol=record.rtol,
                         atol=record.atol)
            if not record.verify:  # (verify_artifacts has no such keyword: it always verifies)
                found["verify_result"] = False
        else:
            raise TypeError("not an option record: {!r}".format(record))
    if trt is not None:
        found["trt"] = trt_dict(trt, shapes)
    return found
