"""Convert a frozen GraphDef with TF-TRT, in the API generation this TF has, and say honestly what happened.

  contrib       TF 1.7-1.13  tensorflow.contrib.tensorrt.create_inference_graph (+ calib_graph_to_infer_graph)
  converter-v1  TF 1.14+     trt_convert.TrtGraphConverter in graph mode (+ calibrate)
  converter-v2  TF 2.x       trt_convert.TrtGraphConverterV2 from a temporary SavedModel (+ build, calibration)

Only keywords the installed call has are passed (inspect); an option it cannot honour is BadInput naming the
earliest TF that has it. The outcome counts TRTEngineOp nodes in the graph returned (function library
included) and says in one sentence why there are none. When the converter fails, the input graph comes
back unchanged. `convert` never decides whether zero engines is an error: the caller reads
TrtOutcome.converted (--require-trt).

Modules: options.py (defaults, checks, the keywords this TF accepts), outcome.py (TrtOutcome), one module per
API generation (contrib.py, converter_v1.py, converter_v2.py), saved_model.py (the SavedModel round trip)."""
from migrate import tfcompat
from migrate.tftrt import contrib, converter_v1, converter_v2
from migrate.tftrt.options import (APIS, DEFAULT_OPTIONS, PRECISIONS, calibration_feeds, generation_for,
                                   normalize_options, output_tensors)
from migrate.tftrt.outcome import TRT_ENGINE_OP, Record, TrtOutcome, count_engines, graph_changed
from migrate.tftrt.saved_model import (SIGNATURE_KEY, rename_node, saved_function_graph, signature_keys,
                                       write_saved_model)

__all__ = ["APIS", "DEFAULT_OPTIONS", "PRECISIONS", "SIGNATURE_KEY", "TRT_ENGINE_OP", "TrtOutcome", "convert",
           "count_engines", "graph_changed", "rename_node", "saved_function_graph", "signature_keys",
           "write_saved_model"]


def convert(graph_def, outputs, options=None):
    """(GraphDef, TrtOutcome) for a frozen graph and its outputs ('y' or 'y:0'); options: see DEFAULT_OPTIONS."""
    record = Record()
    opts = normalize_options(options)
    generation = generation_for(opts)
    record.generation = generation
    outputs = output_tensors(graph_def, outputs)
    feeds = calibration_feeds(graph_def, outputs, opts["calib_feeds"])
    module, _ = tfcompat.import_trt_module(generation)
    converter = _CONVERTERS.get(generation, _convert_none)
    return converter(module, graph_def, outputs, opts, feeds, record)


def _convert_none(module, graph_def, outputs, opts, feeds, record):
    record.api_call = None
    return record.not_attempted(graph_def, tfcompat.trt_status().reason)


_CONVERTERS = {
    tfcompat.TRT_CONTRIB: contrib.convert,
    tfcompat.TRT_CONVERTER_V1: converter_v1.convert,
    tfcompat.TRT_CONVERTER_V2: converter_v2.convert,
}
