"""Request bodies in MLflow's scoring formats, turned into what `PyFuncModel.predict` takes.

The JSON formats (`inputs`, `instances`, `dataframe_split`, `dataframe_records`, plus `params`) are
read by `mltrail.models.serving_input`, shared with `validate_serving_input`, and `text/csv` bodies (a table
with a header row) by `mltrail.models.scoring_io`, shared with `mltrail.models.predict`; this module adds the
HTTP side: the Content-Type and the schema check.
"""

from __future__ import annotations

from typing import Any

from mltrail.errors import BadRequest, InvalidParameterValue
from mltrail.models.scoring_io import parse_csv
from mltrail.models.serving_input import decode_json, split_payload

__all__ = ["UnsupportedMediaType", "decode_json", "media_type", "parse_csv", "parse_request", "validate"]


class UnsupportedMediaType(BadRequest):
    """A Content-Type the scoring server does not read (answered with 415)."""


def media_type(content_type: str | None) -> str:
    """The bare media type of a Content-Type header; charsets other than UTF-8 are refused."""
    if not content_type:
        return "application/json"
    parts = [p.strip() for p in content_type.split(";")]
    for p in parts[1:]:
        key, _, val = p.partition("=")
        if key.strip().lower() == "charset" and val.strip().strip('"').lower() not in ("utf-8", "utf8"):
            raise UnsupportedMediaType(f"Unsupported charset {val.strip()!r} in Content-Type {content_type!r}; "
                                       "only utf-8 is accepted.")
        if key.strip().lower() == "format":
            raise UnsupportedMediaType(
                f"Content-Type {content_type!r}: the MLflow 1.x 'format=' parameter is no longer supported. Send "
                'application/json with one of the fields "dataframe_split", "dataframe_records", "instances" '
                'or "inputs".')
    return parts[0].lower()


def parse_request(body: bytes, content_type: str | None, schema: Any = None) -> tuple[Any, dict[str, Any] | None]:
    """A request body as (model input, params) by its Content-Type (JSON when none is given).

    Raises:
        BadRequest: malformed JSON/CSV, no (or several) input fields, ragged arrays.
        UnsupportedMediaType: neither application/json nor text/csv.
    """
    media = media_type(content_type)
    if media == "application/json" or media.endswith("+json"):
        return split_payload(decode_json(body))
    if media == "text/csv":
        return parse_csv(body, schema), None
    raise UnsupportedMediaType(
        f"Unsupported Content-Type {content_type!r}: the scoring server accepts application/json and text/csv.")


def validate(data: Any, schema: Any) -> Any:
    """`data` checked against the model's input schema, in the form the model takes.

    Raises:
        InvalidParameterValue: a wrong shape, dtype or missing input (the message names expected and received).
    """
    from mltrail.models.enforce import enforce_schema

    try:
        return enforce_schema(data, schema)
    except InvalidParameterValue:
        raise
    except (ValueError, TypeError, KeyError) as e:
        raise InvalidParameterValue(f"The input does not fit the model's signature: {e}.") from None
