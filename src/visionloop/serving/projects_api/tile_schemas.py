"""The ``tiles`` field of an image's detail: how a viewer reads the tile pyramid of a large image."""

from __future__ import annotations

from pydantic import BaseModel, Field

from visionloop.storage.tiles import pyramid_info

__all__ = ["TILE_PATH", "TilesPublic", "tiles_public"]

TILE_PATH = "/{image_id}/tiles/{z}/{x}/{y}.webp"
"""The tile route, under ``/projects/{project}/images``."""


class TilesPublic(BaseModel):
    """A pyramid of square WebP tiles. Level ``z`` is the image downsampled by ``2**z`` (``ceil(width / 2**z)`` by
    ``ceil(height / 2**z)`` pixels); level 0 is the full resolution and level ``levels - 1`` fits in one tile. Tile
    ``(x, y)`` of level ``z`` holds that level's pixels from ``x * tile_size`` and ``y * tile_size``; tiles at the
    right and bottom edges repeat the image's last column and row beyond it: clip the layer to the image's extent
    (``[0, 0, width, height]`` in level-0 pixels)."""

    tile_size: int = Field(description="Pixels on a tile's side (every tile is square).")
    levels: int = Field(description="Number of levels: z is 0 (full resolution) to levels - 1 (one tile).")
    width: int = Field(description="Level 0 width in pixels (the image's, after EXIF orientation).")
    height: int = Field(description="Level 0 height in pixels.")
    url_template: str = Field(description="Path of a tile with {z}, {x} and {y} to fill in, e.g. "
                              ".../images/7/tiles/{z}/{x}/{y}.webp.")


def tiles_public(images_path: str, image_id: int, width: int, height: int) -> TilesPublic | None:
    """The ``tiles`` of an image (``images_path``: the path of the project's image list); None for an image up to
    :data:`~visionloop.storage.tiles.TILE_MIN_SIDE` pixels on a side, which is read whole."""
    info = pyramid_info(width, height)
    if info is None:
        return None
    template = TILE_PATH.replace("{image_id}", str(image_id))
    return TilesPublic(**info.to_json(), url_template=f"{images_path}{template}")

