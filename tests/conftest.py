"""Shared fixtures: the real third-party artifacts (../shared/legacy_artifacts) and the zoos old TF wrote.

Both are optional on a developer machine (tests skip, saying why) and mandatory in CI: .ci/run sets
MIGRATE_REQUIRE_ALL=1, which turns every such skip into a failure.
"""
import json
import os
import shutil

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
SHARED = os.environ.get("MIGRATE_SHARED_ARTIFACTS") or os.path.join(REPO, "..", "shared", "legacy_artifacts")
ZOO_ROOT = os.environ.get("MIGRATE_ZOO_ROOT") or os.path.join(REPO, ".tox", "zoo")
REQUIRE_ALL = os.environ.get("MIGRATE_REQUIRE_ALL") == "1"
EXPECTED_ZOOS = set(name for name in os.environ.get("MIGRATE_ZOOS", "").split(",") if name)


def _missing(reason):
    if REQUIRE_ALL:
        pytest.fail(reason + " (MIGRATE_REQUIRE_ALL=1: required here)")
    pytest.skip(reason)


def require_module(name):
    """Import `name`, a test dependency (setup.cfg's test extra): a bare venv skips, CI fails."""
    import importlib
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        reason = "test dependency {} is not installed ({}; pip install -e .[test])".format(name, exc)
        if REQUIRE_ALL:
            pytest.fail(reason + " (MIGRATE_REQUIRE_ALL=1: required here)", pytrace=False)
        pytest.skip(reason, allow_module_level=True)


# The one allowance MIGRATE_REQUIRE_ALL makes for an optional extra: tox.ini installs the onnx extra
# (tf2onnx, onnx, onnxruntime) only in the py311 envs; in the py36/py37 envs (TF 1.7-1.15) the ONNX tests skip
# saying so (py36: onnx has no wheel for 3.6 and tf2onnx needs TF >= 1.13; py37: wheels exist, tf2onnx 1.16.1 /
# onnx 1.14.1 / onnxruntime 1.14.1, not yet in the matrix). In a py311 env a missing extra fails under
# MIGRATE_REQUIRE_ALL=1.
ONNX_EXTRA_ENVS = "the py311 envs only"


def require_onnx():
    """(tf2onnx, onnx, onnxruntime), or skip in an env tox.ini gives no onnx extra, or fail (CI) elsewhere."""
    import sys
    from migrate import tfcompat
    status = tfcompat.onnx_status()
    if status.available:
        return tfcompat.require_onnx()
    reason = "the onnx extra is not available here ({}); tox.ini installs it in {}".format(status.reason,
                                                                                          ONNX_EXTRA_ENVS)
    if sys.version_info < (3, 8):  # not one of ONNX_EXTRA_ENVS: tox.ini gives this env no onnx extra
        pytest.skip(reason)
    _missing(reason)


def _hypothesis_profile():
    """One hypothesis profile for the whole suite, loaded before any test module makes its settings: no deadline
    and no data-generation health checks (a loaded 2-core CI machine trips them: too_slow failed the py36-tf1.7
    run under load), no example database, and derandomized (a fixed seed: the same examples on every run).
    MIGRATE_FUZZ_RANDOM=1 explores with fresh random examples on a developer machine; never in CI."""
    try:
        from hypothesis import HealthCheck, settings
    except ImportError:  # test_fuzz / test_graph_oracle say so through require_module
        return
    random_wanted = os.environ.get("MIGRATE_FUZZ_RANDOM") == "1" and not REQUIRE_ALL
    checks = [getattr(HealthCheck, name) for name in ("too_slow", "data_too_large", "filter_too_much",
                                                        "large_base_example") if hasattr(HealthCheck, name)]
    settings.register_profile("migrate", max_examples=int(os.environ.get("MIGRATE_FUZZ_EXAMPLES", "50")),
                              deadline=None, suppress_health_check=checks, database=None,
                              derandomize=not random_wanted, print_blob=True)
    settings.load_profile("migrate")


_hypothesis_profile()


def hypothesis_settings():
    """The suite's hypothesis profile (see _hypothesis_profile), for @SETTINGS on every property test."""
    from hypothesis import settings
    return settings.get_profile("migrate")


def pytest_configure(config):
    config.addinivalue_line("markers", "zoo(*names): run the test on these zoo models only")


