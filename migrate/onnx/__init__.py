"""The ONNX road to TensorRT: a verified frozen graph -> tf2onnx -> onnxruntime check -> model.onnx.

model.py    an ONNX file as an artifact: detected by content, loaded, run with onnxruntime (CPU), an endpoint
            `migrate verify` pairs with any TF artifact
convert.py  the ONNX-prep step (attrs tf2onnx cannot encode), tf2onnx with its failures made one line, the
            TensorRT calibration cache renamed to the ONNX tensor names
export.py   `migrate onnx`: optimize (verified) -> prep -> tf2onnx -> onnxruntime vs the TF source -> write
Everything here imports on Python 3.6: tf2onnx/onnx/onnxruntime are imported through tfcompat.require_onnx.
"""
