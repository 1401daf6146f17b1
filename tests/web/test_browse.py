"""The images page: the grid, filters with the count of matches, selecting many and acting on them.

The tests of one module share one server and run in order: the last one deletes images.
"""

from __future__ import annotations

from playwright.sync_api import expect

from tests.web.conftest import BCCD_IMAGES, PROJECT, USER_PASSWORD, sign_in
from visionloop.serving.projects_api.image_queries import image_head, image_page


def project_of(served):
    return served.server.app.state.projects.get(served.name)


def images_with_class(served, name: str) -> list[int]:
    """Ids of the images whose head annotation has a box of class ``name`` (read from the database)."""
    project = project_of(served)
    class_id = next(c["id"] for c in project.ontology().to_json() if c["name"] == name)
    items, _ = image_page(project, limit=1000)
    return [i.id for i in items if class_id in (image_head(project, i.id).payload or {}).get("class_id", [])]


def open_browse(page, served, query: str = ""):
    page.goto(f"{served.url}/#/p/{PROJECT}/images{query}")
    page.wait_for_selector("#thumb-grid .thumb")


def count_text(page) -> str:
    return page.locator("#match-count").inner_text()


def test_grid_shows_every_image_with_lazy_thumbnails(page, served, shot):
    open_browse(page, served)
    page.locator("#match-count", has_text=f"{BCCD_IMAGES} images").wait_for()
    thumbs = page.locator("#thumb-grid .thumb")
    page.wait_for_function(f"() => document.querySelectorAll('#thumb-grid .thumb').length === {BCCD_IMAGES}")
    img = thumbs.first.locator("img")
    assert img.get_attribute("loading") == "lazy"
    # the thumbnail is fetched with the session cookie (no bearer on an <img>) and decodes
    page.wait_for_function("() => { const i = document.querySelector('#thumb-grid img'); "
                           "return i.complete && i.naturalWidth > 0; }")
    shot(page, "browse")


def test_filters_narrow_the_grid_and_the_count(page, served, shot):
    wbc = images_with_class(served, "WBC")
    assert 0 < len(wbc) <= BCCD_IMAGES
    open_browse(page, served)
    page.select_option("#filter-class", "WBC")
    page.locator("#match-count", has_text=f"{len(wbc)} image").wait_for()
    assert "match" in count_text(page)
    page.wait_for_function(f"() => document.querySelectorAll('#thumb-grid .thumb').length === {len(wbc)}")
    ids = [int(x) for x in page.locator("#thumb-grid .thumb").evaluate_all("els => els.map(e => e.dataset.id)")]
    assert sorted(ids) == sorted(wbc)
    assert "class=WBC" in page.url  # the filters live in the address, so a reload keeps them
    page.reload()
    page.wait_for_selector("#thumb-grid .thumb")
    assert page.locator("#filter-class").input_value() == "WBC"

    stem = image_head(project_of(served), wbc[0], with_payload=False).name.rsplit("/", 1)[-1].split(".")[0]
    page.fill("#filter-q", stem.lower())  # with the class filter still on; any case
    page.locator("#match-count", has_text="1 image match").wait_for()
    assert page.locator("#thumb-grid .thumb").get_attribute("data-id") == str(wbc[0])
    page.click("#clear-filters")
    page.locator("#match-count", has_text=f"{BCCD_IMAGES} images").wait_for()
    page.fill("#filter-q", "BloodImage_00001")
    page.locator("#match-count", has_text="1 image match").wait_for()

    page.click("#clear-filters")
    page.select_option("#filter-annotated", "false")
    page.locator(".empty", has_text="No image matches these filters").wait_for()
    assert count_text(page) == "0 images match"
    shot(page, "browse-no-match")

    page.click("#clear-filters")
    page.fill("#filter-annotator", "import")  # the importer is the author of every imported annotation
    page.locator("#match-count", has_text=f"{BCCD_IMAGES} images match").wait_for()
    page.fill("#filter-annotator", "nobody")
    page.locator("#match-count", has_text="0 images match").wait_for()


def test_clicking_an_image_opens_the_editor_with_the_filters(page, served):
    open_browse(page, served, "?class=RBC")
    first = page.locator("#thumb-grid .thumb").first
    image_id = first.get_attribute("data-id")
    first.locator(".thumb-img").click()
    page.wait_for_url(f"**/#/p/{PROJECT}/annotate/{image_id}?class=RBC")


