"""The images page with thousands of images: pages come as the grid is scrolled, and the page holds only the
cards near the screen (the grid is windowed), however far one scrolls."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.web.conftest import BCCD_IMAGES, PROJECT, Served, make_bccd_project, serve, sign_in
from visionloop.storage import Project
from visionloop.storage.project import NewImage

FRAMES = 3000
MAX_CARDS = 300
"""Far fewer cards than images: the rows on screen and a few around them."""


@pytest.fixture(scope="module")
def many(bccd_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """The BCCD project plus FRAMES frames of one video (a still scene: the frames share the images' files)."""
    folder = tmp_path_factory.mktemp("many")
    path = make_bccd_project(bccd_dir, folder)
    with Project.open(path) as p:
        stills = p.images()
        p.add_images([NewImage(sha256=s.sha256, width=s.width, height=s.height, format=s.format,
                               name=f"video/frame_{i:05d}.jpg", video_id="scene", frame_index=i)
                      for i, s in ((i, stills[i % len(stills)]) for i in range(FRAMES))])
    with serve([path], projects_dir=folder) as server:
        yield Served(url=server.url, path=path, name=PROJECT, projects_dir=folder, server=server)


def test_scrolling_to_the_end_keeps_few_cards_in_the_page(new_page, many: Served, shot) -> None:
    total = BCCD_IMAGES + FRAMES
    page = new_page()
    sign_in(page, many.url)
    page.goto(f"{many.url}/#/p/{PROJECT}/images")
    page.locator("#match-count", has_text=f"{total:,} images").wait_for()
    most = 0
    for _ in range(200):
        page.evaluate("window.scrollTo(0, document.documentElement.scrollHeight)")
        page.wait_for_timeout(150)
        cards = page.locator("#thumb-grid .thumb").count()
        most = max(most, cards)
        if page.locator(".grid-foot", has_text=f"All {total:,} images shown").count():
            break
    assert page.locator(".grid-foot", has_text=f"All {total:,} images shown").count() == 1
    assert 0 < most <= MAX_CARDS, most
    page.evaluate("window.scrollTo(0, document.documentElement.scrollHeight)")
    page.locator("#thumb-grid .thumb .thumb-name", has_text=f"frame_{FRAMES - 1:05d}").wait_for()
    assert page.locator("#thumb-grid .thumb").count() <= MAX_CARDS
    shot(page, "browse-many-end")
    # back to the top: the first images are there again
    page.evaluate("window.scrollTo(0, 0)")
    page.locator("#thumb-grid .thumb .thumb-name", has_text="BloodImage_00000").wait_for()


def test_back_from_the_editor_returns_to_the_same_place(new_page, many: Served) -> None:
    page = new_page()
    sign_in(page, many.url)
    page.goto(f"{many.url}/#/p/{PROJECT}/images")
    page.wait_for_selector("#thumb-grid .thumb")
    target = "frame_01500"
    for _ in range(100):  # scroll down until that frame is on screen
        if page.locator("#thumb-grid .thumb .thumb-name", has_text=target).count():
            break
        page.mouse.wheel(0, 1500)
        page.wait_for_timeout(100)
    card = page.locator("#thumb-grid .thumb", has=page.locator(".thumb-name", has_text=target))
    card.scroll_into_view_if_needed()
    image_id = card.get_attribute("data-id")
    card.locator(".thumb-img").click()
    page.wait_for_url(f"**/#/p/{PROJECT}/annotate/{image_id}")
    page.go_back()
    back = page.locator(f"#thumb-grid .thumb[data-id='{image_id}']")
    back.wait_for()
    box = back.bounding_box()
    assert box is not None and 0 <= box["y"] < page.viewport_size["height"], box
