"""Images for `log_image` and `log_table`: `Image` (MLflow's `mlflow.Image`), array-to-PIL conversion, thumbnails.

Pillow and numpy load on first use, so importing this module stays light.
"""

from __future__ import annotations

import io
import os
import warnings
from typing import Any

# The longest side of the thumbnail stored beside each step-wise image (MLflow's size).
COMPRESSED_IMAGE_SIZE = 256

_KINDS = {"b": "bool", "i": "signed integer", "u": "unsigned integer", "f": "floating"}


def array_to_pil(array: Any) -> Any:
    """A numpy array (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) as a PIL image.

    Integers must lie in [0, 255]; floats and booleans are scaled from [0, 1] (floats outside it are
    min-max rescaled with a warning, as MLflow does).
    """
    import numpy as np
    from PIL import Image as PILImage

    arr = np.asarray(array)
    if arr.dtype.kind not in _KINDS:
        raise TypeError(f"Invalid array data type: '{arr.dtype}'. Must be one of {list(_KINDS.values())}")
    if arr.ndim not in (2, 3):
        raise ValueError(f"`image` must be a 2D or 3D array but got image shape: {arr.shape}")
    if arr.ndim == 3 and arr.shape[2] not in (1, 3, 4):
        raise ValueError(f"Invalid channel length: {arr.shape[2]}. Must be one of [1, 3, 4]")
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]  # PIL takes grayscale as (H, W) only
    if arr.dtype.kind in "iu":
        if arr.size and (arr.min() < 0 or arr.max() > 255):
            raise ValueError(
                "Integer pixel values out of acceptable range [0, 255]. "
                f"Found minimum value {arr.min()} and maximum value {arr.max()}. "
                "Ensure all pixel values are within the specified range.")
        return PILImage.fromarray(arr.astype(np.uint8))
    arr = arr.astype(np.float64)
    if arr.size and (arr.min() < 0 or arr.max() > 1):
        low, high = arr.min(), arr.max()
        warnings.warn(
            f"Float pixel values out of acceptable range [0.0, 1.0]. Found minimum value {low} and maximum "
            f"value {high}. Rescaling values to [0.0, 1.0] with min/max scaler.", stacklevel=3)
        arr = (arr - low) / (high - low) if high > low else np.zeros_like(arr)
    return PILImage.fromarray((arr * 255).astype(np.uint8))


class Image:
    """An image to log (MLflow's `mlflow.Image`): from a numpy array, a nested list, a PIL image or a file path."""

    def __init__(self, image: Any) -> None:
        from PIL import Image as PILImage

        self.image: PILImage.Image
        if isinstance(image, str | os.PathLike):
            self.image = PILImage.open(image)
        elif isinstance(image, PILImage.Image):
            self.image = image
        elif isinstance(image, list) or hasattr(image, "__array_interface__"):
            self.image = array_to_pil(image)
        else:
            raise TypeError(
                f"Unsupported image object type: {type(image)}. `image` must be one of numpy.ndarray, "
                "PIL.Image.Image, or a filepath to an image.")
        self.size: tuple[int, int] = self.image.size

    def to_list(self) -> list[Any]:
        """The pixel values, row by row (a tuple per pixel for multi-channel images)."""
        # Pillow 12 renamed getdata (deprecated, gone in Pillow 14); both give a value (or tuple) per pixel
        flattened = getattr(self.image, "get_flattened_data", None)
        return list(flattened() if flattened is not None else self.image.getdata())

    def to_array(self) -> Any:
        import numpy as np

        return np.array(self.image)

    def to_pil(self) -> Any:
        return self.image

    def save(self, path: str) -> None:
        """Write the image to `path`; the format follows the file's extension."""
        self.image.save(path)

    def resize(self, size: tuple[int, int]) -> Image:
        """A resized copy, as a new `Image`."""
        return Image(self.image.resize(size))

    def __repr__(self) -> str:
        return f"Image(size={self.size}, mode={self.image.mode!r})"


def to_pil(image: Any) -> Any:
    """A numpy array, `Image` or PIL image as a PIL image; anything else is refused as MLflow does."""
    if isinstance(image, Image):
        return image.to_pil()
    if hasattr(image, "__array_interface__") and not _is_pil(image):
        return array_to_pil(image)
    if _is_pil(image):
        return image
    raise TypeError(
        f"Unsupported image object type: {type(image)}. `image` must be one of numpy.ndarray, "
        "PIL.Image.Image, and mlflow.Image.")


def _is_pil(obj: Any) -> bool:
    from PIL import Image as PILImage

    return isinstance(obj, PILImage.Image)


def is_image_like(obj: Any) -> bool:
    """What `log_table` stores as an image file: an object with `save`, `resize` and `size` (MLflow's test)."""
    return callable(getattr(obj, "save", None)) and callable(getattr(obj, "resize", None)) and hasattr(obj, "size")


def compress_image_size(image: Any, max_size: int = COMPRESSED_IMAGE_SIZE) -> Any:
    """The image scaled to fit a `max_size` square, keeping its aspect ratio (the thumbnail the UI shows)."""
    width, height = image.size
    if width > height:
        new_size = (max_size, max(1, int(height * max_size / width)))
    else:
        new_size = (max(1, int(width * max_size / height)), max_size)
    return image.resize(new_size)


def encode(image: Any, fmt: str) -> bytes:
    """The image (anything with a PIL-style `save`) encoded as `fmt` ("PNG", "WEBP", ...)."""
    buf = io.BytesIO()
    target = image.to_pil() if isinstance(image, Image) else image
    if fmt.upper() == "WEBP" and getattr(target, "mode", "RGB") not in ("RGB", "RGBA", "L", "LA"):
        target = target.convert("RGBA")
    target.save(buf, format=fmt)
    return buf.getvalue()

