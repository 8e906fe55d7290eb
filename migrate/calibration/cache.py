"""TensorRT's text calibration cache: what IInt8Calibrator::writeCalibrationCache writes and readCalibrationCache
gives back, so TensorRT builds INT8 engines from it without calibrating:

    TRT-<version>-EntropyCalibration2          (MinMaxCalibration for min-max ranges)
    <tensor name>: <scale as the 8 hex digits of its big-endian IEEE-754 float32>

version: TensorRT's NV_TENSORRT_VERSION: major * 1000 + minor * 100 + patch before TensorRT 10 (8.6.1 -> 8601),
major * 10000 + minor * 100 + patch from 10 on (10.14.1 -> 101401). scale = amax / 127.
"""
import re
import struct

DEFAULT_TRT_VERSION = "10.14.1"
ALGORITHMS = {"entropy": "EntropyCalibration2", "minmax": "MinMaxCalibration",
              # TensorRT has no percentile calibrator: its ranges go under the header of the calibrator class
              # that reads caches of precomputed scales most often (IInt8EntropyCalibrator2)
              "percentile": "EntropyCalibration2"}
_VERSION = re.compile(r"^(\d+)\.(\d+)(?:\.(\d+))?$")
_LINE = re.compile(r"^(.+): ([0-9a-f]{8})$")
_HEADER = re.compile(r"^TRT-(\d+)-(\w+)$")


def parse_version(text):
    """'10.14.1' -> (10, 14, 1); None when it is not MAJOR.MINOR[.PATCH]."""
    match = _VERSION.match(text or "")
    if not match or not 5 <= int(match.group(1)) <= 99 or int(match.group(2)) > 99 or int(match.group(3) or 0) > 99:
        return None
    return int(match.group(1)), int(match.group(2)), int(match.group(3) or 0)


def version_number(text):
    major, minor, patch = parse_version(text)
    return major * (10000 if major >= 10 else 1000) + minor * 100 + patch


def header(trt_version, method):
    return "TRT-{}-{}".format(version_number(trt_version), ALGORITHMS[method])


def scale_hex(scale):
    return "".join("{:02x}".format(byte) for byte in bytearray(struct.pack(">f", scale)))


def hex_scale(text):
    return struct.unpack(">f", bytearray.fromhex(text))[0]


def text(trt_version, method, scales):
    """The cache's text for [(tensor, scale)] in that order (scales > 0)."""
    lines = [header(trt_version, method)] + ["{}: {}".format(name, scale_hex(value)) for name, value in scales]
    return "\n".join(lines) + "\n"


def parse(content):
    """(version number, algorithm, {tensor: scale}) of a cache's text; ValueError on a malformed line."""
    lines = [line for line in content.splitlines() if line.strip()]
    if not lines or not _HEADER.match(lines[0]):
        raise ValueError("no TRT-<version>-<algorithm> header: {!r}".format(lines[:1]))
    head = _HEADER.match(lines[0])
    scales = {}
    for line in lines[1:]:
        match = _LINE.match(line)
        if not match:
            raise ValueError("not 'tensor: 8 hex digits': {!r}".format(line))
        scales[match.group(1)] = hex_scale(match.group(2))
    return int(head.group(1)), head.group(2), scales
