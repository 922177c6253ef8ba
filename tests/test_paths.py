"""Artifact paths: everything that could escape the root is refused, the rest normalised."""

import os

import pytest

from mltrail._paths import resolve_under, safe_relpath
from mltrail.errors import InvalidParameterValue

BAD = ["..", "../x", "a/../../x", "a/..", "/etc/passwd", "//server/share", "C:/windows", "c:x", "a\\b", "..\\x",
       "%2e%2e/x", "%2E%2E%2Fx", "%252e%252e/x", "%25252e%25252e/x", "a%2f..%2f..%2fx", "%5c..", "x#frag",
       "x?query=1", "%23x", "%3fx", "a\x00b", "~/x", "%2fetc/passwd"]


@pytest.mark.parametrize("path", BAD)
def test_refused(path):
    with pytest.raises(InvalidParameterValue) as e:
        safe_relpath(path)
    assert repr(path) in e.value.message


@pytest.mark.parametrize("path, expected", [(None, ""), ("", ""), (".", ""), ("a/b", "a/b"), ("a//b/", "a/b"),
                                            ("./a/./b", "a/b"), ("a..b/c", "a..b/c"), ("x.txt", "x.txt")])
def test_normalised(path, expected):
    assert safe_relpath(path) == expected


def test_symlink_escape_refused(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    (tmp_path / "secret").write_text("s")
    os.symlink(tmp_path / "secret", root / "link")
    with pytest.raises(InvalidParameterValue, match="outside"):
        resolve_under(str(root), "link")
    assert resolve_under(str(root), "a/b") == str(root / "a" / "b")