def pytest_report_header(config):
    from migrate import tfcompat
    status = tfcompat.trt_status()
    return ["migrate matrix: Python {} TF {} | TF-TRT generation {} | TensorRT usable: {} ({})".format(
        tfcompat.python_version(), tfcompat.version_string(), status.generation, status.usable, status.reason),
        "shared artifacts: {} | zoo root: {}".format(SHARED, ZOO_ROOT)]


@pytest.fixture(scope="session")
def shared_dir():
    if not os.path.isdir(SHARED):
        _missing("real legacy artifacts not found at {} (set MIGRATE_SHARED_ARTIFACTS)".format(SHARED))
    return SHARED


@pytest.fixture
def artifact(shared_dir, tmp_path):
    """Copy a shared artifact (read-only input) into tmp_path and return the copy's path."""
    def copy(relative):
        source = os.path.join(shared_dir, relative)
        target = os.path.join(str(tmp_path), "artifacts", relative)
        if os.path.isdir(source):
            shutil.copytree(source, target)
        else:
            os.makedirs(os.path.dirname(target))
            shutil.copy(source, target)
        for root, dirs, files in os.walk(os.path.join(str(tmp_path), "artifacts")):
            for name in dirs + files:
                os.chmod(os.path.join(root, name), 0o755 if name in dirs else 0o644)
        return target
    return copy


def zoo_manifests():
    """[(zoo name, manifest dict, zoo dir)] for every zoo written by old TF under ZOO_ROOT."""
    found = []
    if os.path.isdir(ZOO_ROOT):
        for name in sorted(os.listdir(ZOO_ROOT)):
            path = os.path.join(ZOO_ROOT, name, "manifest.json")
            if os.path.isfile(path):
                with open(path) as handle:
                    found.append((name, json.load(handle), os.path.join(ZOO_ROOT, name)))
    return found


def pytest_generate_tests(metafunc):
    if "zoo_model" in metafunc.fixturenames:
        marker = metafunc.definition.get_closest_marker("zoo")  # @pytest.mark.zoo("mlp", ...) narrows it
        only = set(marker.args) if marker else None
        params, ids = [], []
        manifests = zoo_manifests()
        for zoo in sorted(EXPECTED_ZOOS - set(found for found, _, _ in manifests)):  # tox.ini: the zoos CI builds
            params.append((zoo, None, None))
            ids.append("{}:missing".format(zoo))
        for zoo, manifest, directory in manifests:
            if not manifest.get("models"):  # a zoo that lists no model is as good as missing
                params.append((zoo, directory, None))
                ids.append("{}:empty".format(zoo))
                continue
            for entry in manifest["models"]:
                if only is not None and entry["name"] not in only:
                    continue
                params.append((zoo, directory, entry))
                ids.append("{}:{}".format(zoo, entry["name"]))
        if not params:
            params, ids = [None], ["no-zoo"]
        metafunc.parametrize("zoo_model", params, ids=ids, indirect=True)


class ZooModel(object):
    def __init__(self, zoo, directory, entry, tmp_path):
        self.zoo = zoo
        self.entry = entry
        self.name = entry["name"]
        self.kind = entry["kind"]
        # Work on a copy: the zoo is an input like any other and must stay untouched.
        self.root = os.path.join(str(tmp_path), "zoo-copy")
        shutil.copytree(os.path.join(directory, entry["name"]), os.path.join(self.root, entry["name"]))
        self.path = os.path.join(self.root, os.path.relpath(entry["path"], "."))
        self.inputs = entry["inputs"]
        self.outputs = entry["outputs"]
        self.signature = entry.get("signature")
        self.tf_version = entry.get("tf_version") or entry.get("written_by")
        self.golden_path = os.path.join(self.root, os.path.relpath(entry["golden"], "."))

    def golden(self):
        import numpy as np
        with np.load(self.golden_path) as data:
            return {key: data[key] for key in data.files}


@pytest.fixture
def zoo_model(request, tmp_path):
    if request.param is None:
        _missing("no zoo written by old TF under {} (run `tox -e zoo-tf1.7,zoo-tf1.15` or set "
                 "MIGRATE_ZOO_ROOT)".format(ZOO_ROOT))
    zoo, directory, entry = request.param
    if entry is None and directory is not None:
        _missing("zoo {} under {} lists no models (did its builders fail? rebuild it with `tox -e {}`)".format(
            zoo, ZOO_ROOT, zoo))
    if entry is None:
        _missing("zoo {} was not written under {} (did `tox -e {}` fail?)".format(zoo, ZOO_ROOT, zoo))
    return ZooModel(zoo, directory, entry, tmp_path)


