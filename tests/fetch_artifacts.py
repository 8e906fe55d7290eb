"""The real third-party artifacts the tests use: listed in tests/artifacts.json (public origin: repository @ commit,
path, and sha256), found in a local mirror or downloaded into a cache, checked against their sha256 before use.

    python -m tests.fetch_artifacts                 # download what is missing into the cache (needs network)
    python -m tests.fetch_artifacts --check         # only check what the mirror / cache hold; exit 1 if incomplete
    python -m tests.fetch_artifacts --add PATH REPOSITORY COMMIT SOURCE_PATH LICENCE
                                                    # list the mirror's PATH (a file or folder) in the manifest

Where the tests look, in order: MIGRATE_SHARED_ARTIFACTS (a local mirror, default ../shared/legacy_artifacts
beside the repository), then the cache: MIGRATE_ARTIFACT_CACHE, default ~/.cache/migrate/legacy_artifacts.
"""
import argparse
import hashlib
import json
import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
MANIFEST = os.path.join(HERE, "artifacts.json")
REPO = os.path.dirname(HERE)


class Missing(Exception):
    """Artifact files found in no root: .paths lists them."""

    def __init__(self, paths, roots):
        self.paths = paths
        super(Missing, self).__init__("{} artifact file(s) missing from {}: {} (run `python -m tests.fetch_artifacts` "
                                      "online, or set MIGRATE_SHARED_ARTIFACTS to a mirror)".format(
                                          len(paths), " and ".join(roots), ", ".join(paths[:5]) +
                                          (" ..." if len(paths) > 5 else "")))


class Tampered(Exception):
    """A file whose bytes are not the ones the manifest names."""


def load_manifest(path=MANIFEST):
    with open(path) as handle:
        return json.load(handle)


def mirror_root():
    return os.environ.get("MIGRATE_SHARED_ARTIFACTS") or os.path.join(REPO, "..", "shared", "legacy_artifacts")


def cache_root():
    return os.environ.get("MIGRATE_ARTIFACT_CACHE") or os.path.join(
        os.path.expanduser("~"), ".cache", "migrate", "legacy_artifacts")


def roots():
    return [mirror_root(), cache_root()]


def url(manifest, entry):
    return manifest["url"].format(**entry)


def sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


_CHECKED = {}  # (path, size, mtime) -> sha256: each file hashed once per process


def _checked_sha256(path):
    stat = os.stat(path)
    key = (os.path.abspath(path), stat.st_size, stat.st_mtime)
    if key not in _CHECKED:
        _CHECKED[key] = sha256(path)
    return _CHECKED[key]


def entries_under(manifest, relative):
    """The manifest's entries for artifact `relative` (a file, or a folder: every file under it)."""
    relative = relative.strip("/")
    found = [e for e in manifest["artifacts"] if e["path"] == relative or e["path"].startswith(relative + "/")]
    if not found:
        raise KeyError("{} is not listed in {}: add it (repository, commit, source_path, sha256) before a test "
                       "uses it".format(relative, os.path.relpath(MANIFEST, REPO)))
    return found


def locate(relative, manifest=None, search=None):
    """[(entry, checked local path)] for artifact `relative`: each file from the first root holding it, its
    sha256 checked. Missing when a file is in no root; Tampered when a copy differs from the manifest."""
    manifest = manifest or load_manifest()
    search = search or roots()
    located, missing = [], []
    for entry in entries_under(manifest, relative):
        path = next((os.path.join(root, entry["path"]) for root in search
                     if os.path.isfile(os.path.join(root, entry["path"]))), None)
        if path is None:
            missing.append(entry["path"])
            continue
        digest = _checked_sha256(path)
        if digest != entry["sha256"]:
            raise Tampered("{}: sha256 {} is not the {} that {} lists for {}@{}:{} (a damaged or altered copy: "
                           "refused; delete it and run `python -m tests.fetch_artifacts`)".format(
                               path, digest[:16], entry["sha256"][:16], os.path.basename(MANIFEST),
                               entry["repository"], entry["commit"][:8], entry["source_path"]))
        located.append((entry, path))
    if missing:
        raise Missing(missing, search)
    return located


