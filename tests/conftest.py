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