@pytest.fixture
def run_cli(capsys):
    """Run the CLI in-process: (exit code, stdout, stderr)."""
    from migrate import cli

    def run(*args):
        try:
            cli.main([str(a) for a in args])
            code = 0
        except SystemExit as exc:
            code = exc.code
        out, err = capsys.readouterr()
        return code, out, err
    return run


def assert_compared(rows, outputs):
    """Verification rows that compared exactly `outputs` (tensor names, any order), each within tolerance: a
    comparison with no rows, or rows for other outputs, is never a pass."""
    from migrate.graph.names import tensor_name
    assert rows, "no outputs were compared"
    assert sorted(row.output for row in rows) == sorted(tensor_name(name) for name in outputs), rows
    assert all(row.ok for row in rows), rows


# Ops a zoo model holds because of the TF that wrote it, by manifest feature, with the first TF that registers
# them as far as the matrix measured (1.7, 1.13, 1.14, 1.15, 2.12+: FusedBatchNormV3 and SelectV2 are in 1.14 and
# not 1.13; NonMaxSuppressionV3, StatefulPartitionedCall and StaticRegexFullMatch in 1.13 and not 1.7;
# ParseExampleV2 in 2.12 and not 1.15). A model written by a newer TF than the running one must then be refused
# in one line naming the op; elsewhere it must migrate.
NEWER_OPS = [
    ("fused_batch_norm", (1, 14), ("FusedBatchNormGradV3", "FusedBatchNormV3")),
    ("non_max_suppression", (1, 8), ("NonMaxSuppressionV3",)),
    ("indicator_column", (1, 14), ("SelectV2",)),              # TF 1.15's feature columns (tf.where)
    ("parse_example", (2, 0), ("ParseExampleV2",)),
    ("function_calls", (1, 13), ("StatefulPartitionedCall",)),
    ("export_saved_model", (1, 13), ("StaticRegexFullMatch",)),  # TF 2.x's sharded-save path check
    # tf.data as TF 1.15 writes it (measured on the matrix: absent in TF 1.7, present from TF 1.13)
    ("tf_data_iterator", (1, 13), ("BatchDatasetV2", "ModelDataset", "OptimizeDataset")),
]
# Attrs a newer TF writes into a frozen graph (a bare GraphDef has no op list saying they hold their default), with
# the first TF that knows them (measured: GatherV2.batch_dims fails to import in TF 1.13, NonMaxSuppressionV3.
# T_threshold in TF 1.14): plain TF cannot import such a graph, and migrate refuses it in one line.
NEWER_ATTRS = [
    ("non_max_suppression", (1, 14), "GatherV2.batch_dims"),
    ("non_max_suppression", (1, 15), "NonMaxSuppressionV3.T_threshold"),
]
ATTRS_LACKING = "(attrs this TF lacks)"


def expected_unknown_ops(zoo_model):
    """What of `zoo_model` this TF cannot run, from its manifest (writer TF, features, kind), not from the code:
    the ops it lacks, else [ATTRS_LACKING] for a frozen graph holding attrs it lacks, else []."""
    from migrate import tfcompat
    written = tfcompat.parse_version(zoo_model.tf_version)[:2]
    running = tfcompat.version()[:2]
    features = zoo_model.entry.get("features", ())
    ops = sorted(op for feature, since, names in NEWER_OPS if feature in features and written >= since > running
                 for op in names)
    if ops:
        return ops
    if zoo_model.kind == "frozen_graph" and any(feature in features and written >= since > running
                                                for feature, since, _ in NEWER_ATTRS):
        return [ATTRS_LACKING]
    return []


@pytest.fixture(scope="module")
def lookup_saved_model(tmp_path_factory):
    """A SavedModel with a vocabulary-file table (assets/vocab.txt), built by the running TF."""
    from legacy_models import savedmodels
    root = str(tmp_path_factory.mktemp("lookup"))
    savedmodels.build_lookup(root, "lookup")
    return os.path.join(root, savedmodels.EXPORT_SUBDIR)
