"""Turning numpy arrays and PIL images into PNG bytes for `log_image`."""

from __future__ import annotations

import io
from typing import Any

from mltrail.errors import InvalidParameterValue


def to_png_bytes(image: Any) -> bytes:
    from PIL import Image

    if isinstance(image, Image.Image):
        pil = image
    else:
        import numpy as np

        arr = np.asarray(image)
        if arr.ndim == 3 and arr.shape[2] == 1:
            arr = arr[:, :, 0]
        if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (3, 4)):
            raise InvalidParameterValue(
                f"Invalid image shape {arr.shape}: expected (H, W), (H, W, 1), (H, W, 3) or (H, W, 4).")
        if arr.dtype.kind == "f":
            if np.nanmin(arr) < 0 or np.nanmax(arr) > 1:
                raise InvalidParameterValue(
                    f"Float images must have values in [0, 1]; received values in "
                    f"[{np.nanmin(arr)}, {np.nanmax(arr)}].")
            arr = (arr * 255).round().astype(np.uint8)
        elif arr.dtype.kind in "iub":
            if arr.size and (arr.min() < 0 or arr.max() > 255):
                raise InvalidParameterValue(
                    f"Integer images must have values in [0, 255]; received values in [{arr.min()}, {arr.max()}].")
            arr = arr.astype(np.uint8)
        else:
            raise InvalidParameterValue(f"Invalid image dtype {arr.dtype}: expected integers or floats.")
        pil = Image.fromarray(arr)
    buf = io.BytesIO()
    pil.save(buf, format="PNG")
    return buf.getvalue()
