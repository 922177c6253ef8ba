"""Every backend declares the interface it implements and leaves none of its methods abstract;
what callers need from a store is a method of the interface, not a probe."""

from __future__ import annotations

import inspect

import pytest

from mltrail.store.artifact.base import ArtifactRepository
from mltrail.store.artifact.http import HttpArtifactRepository
from mltrail.store.artifact.local import LocalArtifactRepository
from mltrail.store.artifact.s3 import S3ArtifactRepository
from mltrail.store.base import TrackingStore
from mltrail.store.registry_base import RegistryStore
from mltrail.store.rest import RestTrackingStore
from mltrail.store.sql.store import SqlTrackingStore

BACKENDS = [
    (SqlTrackingStore, (TrackingStore, RegistryStore)),
    (RestTrackingStore, (TrackingStore, RegistryStore)),
    (LocalArtifactRepository, (ArtifactRepository,)),
    (S3ArtifactRepository, (ArtifactRepository,)),
    (HttpArtifactRepository, (ArtifactRepository,)),
]


@pytest.mark.parametrize(("backend", "interfaces"), BACKENDS, ids=lambda b: getattr(b, "__name__", ""))
def test_backend_declares_and_completes_its_interfaces(backend, interfaces):
    for interface in interfaces:
        assert interface in backend.__mro__  # declared, not merely alike
    assert not getattr(backend, "__abstractmethods__", frozenset()), backend.__abstractmethods__


@pytest.mark.parametrize("interface", [TrackingStore, RegistryStore])
def test_backends_keep_the_interface_s_signatures(interface):
    # mypy checks the types; this checks the parameter names callers pass by keyword
    for backend in (SqlTrackingStore, RestTrackingStore):
        for name in interface.__abstractmethods__:
            want = list(inspect.signature(getattr(interface, name)).parameters)
            got = list(inspect.signature(getattr(backend, name)).parameters)
            assert got[:len(want)] == want, f"{backend.__name__}.{name}{got} differs from {want}"


def test_a_backend_missing_a_method_cannot_be_built():
    class HalfStore(TrackingStore):
        def get_run(self, run_id):  # everything else is missing
            raise AssertionError

    with pytest.raises(TypeError, match="abstract"):
        HalfStore()


def test_the_default_count_runs_pages_through_search(tmp_path):
    store = SqlTrackingStore(f"sqlite:///{tmp_path}/m.db", str(tmp_path / "artifacts"))
    exp = store.create_experiment("counted")
    for i in range(3):
        store.create_run(exp, "u", 0, [], f"r{i}")
    assert TrackingStore.count_runs(store, [exp]) == store.count_runs([exp]) == {exp: 3}