def test_select_with_click_and_shift_click_then_assign_a_split(page, served, shot):
    open_browse(page, served)
    thumbs = page.locator("#thumb-grid .thumb")
    thumbs.nth(1).hover()
    thumbs.nth(1).locator(".thumb-check").click()
    thumbs.nth(4).click(modifiers=["Shift"])
    page.locator("#selected-count", has_text="4 selected").wait_for()
    selected = [int(thumbs.nth(i).get_attribute("data-id")) for i in range(1, 5)]
    # while selecting, a click on an image toggles it instead of opening the editor
    thumbs.nth(6).click()
    page.locator("#selected-count", has_text="5 selected").wait_for()
    thumbs.nth(6).click()
    page.locator("#selected-count", has_text="4 selected").wait_for()
    assert "/annotate/" not in page.url
    shot(page, "browse-selected")
    # the keyboard selects too: Space on a focused image
    thumbs.nth(7).focus()
    page.keyboard.press("Space")
    page.locator("#selected-count", has_text="5 selected").wait_for()
    page.keyboard.press("Space")
    page.locator("#selected-count", has_text="4 selected").wait_for()
    page.select_option("#bulk-split", "val")
    page.locator(".toast", has_text="4 images go to validation").wait_for()
    project = project_of(served)
    assert [image_head(project, i, with_payload=False).meta.get("split_hint") for i in selected] == ["val"] * 4
    assert page.locator("#thumb-grid .thumb.selected").count() == 0  # the selection is cleared after acting


def test_send_to_review_and_filter_by_review_state(page, served):
    open_browse(page, served)
    thumbs = page.locator("#thumb-grid .thumb")
    target = thumbs.nth(2).get_attribute("data-id")
    thumbs.nth(2).hover()
    thumbs.nth(2).locator(".thumb-check").click()
    page.click("#bulk-review")
    page.locator(".toast", has_text="1 image sent to review").wait_for()
    page.locator(f".thumb[data-id='{target}'] .badge", has_text="Waiting for review").wait_for()
    page.select_option("#filter-review", "submitted")
    page.locator("#match-count", has_text="1 image match").wait_for()


def test_select_all_matching_counts_every_match_and_acts_on_them(page, served):
    from visionloop.storage.review import current_reviews

    open_browse(page, served)
    page.click("#select-all")
    page.locator("#selected-count", has_text=f"{BCCD_IMAGES} selected").wait_for()
    page.locator("#thumb-grid .thumb").first.click()  # one left out
    page.locator("#selected-count", has_text=f"{BCCD_IMAGES - 1} selected").wait_for()
    page.keyboard.press("Escape")
    assert page.locator("#selected-count").count() == 0

    wbc = images_with_class(served, "WBC")
    page.select_option("#filter-class", "WBC")
    page.locator("#match-count", has_text=f"{len(wbc)} image").wait_for()
    page.click("#select-all")
    page.click("#bulk-review")
    page.locator(".toast", has_text="sent to review").wait_for()
    states = current_reviews(project_of(served), wbc)
    assert sorted(states) == sorted(wbc) and {e.state for e in states.values()} == {"submitted"}


def test_an_annotator_cannot_act_on_a_selection_a_reviewer_only_reviews(new_page, served):
    served.add_user("ann", "annotator")
    served.add_user("rita", "reviewer")
    for user, visible in (("ann", set()), ("rita", {"#bulk-review"})):
        page = new_page()
        sign_in(page, served.url, user, USER_PASSWORD)
        open_browse(page, served)
        page.locator("#thumb-grid .thumb").first.hover()
        page.locator("#thumb-grid .thumb .thumb-check").first.click()
        page.locator("#selected-count", has_text="1 selected").wait_for()
        for button in ("#bulk-review", "#bulk-split", "#bulk-delete"):
            assert page.locator(button).count() == (button in visible), (user, button)


def test_delete_asks_first_then_deletes(page, served, shot):
    open_browse(page, served)
    page.locator("#match-count", has_text=f"{BCCD_IMAGES} images").wait_for()
    thumbs = page.locator("#thumb-grid .thumb")
    doomed = [int(thumbs.nth(i).get_attribute("data-id")) for i in (0, 1)]
    thumbs.nth(0).hover()
    thumbs.nth(0).locator(".thumb-check").click()
    thumbs.nth(1).click()
    page.click("#bulk-delete")
    dialog = page.locator(".modal")
    assert "Delete 2 images" in dialog.inner_text()
    shot(page, "browse-delete-confirm")
    dialog.locator("button", has_text="Cancel").click()
    expect(page.locator("#selected-count", has_text="2 selected")).to_be_visible()  # nothing happened
    assert len(image_page(project_of(served), limit=1000)[0]) == BCCD_IMAGES

    page.click("#bulk-delete")
    page.locator(".modal button.danger").click()
    page.locator(".toast", has_text="2 images deleted").wait_for()
    page.locator("#match-count", has_text=f"{BCCD_IMAGES - 2} images").wait_for()
    left = {i.id for i in image_page(project_of(served), limit=1000)[0]}
    assert len(left) == BCCD_IMAGES - 2 and not left & set(doomed)
    page.wait_for_function(f"() => document.querySelectorAll('#thumb-grid .thumb').length === {BCCD_IMAGES - 2}")
    assert not set(page.locator("#thumb-grid .thumb").evaluate_all("els => els.map(e => +e.dataset.id)")) & set(doomed)
