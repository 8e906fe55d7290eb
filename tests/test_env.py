"""The version gate: which TF-TRT API generation this TF gets, and an honest TensorRT status."""
from migrate import tfcompat

# Independent of tfcompat's own table: what the TF release notes say.
EXPECTED_GENERATION = [
    ((1, 7), (1, 14), "contrib"),
    ((1, 14), (2, 0), "converter-v1"),
    ((2, 0), (99, 0), "converter-v2"),
]


def _expected(version):
    for low, high, generation in EXPECTED_GENERATION:
        if low <= version[:2] < high:
            return generation
    return "none"


def test_generation_table():
    assert tfcompat.trt_generation((1, 6, 0)) == "none"
    assert tfcompat.trt_generation((1, 7, 1)) == "contrib"
    assert tfcompat.trt_generation((1, 13, 2)) == "contrib"
    assert tfcompat.trt_generation((1, 14, 0)) == "converter-v1"
    assert tfcompat.trt_generation((1, 15, 5), prefer="v2") == "converter-v2"
    assert tfcompat.trt_generation((2, 21, 0)) == "converter-v2"
    assert tfcompat.trt_generation((2, 12, 1), prefer="v1") == "converter-v1"


def test_parse_version_handles_odd_strings():
    assert tfcompat.parse_version("0.12.head") == (0, 12, 0)
    assert tfcompat.parse_version("1.5.0-rc1") == (1, 5, 0)
    assert tfcompat.parse_version("2.21.0") == (2, 21, 0)


def test_installed_tf_gets_the_expected_generation():
    status = tfcompat.trt_status()
    assert status.generation == _expected(tfcompat.version())


def _libnvinfer_loads():
    """Whether libnvinfer loads here, asked of the dynamic loader directly (not through tfcompat)."""
    import ctypes
    import ctypes.util
    for name in [ctypes.util.find_library("nvinfer")] + ["libnvinfer.so.{}".format(m) for m in (10, 8, 7, 6, 5)]:
        try:
            if name:
                ctypes.CDLL(name)
                return True
        except OSError:
            continue
    return False


def test_tensorrt_status_is_honest_on_this_machine():
    """The status says usable exactly when libnvinfer loads and TF can use it, and names the exact cause when not."""
    status = tfcompat.trt_status()
    assert bool(status.library) == _libnvinfer_loads()
    assert status.usable == bool(status.module_file and status.built_with_trt is not False and status.library)
    if status.usable:
        assert "TensorRT available" in status.reason
        return
    version = tfcompat.version()
    if (1, 7) <= version[:2] < (1, 14):
        # CPU wheels: TF 1.7 lacks contrib.tensorrt entirely; 1.13 ships it but without TensorRT.
        if status.module_file is None:
            assert "does not include" in status.reason and "contrib.tensorrt" in status.reason
        else:
            assert "TensorRT" in status.reason
    elif status.built_with_trt is False:
        assert "has not been built with TensorRT support" in status.reason
    else:
        assert "libnvinfer" in status.reason and "not found" in status.reason


def test_env_command(run_cli):
    code, out, err = run_cli("env")
    assert code == 0, err
    assert "tensorflow               " + tfcompat.version_string() in out
    assert "tf_trt_generation        " + _expected(tfcompat.version()) in out
    assert "tensorrt_usable          {}".format(tfcompat.trt_status().usable) in out


def test_tf1_namespace():
    v1 = tfcompat.v1()
    assert hasattr(v1, "Session") and hasattr(v1, "placeholder")