def fetch(manifest=None, cache=None, base_url=None, log=print):
    """Download every manifest file the mirror and cache lack into the cache (each checked against its sha256
    before it is renamed into place). Returns the paths that could not be fetched."""
    from urllib.request import urlopen
    manifest = manifest or load_manifest()
    cache = cache or cache_root()
    failed = []
    for entry in manifest["artifacts"]:
        present = [os.path.join(root, entry["path"]) for root in (mirror_root(), cache)]
        if any(os.path.isfile(path) and _checked_sha256(path) == entry["sha256"] for path in present):
            continue
        source = (base_url.rstrip("/") + "/" + entry["path"]) if base_url else url(manifest, entry)
        target = os.path.join(cache, entry["path"])
        if not os.path.isdir(os.path.dirname(target)):
            os.makedirs(os.path.dirname(target))
        fd, temp = tempfile.mkstemp(prefix=".fetch.", dir=os.path.dirname(target))
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(urlopen(source, timeout=60).read())
            digest = sha256(temp)
            if digest != entry["sha256"]:
                raise Tampered("sha256 {} differs from the manifest's {}".format(digest[:16], entry["sha256"][:16]))
            os.rename(temp, target)
            log("fetched {} <- {}".format(entry["path"], source))
        except Exception as exc:  # no network, 404, wrong bytes: say which file, go on with the others
            if os.path.exists(temp):
                os.remove(temp)
            failed.append(entry["path"])
            log("FAILED {} <- {}: {}".format(entry["path"], source, exc))
    return failed


def add(manifest, relative, repository, commit, source_path, licence, root=None):
    """List every file of the mirror's `relative` (file or folder) with its origin (`source_path` is the file,
    or the folder in `repository` @ `commit` that `relative` is a copy of) and sha256."""
    root = root or mirror_root()
    base = os.path.join(root, relative)
    files = [base] if os.path.isfile(base) else sorted(
        os.path.join(d, name) for d, _, names in os.walk(base) for name in names)
    if not files:
        raise SystemExit("nothing at {}".format(base))
    listed = dict((entry["path"], entry) for entry in manifest["artifacts"])
    for path in files:
        inner = os.path.relpath(path, base).replace(os.sep, "/")
        entry = {"path": os.path.relpath(path, root).replace(os.sep, "/"), "repository": repository,
                 "commit": commit, "source_path": source_path if inner == "." else source_path.rstrip("/") + "/" +
                 inner, "sha256": sha256(path), "bytes": os.path.getsize(path), "licence": licence}
        listed[entry["path"]] = entry
    manifest["artifacts"] = [listed[path] for path in sorted(listed)]
    return manifest


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only check the mirror and cache, download nothing")
    parser.add_argument("--cache", default=None, help="cache folder (default: $MIGRATE_ARTIFACT_CACHE or "
                                                      "~/.cache/migrate/legacy_artifacts)")
    parser.add_argument("--base-url", default=None, help="fetch from BASE_URL/<path> instead of each origin")
    parser.add_argument("--add", nargs=5, metavar=("PATH", "REPOSITORY", "COMMIT", "SOURCE_PATH", "LICENCE"),
                        help="list the mirror's PATH in the manifest (full 40-hex commit)")
    args = parser.parse_args(argv)
    manifest = load_manifest()
    if args.add:
        manifest = add(manifest, *args.add)
        with open(MANIFEST + ".tmp", "w") as handle:
            json.dump(manifest, handle, indent=1)
            handle.write("\n")
        os.rename(MANIFEST + ".tmp", MANIFEST)
        return 0
    if args.cache:
        os.environ["MIGRATE_ARTIFACT_CACHE"] = args.cache
    failed = [] if args.check else fetch(manifest, cache_root(), args.base_url)
    problems = []
    for folder in sorted(set(entry["path"].split("/")[0] for entry in manifest["artifacts"])):
        try:
            locate(folder, manifest)
        except (Missing, Tampered) as exc:
            problems.append(str(exc))
    for problem in problems:
        print(problem, file=sys.stderr)
    print("{} artifact files in {}: {}".format(len(manifest["artifacts"]), " / ".join(roots()),
                                              "all present and checked" if not problems else "INCOMPLETE"))
    return 1 if problems or failed else 0


if __name__ == "__main__":
    sys.exit(main())
