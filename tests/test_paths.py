"""Output folders are checked before long work starts; the check leaves nothing behind."""

from __future__ import annotations

import os

import pytest

from surrobench._paths import check_writable_dir


def test_an_existing_or_creatable_folder_passes_and_nothing_is_left(tmp_path):
    assert check_writable_dir(tmp_path, "out") == tmp_path
    deep = tmp_path / "a" / "b" / "c"
    assert check_writable_dir(str(deep), "out") == deep
    assert not (tmp_path / "a").exists()  # a missing folder is not created
    assert os.listdir(tmp_path) == []  # and the probe file is gone


def test_a_file_in_the_way_is_named(tmp_path):
    (tmp_path / "f").write_text("keep")
    with pytest.raises(ValueError, match=r"^out: cannot write to .*f: it is a file, not a folder$"):
        check_writable_dir(tmp_path / "f", "out")
    with pytest.raises(ValueError, match=r"^publish: cannot write to .*f/x/y: .*f is a file, not a folder$"):
        check_writable_dir(tmp_path / "f" / "x" / "y", "publish")
    assert (tmp_path / "f").read_text() == "keep"


def test_a_broken_link_is_named(tmp_path):
    (tmp_path / "link").symlink_to(tmp_path / "gone")
    with pytest.raises(ValueError, match="link is a broken link"):
        check_writable_dir(tmp_path / "link" / "sub", "out")


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root may write anywhere")
def test_a_read_only_folder_is_refused(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        with pytest.raises(ValueError, match="out: cannot write to .*ro/x"):
            check_writable_dir(ro / "x", "out")
    finally:
        ro.chmod(0o755)


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs Linux /proc, where no one may create files")
def test_a_folder_that_refuses_files_is_refused():
    with pytest.raises(ValueError, match=r"^out: cannot write to /proc/surrobench-results: \S"):
        check_writable_dir("/proc/surrobench-results", "out")
