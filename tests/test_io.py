"""io.py on its own, on tmp dirs: atomic writes (a temp file beside the target, renamed into place; nothing
left on an exception), the --force rules (only a previous migrate output, unchanged, is replaced), the
no-replace rename, output modes under the umask, and what check_output_path refuses before any work."""
import json
import os
import re
import stat

import pytest

from migrate import io
from migrate.errors import BadInput, MigrateError


def _read(path):
    with open(path) as handle:
        return handle.read()


def _write(path, text):
    with open(path, "w") as handle:
        handle.write(text)


def _marked_output(directory, files):
    """A directory as migrate writes it: `files` ({relative path: text}) and the marker listing them."""
    os.makedirs(directory)
    for name, text in files.items():
        if os.path.dirname(name):
            os.makedirs(os.path.join(directory, os.path.dirname(name)))
        _write(os.path.join(directory, name), text)
    io.write_marker(directory)
    return directory


@pytest.fixture
def umask():
    """Set the process umask for one test, restored after."""
    previous = []

    def set_mask(mask):
        previous.append(os.umask(mask))
    yield set_mask
    if previous:
        os.umask(previous[0])


# ------------------------------------------------------------------------------------------ atomic_file

def test_atomic_file_writes_a_temp_beside_the_target_and_renames_it(tmp_path):
    path = str(tmp_path / "out.pb")
    with io.atomic_file(path) as temp:
        assert os.path.dirname(temp) == str(tmp_path) and temp != path
        assert os.path.basename(temp).startswith(".out.pb.") and temp.endswith(".tmp")
        assert not os.path.exists(path)
        _write(temp, "complete")
    assert _read(path) == "complete"
    assert os.listdir(str(tmp_path)) == ["out.pb"]


def test_atomic_file_leaves_nothing_when_the_writer_raises(tmp_path):
    path = str(tmp_path / "out.pb")
    with pytest.raises(RuntimeError, match="half way"):
        with io.atomic_file(path) as temp:
            _write(temp, "half")
            raise RuntimeError("half way")
    assert os.listdir(str(tmp_path)) == []


def test_atomic_file_keeps_the_previous_output_when_the_writer_raises(tmp_path):
    path = str(tmp_path / "out.pb")
    _write(path, "previous")
    with pytest.raises(KeyboardInterrupt):
        with io.atomic_file(path) as temp:
            _write(temp, "new")
            raise KeyboardInterrupt()
    assert _read(path) == "previous" and os.listdir(str(tmp_path)) == ["out.pb"]


def test_atomic_file_os_error_is_a_write_error_naming_the_output_not_the_temp(tmp_path):
    path = str(tmp_path / "out.pb")
    with pytest.raises(io.WriteFailed) as caught:
        with io.atomic_file(path) as temp:
            raise OSError(28, "No space left on device", temp)
    assert caught.value.where == path and caught.value.what == "cannot write output: No space left on device"
    assert ".tmp" not in str(caught.value)
    assert os.listdir(str(tmp_path)) == []


def test_no_replace_keeps_an_output_that_appeared_meanwhile(tmp_path):
    path = str(tmp_path / "out.pb")
    with pytest.raises(BadInput) as caught:
        with io.atomic_file(path, replace=False) as temp:
            _write(temp, "mine")
            _write(path, "another run's")  # appears while this run writes
    assert caught.value.what.startswith("output appeared while migrate was running") and caught.value.where == path
    assert _read(path) == "another run's" and os.listdir(str(tmp_path)) == ["out.pb"]


def test_no_replace_rename_of_a_directory_keeps_the_one_that_appeared(tmp_path):
    temp = str(tmp_path / ".out.tmp")
    os.makedirs(temp)
    _write(os.path.join(temp, "mine.txt"), "mine")
    path = _marked_output(str(tmp_path / "out"), {"theirs.txt": "theirs"})
    with pytest.raises(BadInput, match="output appeared while migrate was running"):
        io.rename_into_place(temp, path, replace=False)
    assert sorted(os.listdir(path)) == [io.MARKER, "theirs.txt"]
    assert os.listdir(temp) == ["mine.txt"]


@pytest.mark.parametrize("mask, file_mode, dir_mode", [(0o022, 0o644, 0o755), (0o027, 0o640, 0o750),
                                                        (0o077, 0o600, 0o700)])
def test_outputs_get_the_umask_modes_not_the_temp_modes(tmp_path, umask, mask, file_mode, dir_mode):
    umask(mask)
    assert io.current_umask() == mask
    path = str(tmp_path / "out.pb")
    with io.atomic_file(path) as temp:
        _write(temp, "x")
    directory = str(tmp_path / "saved_model")
    with io.atomic_dir(directory) as temp_dir:
        _write(os.path.join(temp_dir, "saved_model.pb"), "x")
    assert stat.S_IMODE(os.stat(path).st_mode) == file_mode
    assert stat.S_IMODE(os.stat(directory).st_mode) == dir_mode


# ------------------------------------------------------------------------------------------ atomic_dir

def test_atomic_dir_puts_a_marker_listing_what_it_wrote(tmp_path):
    path = str(tmp_path / "saved_model")
    with io.atomic_dir(path) as temp:
        os.makedirs(os.path.join(temp, "variables"))
        _write(os.path.join(temp, "variables", "variables.index"), "i")
        _write(os.path.join(temp, "saved_model.pb"), "g")
    with open(os.path.join(path, io.MARKER)) as handle:
        marker = json.load(handle)
    assert marker["entries"] == ["saved_model.pb", "variables/", "variables/variables.index"]
    assert marker["written_by"].startswith("migrate ")
    assert os.listdir(str(tmp_path)) == ["saved_model"]


