"""Finding what is wrong in the data, in the browser: label-error candidates fixed with one click (the annotation
changes) or dismissed with a key; duplicate groups kept-one-deleted-the-others or set aside; outliers; "more like
this" from the browse page's selection and the editor. Candidates and embeddings are stored through the storage
modules (the finder, the embed job and their algorithms have their own tests), so nothing here trains or embeds."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from playwright.sync_api import expect

from tests.web.api_client import admin_client
from tests.web.conftest import csp_page
from visionloop.storage import NewImage
from visionloop.storage.embeddings import EmbeddingRows, EmbeddingSet
from visionloop.storage.label_issues import NewLabelIssue, save_label_issue_run

BACKBONE = "tf_efficientnet_lite0"


@dataclass
class Planted:
    ids: list[int]
    """The project's BCCD images, by id."""
    copies: dict[int, int]
    """original id -> its byte-identical copy (a video frame with the same bytes: a project keeps a still image once)."""
    like: tuple[int, int]
    """(an image, the image most like it)."""
    odd: int
    """The outlier."""


@pytest.fixture(scope="module")
def planted(served) -> Planted:
    project = served.server.app.state.projects.get(served.name)
    ids = sorted(im.id for im in project.images())
    copies = {}
    for n, original in enumerate(ids[:2]):
        im = project.image(original)
        copy = NewImage(sha256=im.sha256, width=im.width, height=im.height, format=im.format,
                        name=f"copies/{im.name.rsplit('/', 1)[-1]}", video_id=f"copy-{n}", frame_index=0)
        copies[original] = project.add_images([copy])[0][0]
    everything = ids + list(copies.values())
    rng = np.random.default_rng(0)
    vectors = np.eye(32, dtype=np.float32)[0] + 0.15 * rng.standard_normal((len(everything), 32)).astype(np.float32)
    like = (ids[4], ids[5])
    vectors[everything.index(like[1])] = vectors[everything.index(like[0])] + 0.02
    odd = ids[7]
    vectors[everything.index(odd)] = np.eye(32, dtype=np.float32)[9]
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    store = EmbeddingSet(project.root, BACKBONE, "images")
    store.start(backbone={"name": BACKBONE}, preprocess={}, dim=32, replace=True)
    store.append(vectors, EmbeddingRows.images(everything))

    heads = project.heads(ids[2:4])
    classes = {c.name: c.id for c in project.ontology().classes}
    first = heads[ids[2]][1]
    given = int(first.class_id[0])
    suggested = classes["WBC"] if given != classes["WBC"] else classes["RBC"]
    box = [float(v) for v in heads[ids[3]][1].xyxy[0]]
    save_label_issue_run(project, [
        NewLabelIssue(image_id=ids[2], kind="wrong_class", score=0.97, given_class_id=given,
                      suggested_class_id=suggested, box_index=0, revision_id=heads[ids[2]][0]),
        NewLabelIssue(image_id=ids[3], kind="loose_box", score=0.71, given_class_id=int(heads[ids[3]][1].class_id[0]),
                      suggested_class_id=int(heads[ids[3]][1].class_id[0]), box_index=0,
                      box=[box[0] + 4, box[1] + 4, box[2] - 4, box[3] - 4], revision_id=heads[ids[3]][0]),
    ], created_by="cli", method="prune_by_noise_rate", summary={"examples": 480})
    return Planted(ids, copies, like, odd)


def head_of(served, image_id: int) -> dict:
    with admin_client(served.url) as client:
        return client.get(f"/projects/{served.name}/images/{image_id}").raise_for_status().json()


def test_fix_one_label_error_with_a_click_and_dismiss_another_with_a_key(page, served, planted, shot) -> None:
    before = head_of(served, planted.ids[2])
    page.goto(f"{served.url}/#/p/{served.name}/health/label-errors")
    cards = page.locator(".le-card")
    expect(cards).to_have_count(2)
    expect(page.locator("[data-tab=open] .di-count")).to_have_text("2")
    page.wait_for_function("() => document.querySelectorAll('canvas.le-crop').length === 2")
    page.wait_for_timeout(300)  # the crops are drawn once their images load
    shot(page, "label-errors")

    cards.nth(0).locator("[data-action=fix]").click()
    expect(cards.nth(0).locator("[data-testid=le-state]")).to_have_text("Fixed")
    after = head_of(served, planted.ids[2])
    assert after["head_revision"] == before["head_revision"] + 1
    assert after["annotation"]["class_id"][0] != before["annotation"]["class_id"][0]
    assert after["annotation"]["class_id"][1:] == before["annotation"]["class_id"][1:]
    with admin_client(served.url) as client:
        revisions = client.get(f"/projects/{served.name}/images/{planted.ids[2]}/revisions").json()
    assert revisions[-1]["author"] == "admin"

    expect(cards.nth(1)).to_have_class("le-card current")  # the next open candidate is current
    page.keyboard.press("d")
    expect(cards.nth(1).locator("[data-testid=le-state]")).to_have_text("Dismissed")
    assert head_of(served, planted.ids[3])["annotation"] == before_loose(served, planted)
    page.click("[data-tab=dismissed]")
    expect(cards).to_have_count(1)
    expect(page.locator("[data-tab=open] .di-count")).to_have_text("0")
    shot(page, "label-errors-dismissed")


