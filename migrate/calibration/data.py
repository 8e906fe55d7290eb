"""Calibration batches: an .npz (one batch) or a folder of .npz files (one batch each, in name order), keyed by
input name ('x' or 'x:0'). The same format `optimize --precision INT8 --calib-data` reads.

`batch_files` lists the files without opening them; `read_batch` loads one and checks it against the model's
inputs (missing input, dtype kind, shape, NaN/Inf: one BadInput line naming the file and the input), so a
calibration run holds one batch in memory at a time. `load_all` keeps every batch (TF-TRT's own calibration
wants them as a list)."""
import glob
import os
import zipfile

import numpy as np

from migrate.errors import BadInput
from migrate.graph.names import tensor_name


def batch_files(path, limit=None):
    """The .npz files of `path` (a file, or a folder of them), first `limit` only when given."""
    from migrate import artifacts
    if not os.path.exists(path):
        raise BadInput("calibration data not found", path, "pass an .npz or a folder of .npz files")
    artifacts.require_file_or_dir(path, "calibration .npz")
    files = sorted(glob.glob(os.path.join(path, "*.npz"))) if os.path.isdir(path) else [path]
    if not files:
        raise BadInput("no .npz files in calibration folder", path, "put one .npz per calibration batch there")
    return files[:limit] if limit else files


def read_arrays(name):
    """{tensor: array} of one .npz (keys 'x' become 'x:0'); never unpickles."""
    from migrate import artifacts
    artifacts.require_file_or_dir(name, "calibration .npz")  # a named pipe would block np.load
    if not os.path.isfile(name) or not zipfile.is_zipfile(name):  # (old numpy's NpzFile prints a traceback)
        raise BadInput("cannot read calibration batch: not an .npz file (a zip archive of arrays)", name,
                       "write it with numpy.savez")
    try:
        with np.load(name, allow_pickle=False) as data:
            return dict((key if ":" in key else key + ":0", data[key]) for key in data.files)
    except (IOError, OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:  # garbage, a truncated zip
        raise BadInput("cannot read calibration batch: {}".format(exc), name, "write it with numpy.savez")


def load_all(path):
    """[{tensor: array}] of every batch, or None without a path (optimize --calib-data for TF-TRT)."""
    if not path:
        return None
    return [read_arrays(name) for name in batch_files(path)]


def read_batch(name, specs):
    """{input tensor: array} of one batch file, checked against specs {tensor: (dtype, dims)}: every input
    present, the dtype's kind the input's (float64 data for a float32 input is cast), each known dim equal,
    every value finite."""
    from migrate.verification.feeds import cut_placeholder
    arrays = read_arrays(name)
    for key in list(arrays):  # 'D:1', a tensor of the input pipeline the graph had, feeds its placeholder 'D_1:0'
        arrays.setdefault(cut_placeholder(key), arrays[key])
    feeds = {}
    for tensor, (dtype, dims) in sorted(specs.items()):
        value = arrays.get(tensor_name(tensor))
        if value is None:
            raise BadInput("calibration batch lacks input {} (has: {})".format(
                tensor, ", ".join(sorted(arrays)) or "nothing"), name,
                "save one array per model input, keyed by its name ({})".format(", ".join(sorted(specs))))
        feeds[tensor] = check_value(value, tensor, dtype, dims, name)
    return feeds


def check_value(value, tensor, dtype, dims, where):
    if dtype == "string":
        if value.dtype.kind not in "SU":
            raise BadInput("input {} is {} in the data, the model takes strings".format(tensor, value.dtype.name),
                           where, "save it as bytes: np.array([b'...'], dtype='S')")
        return value
    wanted = np.dtype(dtype if dtype not in ("bfloat16", "half") else "float32" if dtype == "bfloat16" else "float16")
    if value.dtype.kind != wanted.kind or (wanted.kind not in "f" and value.dtype != wanted):
        raise BadInput("input {} is {} in the data, the model takes {}".format(tensor, value.dtype.name, dtype),
                       where, "save it as {}".format(dtype))
    if dims is not None:
        fits = len(dims) == value.ndim and all(d is None or d < 0 or d == s for d, s in zip(dims, value.shape))
        if not fits:
            raise BadInput("input {} has shape {} in the data, the model takes {}".format(
                tensor, list(value.shape), ["?" if d is None or d < 0 else d for d in dims]), where,
                "save batches of the model's input shape")
    if value.dtype.kind == "f":
        bad = int(value.size - np.count_nonzero(np.isfinite(value)))
        if bad:
            raise BadInput("input {} holds {} NaN/Inf value(s)".format(tensor, bad), where,
                           "calibrate on finite data (the ranges would be meaningless)")
        if value.dtype != wanted:
            value = value.astype(wanted)
    return value
