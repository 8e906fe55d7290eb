"""TF-TRT of TF 1.14+: trt_convert.TrtGraphConverter in graph mode (+ calibrate)."""
from migrate import tfcompat
from migrate.tftrt.options import Api, graph_kwargs, node_names
from migrate.tftrt.outcome import ran


def convert(module, graph_def, outputs, opts, feeds, record):
    cls = tfcompat.trt_api(module, "TrtGraphConverter")
    record.api_call = "TrtGraphConverter.convert" + ("+calibrate" if feeds else "")
    if module is None:
        return record.not_attempted(graph_def, tfcompat.trt_status().reason)
    if cls is None:
        return record.not_attempted(graph_def, "TF {}: {} has no TrtGraphConverter (use api 'v2')".format(
            tfcompat.version_string(), tfcompat.TRT_CONVERT_MODULE))
    api = Api("TrtGraphConverter", cls)
    kwargs = graph_kwargs(api, opts, feeds is not None)
    # Keep the outputs out of engines so they can still be fetched by name.
    for keyword in tfcompat.TRT_EXCLUDE_NODES_KEYWORDS:
        if api.has(keyword):
            kwargs[keyword] = node_names(outputs)
            break
    refusal = tfcompat.trt_converter_refusal(record.generation, "TrtGraphConverter")
    if refusal:  # the probe already knows the constructor would raise
        record.planned("TrtGraphConverter", dict(kwargs, input_graph_def=graph_def))
        return record.not_attempted(graph_def, refusal)
    try:
        # A fresh graph context is graph mode: TF 2.x's TrtGraphConverter refuses to run eagerly.
        with tfcompat.v1().Graph().as_default():
            record.calling("TrtGraphConverter", dict(kwargs, input_graph_def=graph_def))
            converter = cls(input_graph_def=graph_def, **kwargs)
            record.calling("TrtGraphConverter.convert")
            result = converter.convert()
            if feeds is not None:
                result = _v1_calibrate(converter, outputs, feeds, record)
    except Exception as exc:
        return record.failed(graph_def, exc)
    return ran(record, graph_def, result, opts)


def _v1_calibrate(converter, outputs, feeds, record):
    remaining = iter(feeds)
    record.calling("TrtGraphConverter.calibrate", {"fetch_names": list(outputs), "num_runs": len(feeds),
                                                   "feed_dict_fn": "<next of {} calib_feeds>".format(len(feeds))})
    return converter.calibrate(fetch_names=list(outputs), num_runs=len(feeds), feed_dict_fn=lambda: next(remaining))