def before_loose(served, planted) -> dict:
    """The loose box's image still has its first revision's annotation (a dismissal changes no annotation)."""
    with admin_client(served.url) as client:
        return client.get(f"/projects/{served.name}/images/{planted.ids[3]}/revisions").json()[0]["payload"]


def test_duplicates_keep_one_delete_the_others_and_not_duplicates(page, served, planted, shot) -> None:
    page.goto(f"{served.url}/#/p/{served.name}/health/duplicates")
    groups = page.locator(".dup-group")
    expect(groups).to_have_count(2)
    first, second = planted.ids[:2]
    pair = f"{first},{planted.copies[first]}"
    group = page.locator(f".dup-group[data-ids='{pair}']")
    expect(group.locator(".badge")).to_have_text("Exact duplicates")
    page.wait_for_function("() => [...document.querySelectorAll('.dup-group img')].every((i) => i.complete)")
    shot(page, "duplicates")

    group.locator("[data-action=not-duplicates]").click()
    expect(groups).to_have_count(1)
    with admin_client(served.url) as client:
        aside = client.get(f"/projects/{served.name}/dismissals", params={"kind": "duplicates"}).json()
    assert [d["image_ids"] for d in aside] == [[first, planted.copies[first]]]

    other = page.locator(f".dup-group[data-ids='{second},{planted.copies[second]}']")
    other.locator(f"[data-action=keep][data-id='{second}']").click()
    dialog = page.locator(".modal")
    expect(dialog).to_contain_text("Delete 1 image")
    dialog.locator("button.danger").click()
    page.locator(".toast", has_text="Deleted 1 image").wait_for()
    expect(page.locator(".dup-list .empty")).to_contain_text("No duplicates")
    with admin_client(served.url) as client:
        assert client.get(f"/projects/{served.name}/images/{planted.copies[second]}").status_code == 404
        assert client.get(f"/projects/{served.name}/images/{second}").status_code == 200
    page.reload()  # the set-aside group stays out of the list
    expect(page.locator(".dup-list .empty")).to_contain_text("No duplicates")


def test_outliers_list_the_odd_image_first_and_dismiss_it(page, served, planted, shot) -> None:
    page.goto(f"{served.url}/#/p/{served.name}/health/outliers")
    first = page.locator(".outlier").first
    expect(first).to_have_attribute("data-id", str(planted.odd))
    page.wait_for_function("() => [...document.querySelectorAll('.outlier img')].every((i) => i.complete)")
    shot(page, "outliers")
    page.keyboard.press("d")
    expect(page.locator(".outlier").first).not_to_have_attribute("data-id", str(planted.odd))
    page.reload()  # the dismissed image stays out of the list
    expect(page.locator("[data-testid=outlier-summary]")).to_contain_text("1 image dismissed")
    expect(page.locator(f".outlier[data-id='{planted.odd}']")).to_have_count(0)


def test_more_like_this_from_the_selection_and_the_editor(page, served, planted, shot) -> None:
    image, like = planted.like
    page.goto(f"{served.url}/#/p/{served.name}/images")
    card = page.locator(f"#thumb-grid .thumb[data-id='{image}']")
    card.hover()
    card.locator(".thumb-check").click()
    page.click("#bulk-similar")
    strip = page.locator(".modal [data-testid=similar-strip]")
    expect(strip.locator("a.similar-thumb").first).to_have_attribute("data-id", str(like))
    page.wait_for_function("() => [...document.querySelectorAll('.similar-thumb img')].every((i) => i.complete)")
    shot(page, "more-like-this")
    strip.locator("a.similar-thumb").first.click()
    page.wait_for_url(f"**/#/p/{served.name}/annotate/{like}")
    expect(page.locator(".modal")).to_have_count(0)

    page.locator("[data-testid=ed-more-like-this]").click()
    side = page.locator("[data-testid=ed-similar] a.similar-thumb")
    expect(side.first).to_have_attribute("data-id", str(image))
    page.wait_for_function("() => [...document.querySelectorAll('.ed-similar img')].slice(0, 4).every((i) => i.complete)")
    shot(page, "editor-more-like-this")


def test_the_pages_work_under_the_csp(browser, served, planted) -> None:
    """The other tests bypass the app's Content-Security-Policy for their predicates; here it holds."""
    with csp_page(browser, served.url) as page:
        base = f"{served.url}/#/p/{served.name}/health"
        for route, ready in (("/label-errors?state=", ".le-card canvas"), ("/duplicates", "[data-testid=dup-summary]"),
                             ("/outliers", ".outlier img")):
            page.goto(base + route)
            page.wait_for_selector(ready)
