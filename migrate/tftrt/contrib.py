"""TF-TRT of TF 1.7-1.13: tensorflow.contrib.tensorrt.create_inference_graph (+ calib_graph_to_infer_graph
for INT8 calibration)."""
from migrate import tfcompat
from migrate.tftrt.options import Api, graph_kwargs, node_names
from migrate.tftrt.outcome import count_engines, ran


def convert(module, graph_def, outputs, opts, feeds, record):
    create = tfcompat.trt_api(module, "create_inference_graph")
    infer = tfcompat.trt_api(module, "calib_graph_to_infer_graph")
    # Plan first (BadInput before anything runs); with no module, the version table answers.
    kwargs = graph_kwargs(Api("create_inference_graph", create), opts, feeds is not None)
    infer_kwargs = _infer_kwargs(Api("calib_graph_to_infer_graph", infer), opts) if feeds else None
    record.api_call = tfcompat.CONTRIB_MODULE + ".create_inference_graph" + (
        "+calib_graph_to_infer_graph" if feeds else "")
    if module is None:
        return record.not_attempted(graph_def, tfcompat.trt_status().reason)
    try:
        record.calling("create_inference_graph", dict(kwargs, input_graph_def=graph_def, outputs=node_names(outputs)))
        result = create(graph_def, node_names(outputs), **kwargs)
        if feeds is None:
            return ran(record, graph_def, result, opts)
        return _contrib_calibrate(infer, infer_kwargs, graph_def, result, outputs, opts, feeds, record)
    except Exception as exc:  # whatever TF-TRT raised is the honest reason
        return record.failed(graph_def, exc)


def _infer_kwargs(api, opts):
    if not opts["dynamic"]:
        return {}
    api.require("is_dynamic_op", "dynamic with calib_feeds")
    return {"is_dynamic_op": True}


def _contrib_calibrate(infer, infer_kwargs, source, calib_graph, outputs, opts, feeds, record):
    """Run the feeds through the calibration graph, then swap calibrated engines in (TF 1.7-1.13 flow).

    The calibration data lives in the session's TRT resources, so the session stays open meanwhile.
    """
    record.calling("Session.run (calibration)", {"num_runs": len(feeds)})
    session = _run_feeds(calib_graph, outputs, feeds)
    try:
        record.calling("calib_graph_to_infer_graph", dict(infer_kwargs, calibration_graph_def=calib_graph))
        result = infer(calib_graph, **infer_kwargs)
    finally:
        session.close()
    if result is not None:
        return ran(record, source, result, opts)
    # TF logs "Not a calib graph" and returns None when no engine awaits calibration.
    if count_engines(calib_graph) == 0:
        return ran(record, source, calib_graph, opts,
                    "; calib_graph_to_infer_graph found no calibration nodes and returned None")
    # Engines that were never calibrated are not an INT8 result: hand back the input instead.
    return source, record.outcome(source, source, "calib_graph_to_infer_graph returned None for a calibration "
                                  "graph with {} TRTEngineOps".format(count_engines(calib_graph)))


def _run_feeds(graph_def, outputs, feeds):
    v1 = tfcompat.v1()
    graph = v1.Graph()
    with graph.as_default():
        v1.import_graph_def(graph_def, name="")
    session = v1.Session(graph=graph)
    try:
        for feed in feeds:
            session.run(outputs, feed)
    except Exception:
        session.close()
        raise
    return session
