"""LocalArtifactRepository: the repository contract, plus symlinks that point out of the root."""

from __future__ import annotations

import os

import pytest
from repo_contract import RepositoryContract, listing

from mltrail.errors import InvalidParameterValue
from mltrail.store.artifact import get_artifact_repository
from mltrail.store.artifact.local import LocalArtifactRepository


@pytest.fixture
def repo(tmp_path):
    root = tmp_path / "artifact-root"
    root.mkdir()
    return LocalArtifactRepository(str(root))


class TestLocalRepository(RepositoryContract):
    pass


def test_registry_picks_local_for_paths_and_file_uris(tmp_path):
    assert isinstance(get_artifact_repository(str(tmp_path)), LocalArtifactRepository)
    repo = get_artifact_repository(f"file://{tmp_path}/with%20space")
    assert isinstance(repo, LocalArtifactRepository) and repo.root == f"{tmp_path}/with space"


@pytest.fixture
def escape(tmp_path, repo):
    """A directory outside the root, holding a secret, and a symlink to it inside the root."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("secret")
    os.symlink(outside, os.path.join(repo.root, "link"))
    os.symlink(outside / "secret.txt", os.path.join(repo.root, "secret-link.txt"))
    return outside


def test_symlinked_directory_out_of_the_root_is_refused(repo, tmp_path, escape):
    f = tmp_path / "f.txt"
    f.write_text("x")
    calls = [
        lambda: repo.log_artifact(str(f), "link"),
        lambda: repo.log_artifacts(str(tmp_path / "outside"), "link/sub"),
        lambda: repo.write_bytes("link/new.txt", b"x"),
        lambda: repo.read_bytes("link/secret.txt"),
        lambda: repo.list_artifacts("link"),
        lambda: repo.download_artifacts("link/secret.txt", str(tmp_path / "dl")),
        lambda: repo.delete_artifacts("link"),
        lambda: repo.is_dir("link"),
    ]
    for call in calls:
        with pytest.raises(InvalidParameterValue, match="outside the artifact root"):
            call()
    assert sorted(os.listdir(escape)) == ["secret.txt"]
    assert (escape / "secret.txt").read_text() == "secret"


def test_symlinked_file_out_of_the_root_is_refused(repo, tmp_path, escape):
    with pytest.raises(InvalidParameterValue, match="outside the artifact root"):
        repo.read_bytes("secret-link.txt")
    with pytest.raises(InvalidParameterValue, match="outside the artifact root"):
        repo.write_bytes("secret-link.txt", b"overwritten")
    with pytest.raises(InvalidParameterValue, match="outside the artifact root"):
        repo.delete_artifacts("secret-link.txt")
    assert (escape / "secret.txt").read_text() == "secret"


def test_listing_the_root_still_works_beside_an_escaping_symlink(repo, escape):
    repo.write_bytes("ok.txt", b"ok")
    assert ("ok.txt", False, 2) in listing(repo)
