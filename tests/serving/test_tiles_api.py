"""The tile route and the image detail's ``tiles`` field, over the project API with real credentials."""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from tests.serving.conftest import bearer_headers
from tests.tile_images import bccd_mosaic
from visionloop.core.settings import Settings
from visionloop.ingest import import_source
from visionloop.serving.projects_api.app import create_app
from visionloop.serving.projects_api.routes.images import IMMUTABLE_CACHE
from visionloop.storage import Project
from visionloop.storage.tiles import TileStore
from visionloop.storage.users import Role

API = "/api/v1"


@dataclass
class Served:
    client: TestClient
    project: Project
    big: int
    small: int
    viewer: dict[str, str]


@pytest.fixture(scope="module")
def mosaic(bccd_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return bccd_mosaic(bccd_dir, 5000, 3750, tmp_path_factory.mktemp("tiles-src") / "smear.jpg")


@pytest.fixture(scope="module")
def served(mosaic: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    tmp_path = tmp_path_factory.mktemp("served")
    src = tmp_path / "src"
    src.mkdir()
    (src / "smear.jpg").write_bytes(mosaic.read_bytes())
    small = Image.new("RGB", (640, 480), (10, 20, 30))
    small.save(src / "small.jpg")
    project = Project.create(tmp_path / "projects" / "cells", task="detection")
    import_source(project, src, format="images")
    ids = {im.name: im.id for im in project.images()}
    with TestClient(create_app(tmp_path / "projects", settings=Settings())) as client:
        yield Served(client, project, ids["smear.jpg"], ids["small.jpg"], bearer_headers(project, Role.VIEWER))
    project.close()


def test_detail_gives_the_pyramid_of_a_large_image_only(served: Served) -> None:
    c, v = served.client, served.viewer
    detail = c.get(f"{API}/projects/cells/images/{served.big}", headers=v).json()
    assert detail["tiles"] == {
        "tile_size": 512, "levels": 5, "width": 5000, "height": 3750,
        "url_template": f"{API}/projects/cells/images/{served.big}/tiles/{{z}}/{{x}}/{{y}}.webp",
    }
    assert c.get(f"{API}/projects/cells/images/{served.small}", headers=v).json()["tiles"] is None


def test_a_tile_is_webp_cached_forever_and_shows_the_image(served: Served, mosaic: Path) -> None:
    c, v = served.client, served.viewer
    url = f"{API}/projects/cells/images/{served.big}/tiles/0/1/2.webp"
    r = c.get(url, headers=v)
    assert r.status_code == 200 and r.headers["content-type"] == "image/webp"
    assert r.headers["cache-control"] == IMMUTABLE_CACHE and r.headers["etag"]
    tile = np.asarray(Image.open(io.BytesIO(r.content)).convert("RGB"), dtype=np.int16)
    source = np.asarray(Image.open(mosaic).convert("RGB").crop((512, 1024, 1024, 1536)), dtype=np.int16)
    assert tile.shape == (512, 512, 3) and np.abs(tile - source).mean() < 6
    again = c.get(url, headers={**v, "If-None-Match": r.headers["etag"]})
    assert again.status_code == 304 and not again.content
    top = Image.open(io.BytesIO(c.get(f"{API}/projects/cells/images/{served.big}/tiles/4/0/0.webp",
                                      headers=v).content))
    assert top.size == (512, 512)  # the whole 313x235 image, padded to a square tile


def test_tiles_need_a_signed_in_user_of_the_project(served: Served, tmp_path: Path) -> None:
    url = f"{API}/projects/cells/images/{served.big}/tiles/0/0/0.webp"
    assert served.client.get(url).status_code == 401
    other = Project.create(tmp_path / "other", task="detection")
    assert served.client.get(url, headers=bearer_headers(other, Role.ADMIN)).status_code == 401
    other.close()


@pytest.mark.parametrize(("path", "says"), [
    ("5/0/0", "levels are 0 (full resolution) to 4"),
    ("0/10/0", "x is 0..9 and y is 0..7"),
    ("2/0/2", "x is 0..2 and y is 0..1"),
])
def test_out_of_range_is_404_saying_the_range(served: Served, path: str, says: str) -> None:
    r = served.client.get(f"{API}/projects/cells/images/{served.big}/tiles/{path}.webp", headers=served.viewer)
    assert r.status_code == 404 and says in r.json()["detail"], r.text


def test_a_small_image_has_no_tiles_and_bad_numbers_are_refused(served: Served) -> None:
    c, v = served.client, served.viewer
    r = c.get(f"{API}/projects/cells/images/{served.small}/tiles/0/0/0.webp", headers=v)
    assert r.status_code == 404 and "only images larger than 4096 px" in r.json()["detail"]
    assert c.get(f"{API}/projects/cells/images/{served.big}/tiles/0/-1/0.webp", headers=v).status_code == 422
    assert c.get(f"{API}/projects/cells/images/{served.big}/tiles/0/a/0.webp", headers=v).status_code == 422
    assert c.get(f"{API}/projects/cells/images/999/tiles/0/0/0.webp", headers=v).status_code == 404


def test_a_missing_pyramid_is_built_on_the_first_tile(served: Served) -> None:
    store = TileStore.of(served.project)
    sha = served.project.image(served.big).sha256
    store.remove(sha)
    assert not store.has(sha)
    r = served.client.get(f"{API}/projects/cells/images/{served.big}/tiles/3/1/0.webp", headers=served.viewer)
    assert r.status_code == 200 and store.has(sha)


def test_a_large_images_thumbnail_comes_from_its_pyramid(served: Served, mosaic: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    import visionloop.serving.projects_api.thumbnails as thumbnails

    def no_decoding(*args: object, **kwargs: object) -> None:
        raise AssertionError("a large image's thumbnail must not decode the whole image")

    monkeypatch.setattr(thumbnails, "decode", no_decoding)
    r = served.client.get(f"{API}/projects/cells/images/{served.big}/thumbnail?size=512", headers=served.viewer)
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    thumb = Image.open(io.BytesIO(r.content))
    assert thumb.size == (512, 384)
    expected = Image.open(mosaic).convert("RGB").resize((512, 384), Image.Resampling.BOX)
    assert np.abs(np.asarray(thumb, dtype=np.int16) - np.asarray(expected, dtype=np.int16)).mean() < 10


def test_a_thumbnail_builds_a_missing_pyramid_instead_of_decoding(served: Served,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    import visionloop.serving.projects_api.thumbnails as thumbnails

    def no_decoding(*args: object, **kwargs: object) -> None:
        raise AssertionError("a large image's thumbnail must not decode the whole image")

    monkeypatch.setattr(thumbnails, "decode", no_decoding)
    store = TileStore.of(served.project)
    sha = served.project.image(served.big).sha256
    store.remove(sha)
    r = served.client.get(f"{API}/projects/cells/images/{served.big}/thumbnail?size=128", headers=served.viewer)
    assert r.status_code == 200 and Image.open(io.BytesIO(r.content)).size == (128, 96)
    assert store.has(sha)
    monkeypatch.undo()
    small = served.client.get(f"{API}/projects/cells/images/{served.small}/thumbnail?size=64", headers=served.viewer)
    assert Image.open(io.BytesIO(small.content)).size == (64, 48)  # a small image: decoded as before