def test_atomic_dir_removes_the_temp_dir_and_names_the_source_on_an_error_inside_it(tmp_path):
    path = str(tmp_path / "converted")
    with pytest.raises(MigrateError) as caught:
        with io.atomic_dir(path, source="model.ckpt") as temp:
            _write(os.path.join(temp, "frozen.pb"), "g")
            raise MigrateError("cannot parse {}".format(os.path.join(temp, "frozen.pb")),
                               os.path.join(temp, "frozen.pb"))
    assert caught.value.where == "model.ckpt"
    assert caught.value.what == "cannot parse " + os.path.join(path, "frozen.pb")
    assert os.listdir(str(tmp_path)) == []


# ------------------------------------------------------------------------------------------ --force rules

def test_existing_output_is_refused_without_force(tmp_path):
    path = str(tmp_path / "out.pb")
    _write(path, "previous")
    with pytest.raises(BadInput) as caught:
        io.check_output_path(path)
    assert (caught.value.what, caught.value.fix) == ("output already exists", "remove it or pass --force")
    io.check_output_path(path, force=True)  # a regular file: --force replaces it


def test_force_replaces_only_an_unchanged_previous_output(tmp_path):
    path = _marked_output(str(tmp_path / "out"), {"saved_model.pb": "old", "variables/variables.index": "i"})
    io.check_output_path(path, force=True)
    _write(os.path.join(path, "notes.txt"), "the user's")
    with pytest.raises(BadInput) as caught:
        io.check_output_path(path, force=True)
    assert "holds a file migrate did not write (notes.txt)" in caught.value.what


def test_force_refuses_a_directory_without_marker(tmp_path):
    path = str(tmp_path / "photos")
    os.makedirs(path)
    _write(os.path.join(path, "holiday.jpg"), "x")
    with pytest.raises(BadInput) as caught:
        io.check_output_path(path, force=True)
    assert "not a previous migrate output (no .migrate-output file)" in caught.value.what
    assert os.listdir(path) == ["holiday.jpg"]


def test_force_refuses_a_symbolic_link_output(tmp_path):
    target = _marked_output(str(tmp_path / "real"), {"saved_model.pb": "x"})
    link = str(tmp_path / "out")
    os.symlink(target, link)
    with pytest.raises(BadInput) as caught:
        io.check_output_path(link, force=True, directory=True)
    assert caught.value.what == "output is a symbolic link (to {}); --force never replaces what a link points " \
                                "at".format(os.path.realpath(target))


def test_force_replace_swaps_the_directory_and_leaves_no_trash(tmp_path):
    path = _marked_output(str(tmp_path / "out"), {"old.pb": "old"})
    with io.atomic_dir(path, replace=True) as temp:
        _write(os.path.join(temp, "new.pb"), "new")
    assert sorted(os.listdir(path)) == [io.MARKER, "new.pb"]
    assert os.listdir(str(tmp_path)) == ["out"]


def test_force_replace_checks_again_at_rename_time(tmp_path):
    path = _marked_output(str(tmp_path / "out"), {"old.pb": "old"})
    with pytest.raises(BadInput, match=r"holds a file migrate did not write \(added.txt\)"):
        with io.atomic_dir(path, replace=True) as temp:
            _write(os.path.join(temp, "new.pb"), "new")
            _write(os.path.join(path, "added.txt"), "added while the run worked")
    assert sorted(os.listdir(path)) == [io.MARKER, "added.txt", "old.pb"]
    assert os.listdir(str(tmp_path)) == ["out"]


def test_fifo_output_is_refused_even_with_force(tmp_path):
    path = str(tmp_path / "out.pb")
    os.mkfifo(path)
    refused = "^{}: output exists and is not a regular file or directory ".format(re.escape(path))
    with pytest.raises(BadInput, match=refused):
        io.check_output_path(path, force=True)
    with pytest.raises(BadInput, match=refused):  # and again when the rename would replace it
        with io.atomic_file(path, replace=True) as temp:
            _write(temp, "x")
    assert stat.S_ISFIFO(os.lstat(path).st_mode) and os.listdir(str(tmp_path)) == ["out.pb"]


# ------------------------------------------------------------------------------------------ check_output_path

def test_output_clashing_with_the_input_is_refused(tmp_path):
    prefix = str(tmp_path / "model.ckpt-10")
    for suffix in (".index", ".meta", ".data-00000-of-00001"):
        _write(prefix + suffix, "x")
    with pytest.raises(BadInput) as caught:
        io.check_output_path(prefix + ".meta", inputs=[prefix + ".index"], force=True)
    assert caught.value.what == "output would overwrite a file of the input checkpoint " + prefix
    with pytest.raises(BadInput, match="output is the input file itself"):
        io.check_output_path(prefix + ".index", inputs=[prefix + ".index"], force=True)
    with pytest.raises(BadInput, match="output would land inside the input directory"):
        io.check_output_path(str(tmp_path / "frozen.pb"), inputs=[str(tmp_path)])


def test_file_and_directory_outputs_are_told_apart(tmp_path):
    directory = str(tmp_path / "dir")
    os.makedirs(directory)
    with pytest.raises(BadInput) as caught:
        io.check_output_path(directory, directory=False)
    assert caught.value.what == "output is a directory, not a file"
    assert caught.value.fix == "name a file, e.g. " + os.path.join(directory, "frozen.pb")
    _write(str(tmp_path / "model.pb"), "x")
    with pytest.raises(BadInput, match="output is a file, not a directory"):
        io.check_output_path(str(tmp_path / "model.pb"), directory=True, force=True)
    with pytest.raises(BadInput) as caught:
        io.check_output_path(str(tmp_path / "missing" / "out.pb"))
    assert caught.value.what == "output directory does not exist"
    assert caught.value.where == str(tmp_path / "missing")
