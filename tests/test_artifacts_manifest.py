"""tests/artifacts.json: every real third-party file the tests use, with its public origin and sha256; the
`artifact` fixture refuses a copy whose bytes differ; tests/fetch_artifacts.py downloads and checks (here from a
file:// origin: no network needed)."""
import os
import re
import shutil

import pytest

from tests import fetch_artifacts


def _manifest():
    return fetch_artifacts.load_manifest()


def test_manifest_names_origin_and_digest_of_every_file():
    manifest = _manifest()
    paths = [entry["path"] for entry in manifest["artifacts"]]
    assert len(paths) == len(set(paths)) and paths == sorted(paths)
    for entry in manifest["artifacts"]:
        assert re.match(r"^[\w.-]+/[\w.-]+$", entry["repository"]), entry
        assert re.match(r"^[0-9a-f]{40}$", entry["commit"]), entry  # a full commit: the URL never moves
        assert re.match(r"^[0-9a-f]{64}$", entry["sha256"]), entry
        assert entry["source_path"] and not entry["source_path"].startswith("/") and entry["licence"]
        assert fetch_artifacts.url(manifest, entry) == "https://raw.githubusercontent.com/{}/{}/{}".format(
            entry["repository"], entry["commit"], entry["source_path"])


def test_every_folder_of_the_mirror_is_listed_and_matches(shared_dir):
    """What the local mirror (or the cache) holds is exactly what the manifest lists, byte for byte."""
    manifest = _manifest()
    listed = set(entry["path"] for entry in manifest["artifacts"])
    present = set()
    for root, dirs, files in os.walk(shared_dir):
        for name in files:
            relative = os.path.relpath(os.path.join(root, name), shared_dir).replace(os.sep, "/")
            if "/" in relative and not name.startswith("."):  # SOURCES.md at the top is prose
                present.add(relative)
    assert present == listed, (sorted(present - listed), sorted(listed - present))
    for folder in sorted(set(path.split("/")[0] for path in listed)):
        assert len(fetch_artifacts.locate(folder, manifest, [shared_dir])) == len(
            [p for p in listed if p.startswith(folder + "/")])


def _mirror_of(tmp_path, shared_dir, folder):
    mirror = os.path.join(str(tmp_path), "mirror")
    shutil.copytree(os.path.join(shared_dir, folder), os.path.join(mirror, folder))
    return mirror


def test_a_tampered_copy_is_refused(tmp_path, shared_dir):
    manifest = _manifest()
    mirror = _mirror_of(tmp_path, shared_dir, "nxt_v1_ckpt")
    assert [e["path"] for e, _ in fetch_artifacts.locate("nxt_v1_ckpt", manifest, [mirror])] == [
        "nxt_v1_ckpt/checkpoint", "nxt_v1_ckpt/model.ckpt", "nxt_v1_ckpt/model.ckpt.meta"]
    path = os.path.join(mirror, "nxt_v1_ckpt", "model.ckpt")
    data = bytearray(open(path, "rb").read())
    data[len(data) // 2] ^= 1  # one bit of one weight
    with open(path, "wb") as handle:
        handle.write(bytes(data))
    with pytest.raises(fetch_artifacts.Tampered) as caught:
        fetch_artifacts.locate("nxt_v1_ckpt", manifest, [mirror])
    message = str(caught.value)
    assert path in message and "Gknoblau/nxt-tensorflow@38b9f868:model.ckpt" in message and "refused" in message


def test_a_missing_file_is_named_and_an_unlisted_artifact_refused(tmp_path, shared_dir):
    manifest = _manifest()
    mirror = _mirror_of(tmp_path, shared_dir, "nxt_v1_ckpt")
    os.remove(os.path.join(mirror, "nxt_v1_ckpt", "model.ckpt.meta"))
    empty = os.path.join(str(tmp_path), "empty-cache")
    with pytest.raises(fetch_artifacts.Missing) as caught:
        fetch_artifacts.locate("nxt_v1_ckpt", manifest, [mirror, empty])
    assert caught.value.paths == ["nxt_v1_ckpt/model.ckpt.meta"]
    assert "python -m tests.fetch_artifacts" in str(caught.value)
    with pytest.raises(KeyError):
        fetch_artifacts.locate("not_in_the_manifest", manifest, [mirror])


def test_fetch_downloads_checks_and_refuses_wrong_bytes(tmp_path, shared_dir, monkeypatch):
    """fetch() over urllib from a file:// origin: good files land in the cache, a file whose bytes differ from
    the manifest never does, and the failure names it."""
    manifest = _manifest()
    manifest["artifacts"] = [e for e in manifest["artifacts"] if e["path"].startswith("tf2onnx_regression_3formats/")]
    origin = _mirror_of(tmp_path, shared_dir, "tf2onnx_regression_3formats")
    bad = os.path.join(origin, "tf2onnx_regression_3formats", "graphdef", "frozen.pb")
    with open(bad, "ab") as handle:
        handle.write(b"\0")
    cache = os.path.join(str(tmp_path), "cache")
    monkeypatch.setenv("MIGRATE_SHARED_ARTIFACTS", os.path.join(str(tmp_path), "no-mirror"))
    lines = []
    failed = fetch_artifacts.fetch(manifest, cache, base_url="file://" + origin, log=lines.append)
    assert failed == ["tf2onnx_regression_3formats/graphdef/frozen.pb"], lines
    assert not os.path.exists(os.path.join(cache, failed[0]))
    assert not [name for root, _, files in os.walk(cache) for name in files if name.startswith(".fetch.")]
    good = [e for e in manifest["artifacts"] if e["path"] not in failed]
    for entry in good:
        assert fetch_artifacts.sha256(os.path.join(cache, entry["path"])) == entry["sha256"]
    assert len(lines) == len(manifest["artifacts"])
    assert [line for line in lines if line.startswith("FAILED ")] == [
        line for line in lines if line.startswith("FAILED " + failed[0]) and "sha256" in line]


def test_check_without_mirror_or_network_names_what_is_missing(tmp_path):
    """`python -m tests.fetch_artifacts --check` with neither mirror nor cache: exit 1, each folder named."""
    import subprocess
    import sys
    env = dict(os.environ, MIGRATE_SHARED_ARTIFACTS=os.path.join(str(tmp_path), "none"),
               MIGRATE_ARTIFACT_CACHE=os.path.join(str(tmp_path), "cache"))
    process = subprocess.Popen([sys.executable, "-m", "tests.fetch_artifacts", "--check"], cwd=fetch_artifacts.REPO,
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 1, (out, err)
    folders = sorted(set(e["path"].split("/")[0] for e in _manifest()["artifacts"]))
    lines = err.decode().strip().splitlines()
    assert len(lines) == len(folders) and all("missing from" in line for line in lines), err
    assert all(any(line.split(": ", 1)[1].startswith(folder + "/") for line in lines) for folder in folders), err
    assert b"INCOMPLETE" in out


def test_add_lists_a_folder_with_its_origin(tmp_path, shared_dir):
    """--add (how a new artifact enters the manifest) gives the same entries the manifest holds."""
    manifest = _manifest()
    held = [e for e in manifest["artifacts"] if e["path"].startswith("tf2onnx_regression_3formats/")]
    rest = dict(manifest, artifacts=[e for e in manifest["artifacts"] if e not in held])
    added = fetch_artifacts.add(rest, "tf2onnx_regression_3formats", held[0]["repository"], held[0]["commit"],
                                "tests/models/regression", held[0]["licence"], root=shared_dir)
    assert added["artifacts"] == manifest["artifacts"]
