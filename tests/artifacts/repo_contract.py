"""What every artifact repository must do, run unchanged against each one.

A test module subclasses `RepositoryContract` and provides a `repo` fixture: a fresh, empty
repository. Not collected by itself (the file name does not start with `test_`).
"""

from __future__ import annotations

import os

import pytest

from mltrail.errors import InvalidParameterValue, ResourceDoesNotExist

# Paths that must be refused everywhere: traversal, absolute, drive letters, backslashes, encoded forms.
BAD_PATHS = ["..", "../x", "a/../../x", "/etc", "/abs/x", "C:/x", "~/x", "a\\..\\x", "%2e%2e/x", "%252e%252e/x",
             "a/%2e%2e/%2e%2e/x", "%2fetc", "a#b", "a?b", "a\x00b"]


def make_tree(base) -> str:
    """A small local tree: model/{MLmodel, data/weights.bin, data/sub/deep.txt}; returns its path."""
    root = base / "model"
    (root / "data" / "sub").mkdir(parents=True)
    (root / "MLmodel").write_text("flavors: {}\n")
    (root / "data" / "weights.bin").write_bytes(b"\x00\x01" * 100)
    (root / "data" / "sub" / "deep.txt").write_text("deep")
    return str(root)


def read_tree(path: str) -> dict[str, bytes]:
    out = {}
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            full = os.path.join(dirpath, name)
            with open(full, "rb") as fh:
                out[os.path.relpath(full, path).replace(os.sep, "/")] = fh.read()
    return out


def listing(repo, path=None) -> list[tuple[str, bool, int | None]]:
    return [(f.path, f.is_dir, f.file_size) for f in repo.list_artifacts(path)]


class RepositoryContract:
    # -- upload and list ------------------------------------------------------------------------------

    def test_log_artifact_file_at_root_and_under_a_path(self, repo, tmp_path):
        f = tmp_path / "notes.txt"
        f.write_text("hello")
        repo.log_artifact(str(f))
        repo.log_artifact(str(f), "docs/v1")
        assert repo.read_bytes("notes.txt") == b"hello"
        assert repo.read_bytes("docs/v1/notes.txt") == b"hello"
        assert listing(repo) == [("docs", True, None), ("notes.txt", False, 5)]
        assert listing(repo, "docs") == [("docs/v1", True, None)]
        assert listing(repo, "docs/v1") == [("docs/v1/notes.txt", False, 5)]

    def test_log_artifact_directory_keeps_its_name(self, repo, tmp_path):
        repo.log_artifact(make_tree(tmp_path), "models")
        assert listing(repo, "models") == [("models/model", True, None)]
        assert listing(repo, "models/model") == [("models/model/MLmodel", False, 12),
                                                 ("models/model/data", True, None)]

    def test_log_artifacts_lists_immediate_children_only(self, repo, tmp_path):
        repo.log_artifacts(make_tree(tmp_path), "m")
        assert listing(repo) == [("m", True, None)]
        assert listing(repo, "m") == [("m/MLmodel", False, 12), ("m/data", True, None)]
        assert listing(repo, "m/data") == [("m/data/sub", True, None), ("m/data/weights.bin", False, 200)]
        assert listing(repo, "m/data/sub/") == [("m/data/sub/deep.txt", False, 4)]
        assert listing(repo, "m/MLmodel") == []
        assert listing(repo, "missing") == []

    def test_log_artifacts_at_root(self, repo, tmp_path):
        repo.log_artifacts(make_tree(tmp_path))
        assert [f.path for f in repo.list_artifacts()] == ["MLmodel", "data"]

    def test_similar_prefixes_do_not_mix(self, repo):
        repo.write_bytes("a/x.txt", b"1")
        repo.write_bytes("ab/y.txt", b"2")
        assert listing(repo, "a") == [("a/x.txt", False, 1)]
        repo.delete_artifacts("a")
        assert listing(repo) == [("ab", True, None)]

    # -- bytes ----------------------------------------------------------------------------------------

    def test_write_and_read_bytes(self, repo):
        repo.write_bytes("metrics/summary.json", b'{"acc": 1}')
        repo.write_bytes("metrics/summary.json", b'{"acc": 2}')  # overwrite
        assert repo.read_bytes("metrics/summary.json") == b'{"acc": 2}'
        assert repo.is_dir("metrics") and not repo.is_dir("metrics/summary.json") and repo.is_dir("")

    def test_read_missing_is_resource_does_not_exist(self, repo):
        with pytest.raises(ResourceDoesNotExist, match="nope.txt"):
            repo.read_bytes("nope.txt")

    def test_write_bytes_to_the_root_is_refused(self, repo):
        with pytest.raises(InvalidParameterValue):
            repo.write_bytes("", b"x")

    # -- download -------------------------------------------------------------------------------------

    def test_download_nested_directory(self, repo, tmp_path):
        src = make_tree(tmp_path)
        repo.log_artifacts(src, "runs/1/model")
        dst = tmp_path / "dl"
        local = repo.download_artifacts("runs/1/model", str(dst))
        assert local == str(dst / "runs" / "1" / "model")
        assert read_tree(local) == read_tree(src)

    def test_download_root_and_single_file(self, repo, tmp_path):
        src = make_tree(tmp_path)
        repo.log_artifacts(src)
        everything = repo.download_artifacts(None, str(tmp_path / "all"))
        assert read_tree(everything) == read_tree(src)
        one = repo.download_artifacts("data/sub/deep.txt", str(tmp_path / "one"))
        assert one == str(tmp_path / "one" / "data" / "sub" / "deep.txt")
        assert open(one).read() == "deep"

    def test_download_to_a_fresh_temp_dir_by_default(self, repo):
        repo.write_bytes("a/b.txt", b"b")
        local = repo.download_artifacts("a")
        assert read_tree(local) == {"b.txt": b"b"}

    def test_download_missing_is_resource_does_not_exist(self, repo, tmp_path):
        with pytest.raises(ResourceDoesNotExist):
            repo.download_artifacts("missing/file.txt", str(tmp_path / "dl"))

    # -- delete ---------------------------------------------------------------------------------------

    def test_delete_file_directory_and_everything(self, repo, tmp_path):
        repo.log_artifacts(make_tree(tmp_path))
        repo.delete_artifacts("data/sub/deep.txt")
        assert listing(repo, "data/sub") == []
        repo.delete_artifacts("data")
        assert listing(repo) == [("MLmodel", False, 12)]
        repo.delete_artifacts("does/not/exist")  # no error
        repo.delete_artifacts()
        assert listing(repo) == []

    # -- paths that escape ----------------------------------------------------------------------------

    @pytest.mark.parametrize("bad", BAD_PATHS)
    def test_escaping_paths_are_refused_everywhere(self, repo, tmp_path, bad):
        f = tmp_path / "f.txt"
        f.write_text("x")
        calls = [
            lambda: repo.log_artifact(str(f), bad),
            lambda: repo.log_artifacts(str(tmp_path), bad),
            lambda: repo.list_artifacts(bad),
            lambda: repo.read_bytes(bad),
            lambda: repo.write_bytes(bad, b"x"),
            lambda: repo.delete_artifacts(bad),
            lambda: repo.download_artifacts(bad, str(tmp_path / "dl")),
            lambda: repo.is_dir(bad),
        ]
        for call in calls:
            with pytest.raises(InvalidParameterValue):
                call()
        assert not (tmp_path.parent / "x").exists() and not (tmp_path / "x").exists()
