"""INT8 calibration on CPU (`migrate calibrate`): data (batches), histogram (statistics and range methods),
cache (TensorRT's calibration cache), simulate (fake-quantized graph), run (the verb)."""
