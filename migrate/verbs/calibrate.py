"""`migrate calibrate`: INT8 ranges on the CPU, the TensorRT cache, and what INT8 would cost
(migrate/calibration/run.py)."""
from migrate import io, safety
from migrate.verbs import common


@common.memory_named
def calibrate(source, out_dir, calib_data, method="entropy", percentile=None, batches=None, eval_data=None,
              trt_version=None, outputs=None, tag=None, signature=None, checkpoint=None, force=False,
              allow_unsafe=False, sensitivity=True, progress=common.quiet, set_values=None, input_at=None):
    """INT8 ranges per tensor from calibration batches, the TensorRT cache, and simulated INT8 error, into
    out_dir (calibration.cache, dynamic_ranges.json, report.json); see migrate/calibration/run.py.
    Returns options.CalibrateResult (report, out_dir, recommended)."""
    from migrate import model as m
    from migrate.calibration import cache, histogram, run
    percentile = histogram.DEFAULT_PERCENTILE if percentile is None else percentile
    trt_version = trt_version or cache.DEFAULT_TRT_VERSION
    run.check_options(method, percentile, trt_version)
    io.check_output_path(out_dir, [source, checkpoint, calib_data, eval_data], force, directory=True)
    run.data.batch_files(calib_data)  # a missing or empty folder is refused before the model loads
    if eval_data:
        run.data.batch_files(eval_data)
    model, output_tensors, _ = common.frozen_source(source, outputs, tag, signature, checkpoint, progress,
                                              allow_unsafe, input_at, set_values)
    if model.kind == m.FROZEN_GRAPH and set_values:
        model, _ = common.with_switches(model, set_values, progress)
    safety.check(model, output_tensors, allow_unsafe)
    from migrate.session import check_attrs_known, check_ops_known
    check_ops_known(model.graph_def, model.path)
    if model.kind == m.FROZEN_GRAPH:
        check_attrs_known(model.graph_def, model.path)
    with io.atomic_dir(out_dir, replace=force, source=source) as temp:
        report = run.calibrate(model, output_tensors, temp, calib_data, method, percentile, batches, eval_data,
                               trt_version, sensitivity, progress, source)
    from migrate.options import CalibrateResult
    return CalibrateResult(report, out_dir, report["recommended"]["method"])
