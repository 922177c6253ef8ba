"""Logged models for the UI: the MLmodel file, its signature as table rows, and how-to snippets."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from mltrail.server.context import ServerContext
from mltrail.server.ui._artifacts import ArtifactView

EXAMPLE_LIMIT = 1024 * 1024  # bytes of an input example read to build the curl snippet
SNIPPET_EXAMPLE_CHARS = 1500  # longer requests (even cut to two rows) get a placeholder


@dataclass
class ModelCard:
    """Everything the UI shows about one logged model."""

    model: Any
    artifacts: ArtifactView | None
    mlmodel_text: str = ""
    flavors: list[str] = field(default_factory=list)
    signature: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    snippets: list[tuple[str, str]] = field(default_factory=list)
    error: str = ""


def spec_rows(raw: Any) -> list[dict[str, str]]:
    """Rows (name, type, shape, note) of one side of a signature, given as MLmodel stores it (JSON text)."""
    if not raw:
        return []
    try:
        specs = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        return [{"name": "", "type": str(raw), "shape": "", "note": "unreadable"}]
    if not isinstance(specs, list):
        return []
    rows = []
    for s in specs:
        if not isinstance(s, dict):
            continue
        tensor = s.get("tensor-spec") if isinstance(s.get("tensor-spec"), dict) else None
        shape = tensor.get("shape") if tensor else s.get("shape")
        note = []
        if s.get("required") is False:
            note.append("optional")
        if "default" in s:
            note.append(f"default {s['default']!r}")
        rows.append({"name": str(s.get("name") or ""),
                     "type": str(tensor.get("dtype") if tensor else s.get("type", "")),
                     "shape": "(" + ", ".join(str(d) for d in shape) + ")" if isinstance(shape, list) else "",
                     "note": ", ".join(note)})
    return rows


def _input_example(view: ArtifactView, mlmodel: dict[str, Any]) -> str | None:
    info = mlmodel.get("saved_input_example_info")
    path = info.get("artifact_path") if isinstance(info, dict) else None
    if not path:
        return None
    try:
        data, size = view.read(str(path), EXAMPLE_LIMIT + 1)
    except Exception:  # noqa: BLE001 - an unreadable example only costs the snippet its data
        return None
    if size > EXAMPLE_LIMIT:
        return None
    text = data.decode("utf-8", errors="replace").strip()
    try:
        parsed = json.loads(text)
    except ValueError:
        return None
    if not (isinstance(parsed, dict) and {"inputs", "instances", "dataframe_split", "dataframe_records"} & set(parsed)):
        parsed = {"inputs": parsed}
    body = json.dumps(_first_rows(parsed))
    return body if len(body) <= SNIPPET_EXAMPLE_CHARS else None


def _first_rows(payload: dict[str, Any], n: int = 2) -> dict[str, Any]:
    """The request with only its first `n` rows: a snippet to copy, not the whole example."""
    out = dict(payload)
    for key in ("inputs", "instances", "dataframe_records"):
        if isinstance(out.get(key), list):
            out[key] = out[key][:n]
    split = out.get("dataframe_split")
    if isinstance(split, dict) and isinstance(split.get("data"), list):
        out["dataframe_split"] = {**split, "data": split["data"][:n]}
        if isinstance(split.get("index"), list):
            out["dataframe_split"]["index"] = split["index"][:n]
    return out


def snippets(uri: str, tracking_uri: str, flavors: list[str], example: str | None) -> list[tuple[str, str]]:
    """(title, code) pairs: load as pyfunc, load the Keras model, serve, query the server."""
    out = [("Load and predict (pyfunc)",
            "import mltrail as mlflow\n\n"
            f'mlflow.set_tracking_uri("{tracking_uri}")\n'
            f'model = mlflow.pyfunc.load_model("{uri}")\n'
            "predictions = model.predict(data)\n")]
    if "tensorflow" in flavors or "keras" in flavors:
        out.append(("Load the Keras model",
                    "import mltrail as mlflow\n\n"
                    f'mlflow.set_tracking_uri("{tracking_uri}")\n'
                    f'keras_model = mlflow.tensorflow.load_model("{uri}")\n'))
    out.append(("Serve it over REST",
                f'MLTRAIL_TRACKING_URI={tracking_uri} mltrail models serve -m "{uri}" --port 5001\n'))
    body = example if example is not None else '{"inputs": [[...]]}'
    out.append(("Query the scoring server",
                "curl -s http://127.0.0.1:5001/invocations -H 'Content-Type: application/json' \\\n"
                f"  -d '{body.replace(chr(39), chr(39) + chr(92) + chr(39) + chr(39))}'\n"))
    return out


def model_card(ctx: ServerContext, model: Any, tracking_uri: str, uri: str | None = None) -> ModelCard:
    """Read a logged model's MLmodel and build its card (errors end up in `card.error`, not raised)."""
    import yaml

    card = ModelCard(model=model, artifacts=None)
    try:
        view = ArtifactView.for_model(ctx, model)
        card.artifacts = view
        data, _ = view.read("MLmodel", 256 * 1024)
    except Exception as e:  # noqa: BLE001 - the page still shows the model's metadata
        card.error = f"The MLmodel file could not be read: {e}"
        card.snippets = snippets(uri or f"models:/{model.model_id}", tracking_uri, [], None)
        return card
    card.mlmodel_text = data.decode("utf-8", errors="replace")
    try:
        mlmodel = yaml.safe_load(card.mlmodel_text) or {}
    except yaml.YAMLError as e:
        mlmodel = {}
        card.error = f"The MLmodel file is not valid YAML: {e}"
    if not isinstance(mlmodel, dict):
        mlmodel = {}
    flavors = mlmodel.get("flavors")
    card.flavors = sorted(str(k) for k in flavors) if isinstance(flavors, dict) else []
    sig = mlmodel.get("signature")
    if isinstance(sig, dict):
        card.signature = {side: spec_rows(sig.get(side)) for side in ("inputs", "outputs", "params")
                          if sig.get(side)}
    card.snippets = snippets(uri or f"models:/{model.model_id}", tracking_uri, card.flavors,
                             _input_example(view, mlmodel))
    return card
