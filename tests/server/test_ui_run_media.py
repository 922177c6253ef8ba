"""The run page's Images and Tables sections, through Starlette's TestClient over the real server app.

Runs are filled through the public API: evaluation-like plots and other image files, step-wise images
(`mltrail.log_image(key=, step=)`), a logged table with an image column, a CSV file, and (where
scikit-learn and matplotlib are installed) a real `mltrail.evaluate` of a small callable classifier.
"""

from __future__ import annotations

import html as html_lib
import importlib.util
import re
from typing import Any
from urllib.parse import quote

import numpy as np
import pytest
from PIL import Image
from starlette.testclient import TestClient
from test_ui_support import XSS, serve_ui, ui_settings

import mltrail
from mltrail import fluent, tracking_uri
from mltrail.client import Client
from mltrail.server.app import create_app

HAS_EVALUATE = all(importlib.util.find_spec(m) is not None for m in ("sklearn", "matplotlib"))
PLOTS = ["val_roc_curve_plot.png", "plots/lift_curve_plot.png", "plots/eval/calibration_curve_plot.png",
         "photo.jpg"]
TOO_DEEP = "deep/a/b/too_deep.png"
MANY_STEPS = 130
MANY_FILES = 65


def _image(width: int, height: int, shade: int) -> Image.Image:
    pixels = np.zeros((height, width, 3), dtype=np.uint8)
    pixels[:, : width // 2] = (shade, 40, 40)
    pixels[:, width // 2:] = (40, 90, shade)
    return Image.fromarray(pixels)


def _png_bytes(width: int = 8, height: int = 6) -> bytes:
    import io

    buf = io.BytesIO()
    _image(width, height, 200).save(buf, format="PNG")
    return buf.getvalue()


def _fill(directory) -> dict[str, Any]:
    """Runs with media, through the fluent API (and the client for raw files); returns their ids."""
    ids: dict[str, Any] = {}
    mltrail.set_tracking_uri(str(directory))
    mltrail.set_experiment("media")
    with mltrail.start_run(run_name="media") as run:
        for i, path in enumerate([*PLOTS, TOO_DEEP, f"x{XSS.replace('/', '')}.png"]):
            mltrail.log_image(_image(40 + i, 30, 100 + 10 * i), artifact_file=path)
        for step in (0, 1, 2):
            mltrail.log_image(_image(48, 32, 60 * step + 50), key="samples/generated", step=step)
        mltrail.log_image(_image(20, 20, 90), key="attention", step=7)
        mltrail.log_table({"text": ["a cat", XSS], "score": [0.25, 0.75]},
                          artifact_file="eval/predictions.json")
        mltrail.log_table({"picture": [_image(16, 16, 30), _image(16, 16, 220)], "label": ["dark", "light"]},
                          artifact_file="gallery_table.json")
        mltrail.log_text("class,precision\n0,0.5\n1,<b>0.75</b>\n", "per_class_metrics.csv")
        ids["media"] = run.info.run_id
    with mltrail.start_run(run_name="plain") as run:
        mltrail.log_metric("loss", 0.5)
        mltrail.log_text("just text", "notes.txt")
        ids["plain"] = run.info.run_id
    client = Client(str(directory))
    with mltrail.start_run(run_name="many") as run:
        rid = ids["many"] = run.info.run_id
        png = _png_bytes()
        for step in range(MANY_STEPS):  # no thumbnails: the page falls back to the PNG itself
            client.log_bytes(rid, png, f"images/curve+step+{step}+timestamp+{1000 + step}+u{step}.png")
        client.log_bytes(rid, png, "images/legacy%step%3%timestamp%1700000000000%abc.png")
        for i in range(MANY_FILES):
            client.log_bytes(rid, png, f"shots/shot_{i:03d}.png")
    if HAS_EVALUATE:
        rng = np.random.default_rng(0)
        features = rng.normal(size=(60, 2))
        labels = np.digitize(features[:, 0], [-0.5, 0.5])

        def model(df):
            return np.digitize(np.asarray(df)[:, 0], [-0.4, 0.5])

        with mltrail.start_run(run_name="evaluated") as run:
            mltrail.evaluate(model, features, targets=labels, model_type="classifier")
            ids["evaluated"] = run.info.run_id
    return ids


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    directory = tmp_path_factory.mktemp("ui-media") / "store"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLTRAIL_JOURNAL_DIR", str(directory.parent / "journal"))
        mp.chdir(directory.parent)
        try:
            ids = _fill(directory)
            ids["directory"] = directory
        finally:
            while mltrail.active_run() is not None:
                fluent.end_run()
            tracking_uri.set_tracking_uri(None)
            fluent._active_experiment_id = None
    with TestClient(create_app(ui_settings(directory)), base_url="http://127.0.0.1") as client:
        yield ids, client


def _section(page: str, name: str) -> str:
    m = re.search(rf'<section id="{name}">(.*?)</section>', page, re.S)
    assert m, f"the page has a {name} section"
    return m.group(1)


def _gallery(section: str) -> list[tuple[str, str]]:
    """(img src, caption) of each gallery figure."""
    return [(html_lib.unescape(src), html_lib.unescape(caption)) for src, caption in re.findall(
        r'<figure class="thumb"><a href="[^"]+"[^>]*>'
        r'<img src="([^"]+)" alt="[^"]*" loading="lazy"[^>]*></a>\s*'
        r'<figcaption class="mono small">(.*?)</figcaption>', section, re.S)]


def _series(section: str) -> dict[str, list[tuple[int, str, str]]]:
    """key -> [(step, full url, thumbnail url)] of each step-wise image viewer."""
    out = {}
    for key, body in re.findall(r'<div class="image-series" data-key="([^"]*)">(.*?)</ol>', section, re.S):
        links = re.findall(r'<a href="([^"]+)" data-step="(-?\d+)" data-thumb="([^"]+)"', body)
        out[html_lib.unescape(key)] = [(int(step), html_lib.unescape(url), html_lib.unescape(thumb))
                                       for url, step, thumb in links]
    return out


def _tables(section: str) -> dict[str, str]:
    return {html_lib.unescape(p): body for p, body in
            re.findall(r'<div class="logged-table" data-path="([^"]*)">(.*?)</div>\s*'
                       r'(?=<div class="logged|$)', section, re.S)}


def test_the_gallery_shows_image_files_down_two_folders(site):
    ids, c = site
    page = c.get(f"/runs/{ids['media']}").text
    assert '<a href="#images">Images</a>' in page and '<a href="#tables">Tables</a>' in page
    shown = _gallery(_section(page, "images"))
    captions = [caption for _, caption in shown]
    assert set(PLOTS) <= set(captions)
    assert TOO_DEEP not in captions  # three folders down: left to the artifact browser
    assert not any(c.startswith(("images/", "table_images/")) for c in captions)  # step-wise and table cells
    assert f"x{XSS.replace('/', '')}.png" in captions  # a name that is markup, shown as text
    assert "<script>" not in page.replace('<script type="application/json"', "").replace("<script src=", "")
    for src, caption in shown:
        assert src == f"/ui/files/run/{ids['media']}/{quote(caption)}"
        r = c.get(src)
        assert r.status_code == 200
        assert r.headers["content-type"] == ("image/jpeg" if caption.endswith(".jpg") else "image/png")
        assert r.content[:4] in (b"\x89PNG", b"\xff\xd8\xff\xe0", b"\xff\xd8\xff\xdb")


def test_step_wise_images_are_grouped_by_key_with_their_thumbnails(site):
    ids, c = site
    section = _section(c.get(f"/runs/{ids['media']}").text, "images")
    series = _series(section)
    assert list(series) == ["attention", "samples/generated"]
    steps = series["samples/generated"]
    assert [s for s, _, _ in steps] == [0, 1, 2]
    for _, full, thumb in steps:
        assert "/images/samples~generated%2Bstep%2B" in full and full.endswith(".png")
        assert thumb == full[: -len(".png")] + "%2Bcompressed.webp"
        r = c.get(full)
        assert r.status_code == 200 and r.headers["content-type"] == "image/png"
        t = c.get(thumb)
        assert t.status_code == 200 and t.headers["content-type"] == "image/webp"
        assert t.content[8:12] == b"WEBP"
    # the viewer starts at the last step: its thumbnail, linked to its full image
    viewer = re.search(r'data-key="samples/generated">.*?<a class="step-full" href="([^"]+)".*?'
                       r'<img class="step-image" src="([^"]+)"', section, re.S)
    assert viewer and html_lib.unescape(viewer.group(1)) == steps[-1][1]
    assert html_lib.unescape(viewer.group(2)) == steps[-1][2]
    assert 'class="step-slider" min="0" max="2" value="2"' in section
    assert [s for s, _, _ in series["attention"]] == [7]


def test_logged_tables_and_csv_files_render_as_escaped_html_tables(site):
    ids, c = site
    tables = _tables(_section(c.get(f"/runs/{ids['media']}").text, "tables"))
    assert list(tables) == ["eval/predictions.json", "gallery_table.json", "per_class_metrics.csv"]
    predictions = tables["eval/predictions.json"]
    assert re.search(r"<th>text</th><th>score</th>", predictions)
    assert "<td>a cat</td><td>0.25</td>" in predictions
    assert "<td>&lt;script&gt;window.__pwned=1&lt;/script&gt;</td><td>0.75</td>" in predictions
    assert "2 rows" in predictions
    csv_table = tables["per_class_metrics.csv"]
    assert "<th>class</th><th>precision</th>" in csv_table
    assert "<td>1</td><td>&lt;b&gt;0.75&lt;/b&gt;</td>" in csv_table
    cells = re.findall(r'<img class="cell-image" src="([^"]+)"', tables["gallery_table.json"])
    thumbs = [html_lib.unescape(u) for u in cells]
    assert len(thumbs) == 2
    assert all("/table_images/gallery_table/" in u and u.endswith(".webp") for u in thumbs)
    assert all(c.get(u).headers["content-type"] == "image/webp" for u in thumbs)
    assert "<td>dark</td>" in tables["gallery_table.json"]


def test_a_run_without_media_has_no_images_or_tables_section(site):
    ids, c = site
    page = c.get(f"/runs/{ids['plain']}").text
    assert '<section id="images">' not in page and '<section id="tables">' not in page
    assert 'href="#images"' not in page and "media.js" not in page


def test_long_series_are_thinned_and_the_gallery_is_bounded(site):
    ids, c = site
    page = c.get(f"/runs/{ids['many']}").text
    section = _section(page, "images")
    series = _series(section)
    curve = series["curve"]
    assert 2 < len(curve) < MANY_STEPS and f"{MANY_STEPS} steps, {len(curve)} shown" in section
    assert curve[0][0] == 0 and curve[-1][0] == MANY_STEPS - 1
    assert all(full == thumb for _, full, thumb in curve)  # no thumbnails logged: the PNG is shown
    assert [s for s, _, _ in series["legacy"]] == [3]  # MLflow 2's '%' delimiters
    legacy_url = series["legacy"][0][1]
    assert legacy_url.endswith("/images/legacy%25step%253%25timestamp%251700000000000%25abc.png")
    # Starlette's TestClient decodes a path twice ('%2517' -> '\x17'): the file is fetched from a real server
    import requests

    srv = serve_ui(ids["directory"])
    try:
        r = requests.get(srv.uri + legacy_url, timeout=30)
        assert r.status_code == 200 and r.headers["content-type"] == "image/png"
        assert r.content[:4] == b"\x89PNG"
    finally:
        srv.stop()
    shown = _gallery(section)
    assert 0 < len(shown) < MANY_FILES
    assert f"{MANY_FILES - len(shown)} more image files" in section
    assert "media.js" in page


@pytest.mark.skipif(not HAS_EVALUATE, reason="mltrail.evaluate's plots need scikit-learn and matplotlib")
def test_the_plots_and_tables_of_evaluate_show_on_the_run_page(site):
    ids, c = site
    page = c.get(f"/runs/{ids['evaluated']}").text
    shown = dict((caption, src) for src, caption in _gallery(_section(page, "images")))
    assert "confusion_matrix.png" in shown
    r = c.get(shown["confusion_matrix.png"])
    assert r.status_code == 200 and r.headers["content-type"] == "image/png" and len(r.content) > 1000
    table = _tables(_section(page, "tables"))["per_class_metrics.csv"]
    assert "<th>positive_class</th>" in table and table.count("<tr>") == 1 + 3  # the header and three classes


def test_the_artifact_preview_shows_tables_as_rows_of_text(site):
    ids, c = site

    def preview(path: str) -> dict:
        r = c.get("/ui/api/preview", params={"run_id": ids["media"], "path": path})
        assert r.status_code == 200, r.text
        return r.json()

    logged = preview("eval/predictions.json")
    assert logged["kind"] == "table" and "text" not in logged
    assert logged["table"] == {"columns": ["text", "score"], "rows": [["a cat", "0.25"], [XSS, "0.75"]],
                               "total": 2}
    cells = preview("gallery_table.json")["table"]["rows"]
    assert [row[1] for row in cells] == ["dark", "light"]
    image_cell = '{"type": "image", "filepath": "table_images/gallery_table/'
    assert all(row[0].startswith(image_cell) for row in cells)
    csv_preview = preview("per_class_metrics.csv")
    assert csv_preview["kind"] == "table"
    assert csv_preview["table"] == {"columns": ["class", "precision"],
                                    "rows": [["0", "0.5"], ["1", "<b>0.75</b>"]], "total": 2}
    r = c.get("/ui/api/preview", params={"run_id": ids["plain"], "path": "notes.txt"})
    assert r.json()["kind"] == "text"
