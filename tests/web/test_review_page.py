"""The review page in the browser: a reviewer works through the images annotators submitted (set up through the API
as the annotators' own clients would send them): rejects one with a reason, an issue tag and a box drawn on the image
(the stored rejection holds them, the box in image pixels, and the image is back first in its annotator's queue),
approves the next with A and two more from the grid's selection (the item events name the reviewer), and settles a
consensus image whose two answers disagree: both answers and the merge are shown; edited after the merge, the edited
annotation shows beside it, and M restores the merge and approves it: the image's annotation is the merge of the two
answers. The page works under the app's CSP, and an annotator is told it is for reviewers.

The tests run in file order on one server and one review queue.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import numpy as np
import pytest

from tests.web.api_client import admin_client
from tests.web.conftest import USER_PASSWORD, Served, csp_page, sign_in
from visionloop.core.annotations import annotation_from_payload
from visionloop.quality.consensus import merge_answers
from visionloop.quality.review_flow import IOU_THRESHOLD
from visionloop.storage.review import REJECT_TAGS

REVIEWER = "rita"
ANNOTATORS = ("ann", "bob")
NORMAL = [1, 2, 4, 5]  # ann's batch, submitted in this order
CONSENSUS = 3  # answered by both, disagreeing


@contextmanager
def user_client(url: str, user: str) -> Iterator[httpx.Client]:
    """``httpx.Client`` on the API signed in as ``user`` (password ``USER_PASSWORD``)."""
    with httpx.Client(base_url=f"{url}/api/v1", timeout=60) as client:
        answer = client.post("/auth/token", data={"username": user, "password": USER_PASSWORD})
        client.headers["Authorization"] = f"Bearer {answer.raise_for_status().json()['access_token']}"
        yield client


def submit_next(client: httpx.Client, project: str, change=None) -> dict:  # noqa: ANN001
    """The annotator's next item, submitted with its annotation (changed by ``change``); returns the item."""
    item = client.get(f"/projects/{project}/work/next").raise_for_status().json()["item"]
    assert item is not None, "the annotator's queue is empty"
    annotation = change(item) if change else item["annotation"]
    client.post(f"/projects/{project}/work/{item['item']}/submit",
                json={"annotation": annotation, "base_revision": item["base_revision"]}).raise_for_status()
    return item


@pytest.fixture(scope="module")
def setup(served: Served) -> Iterator[dict]:
    """ann submits NORMAL (ann's work), then ann and bob answer image CONSENSUS independently: ann keeps every box of
    the imported annotation, bob half of them a little lower, so their agreement is low and the image goes to review. Returns the items and the two answers."""
    for name in ANNOTATORS:
        served.add_user(name, "annotator")
    served.add_user(REVIEWER, "reviewer")
    p = served.name
    with admin_client(served.url) as admin:
        detail = admin.get(f"/projects/{p}/images/{CONSENSUS}").raise_for_status().json()
        truth, height = detail["annotation"], detail["height"]
        first_class = min(c["id"] for c in admin.get(f"/projects/{p}/classes").raise_for_status().json())
        admin.post(f"/projects/{p}/work/batches", json={"name": "week-1", "annotators": ["ann"],
                                                         "image_ids": NORMAL}).raise_for_status()
        with user_client(served.url, "ann") as ann, user_client(served.url, "bob") as bob:
            items = {}
            for _ in NORMAL:
                item = submit_next(ann, p)
                items[item["image"]["id"]] = item["item"]
            admin.post(f"/projects/{p}/work/batches", json={
                "name": "consensus-1", "annotators": list(ANNOTATORS), "image_ids": [CONSENSUS], "mode": "consensus",
                "k": 2}).raise_for_status()
            n = len(truth["xyxy"]) // 2  # bob: half the boxes, drawn 6 px lower, the first one with the first class
            bobs = {"type": "boxes", "xyxy": [[x1, y1 + 6, x2, min(y2 + 6, height)] for x1, y1, x2, y2 in truth["xyxy"][:n]],
                    "class_id": [first_class, *truth["class_id"][1:n]]}
            answers = {"ann": submit_next(ann, p, lambda it: truth), "bob": submit_next(bob, p, lambda it: bobs)}
        queue = admin.get(f"/projects/{p}/work/review").raise_for_status().json()
    assert [i["image_id"] for i in queue["items"]] == [*NORMAL, CONSENSUS]
    assert queue["items"][-1]["consensus"] and queue["items"][-1]["agreement"] < 0.8
    yield {"items": items, "answers": {"ann": truth, "bob": bobs}, "consensus_items": answers}


@pytest.fixture
def reviewer(new_page, served: Served):  # noqa: ANN001, ANN201
    page = new_page()
    sign_in(page, served.url, REVIEWER, USER_PASSWORD)
    page.goto(f"{served.url}/#/p/{served.name}/review")
    page.wait_for_selector("#review-stage canvas.review-canvas")
    return page


def image(served: Served, image_id: int) -> dict:
    with admin_client(served.url) as admin:
        return admin.get(f"/projects/{served.name}/images/{image_id}").raise_for_status().json()


def to_screen(page, x: float, y: float) -> tuple[float, float]:  # noqa: ANN001
    """Where image pixel (x, y) is on the screen (the canvas holds the image's pixels, scaled by CSS)."""
    return tuple(page.evaluate("""([x, y]) => {
        const c = document.querySelector('#review-stage canvas.review-canvas');
        const r = c.getBoundingClientRect();
        return [r.left + x * r.width / c.width, r.top + y * r.height / c.height];
    }""", [x, y]))


def test_the_page_works_under_the_csp(browser, served: Served, setup: dict) -> None:  # noqa: ANN001
    """The other tests bypass the app's Content-Security-Policy for their own predicates: here nothing is blocked."""
    with csp_page(browser, served.url, REVIEWER, USER_PASSWORD) as page:
        page.goto(f"{served.url}/#/p/{served.name}/review")
        page.wait_for_selector("#review-stage canvas.review-canvas")
        page.wait_for_selector("#review-grid .thumb img")
        page.keyboard.press("r")
        page.wait_for_selector("#review-reason")
        page.keyboard.press("Escape")


def test_reject_with_a_reason_a_tag_and_a_box_drawn_on_the_image(reviewer, served: Served, setup: dict,
                                                                   shot) -> None:  # noqa: ANN001
    page = reviewer
    first = image(served, NORMAL[0])
    assert page.locator("#review-name").inner_text() == first["name"]
    assert "ann" in page.locator("#review-annotators").inner_text()
    assert "5 images waiting for review" in page.locator("#review-count").inner_text()
    page.keyboard.press("?")  # every key is listed
    keys = page.locator("[data-testid=review-keys]").inner_text()
    assert "Approve" in keys and "Reject" in keys and "Next image" in keys and "Toggle an issue tag" in keys
    page.keyboard.press("Escape")

    page.keyboard.press("r")
    page.locator("#review-reason").wait_for()
    assert page.locator("#review-tags [data-tag]").evaluate_all("(ls) => ls.map((l) => l.dataset.tag)") \
        == list(REJECT_TAGS)  # the page's tags are the server's, in its order
    page.keyboard.type("The white cell's box cuts its left side")
    page.keyboard.press("Alt+3")  # loose box, while typing
    box = [100.0, 80.0, 260.0, 200.0]  # image pixels
    page.mouse.move(*to_screen(page, box[0], box[1]))
    page.mouse.down()
    page.mouse.move(*to_screen(page, 180, 140), steps=3)
    page.mouse.move(*to_screen(page, box[2], box[3]), steps=3)
    page.mouse.up()
    page.locator("#review-where").get_by_text("a box").wait_for()
    page.keyboard.press("2")  # the canvas has the focus now: a plain digit toggles wrong class
    assert page.locator(".review-tag.on").evaluate_all("(ls) => ls.map((l) => l.dataset.tag)") \
        == ["wrong_class", "loose_box"]
    page.keyboard.press("2")  # and again off
    shot(page, "review-reject")
    page.keyboard.press("Control+Enter")
    page.wait_for_function(f"document.querySelector('#review-name')?.textContent !== {first['name']!r}")

    stored = image(served, NORMAL[0])
    assert stored["review_state"] == "rejected"
    review = stored["review"]
    assert review["reason"] == "The white cell's box cuts its left side" and review["tags"] == ["loose_box"]
    assert review["author"] == REVIEWER
    assert np.allclose(review["comment"]["box"], box, atol=2.0), review["comment"]  # image pixels
    with user_client(served.url, "ann") as ann:  # back first in the annotator's queue, with the comment
        item = ann.get(f"/projects/{served.name}/work/next").raise_for_status().json()["item"]
    assert item["image"]["id"] == NORMAL[0] and item["state"] == "rejected"
    assert item["review"]["comment"] == review["comment"]


def test_approve_with_a_and_several_from_the_grid(reviewer, served: Served, setup: dict, shot) -> None:  # noqa: ANN001
    page = reviewer
    assert page.locator("#review-name").inner_text() == image(served, NORMAL[1])["name"]
    page.keyboard.press("a")
    page.wait_for_function(f"document.querySelector('#review-name')?.textContent === {image(served, NORMAL[2])['name']!r}")
    assert image(served, NORMAL[1])["review_state"] == "approved"
    with admin_client(served.url) as admin:
        events = admin.get(f"/projects/{served.name}/work/{setup['items'][NORMAL[1]]}/events").raise_for_status().json()
    assert [e["state"] for e in events] == ["todo", "submitted", "approved"]
    assert events[-1]["author"] == REVIEWER and events[1]["author"] == "ann"

    page.keyboard.press("x")  # the current one (NORMAL[2]) ...
    page.locator(f"#review-grid [data-id='{NORMAL[3]}'] .thumb-check").click()  # ... and one from the grid
    page.locator("#review-selection").get_by_text("2 images selected").wait_for()
    shot(page, "review-selection")
    page.keyboard.press("Shift+A")
    page.wait_for_function(f"!document.querySelector(\"#review-grid [data-id='{NORMAL[3]}']\")")
    assert [image(served, i)["review_state"] for i in NORMAL[2:]] == ["approved", "approved"]
    assert page.locator("#review-grid [data-id]").count() == 1  # the consensus image is left


def test_consensus_answers_beside_the_merge_and_accepting_it(reviewer, served: Served, setup: dict,
                                                             shot) -> None:  # noqa: ANN001
    page = reviewer
    assert page.locator("#review-name").inner_text() == image(served, CONSENSUS)["name"]
    answers = page.locator("#review-answers .review-answer")
    answers.nth(2).wait_for()
    texts = answers.all_inner_texts()
    assert texts[0].startswith("ann") and texts[1].startswith("bob") and "Merged (weighted box fusion)" in texts[2]
    assert "agrees" in texts[0] and "with the merge" in texts[1]
    answers.nth(1).click()  # bob's answer large, then the merge again
    page.wait_for_function("document.querySelector('.review-answer.shown')?.dataset.answer.startsWith('item-')")
    answers.nth(2).click()
    assert "Accept the merge" in page.locator("#review-approve").inner_text()
    assert page.locator("#review-edit").get_attribute("href") == f"#/p/{served.name}/annotate/{CONSENSUS}"
    page.evaluate("window.scrollTo(0, 0)")
    shot(page, "review-consensus")

    merged = image(served, CONSENSUS)  # the merge is the head; the reviewer edits it (as in the editor: one box less)
    edit = {**merged["annotation"], "xyxy": merged["annotation"]["xyxy"][1:],
            "class_id": merged["annotation"]["class_id"][1:]}
    with user_client(served.url, REVIEWER) as rita:
        rita.put(f"/projects/{served.name}/images/{CONSENSUS}/annotation",
                 json={"base_revision": merged["head_revision"], "payload": edit}).raise_for_status()
    page.reload()
    page.locator("#review-answers .review-answer").nth(3).wait_for()  # the answers, the merge and the edited one
    assert "Current annotation" in answers.nth(3).inner_text() and "Merged" in answers.nth(2).inner_text()
    assert "Approve the edited annotation" in page.locator("#review-approve").inner_text()
    page.evaluate("window.scrollTo(0, 0)")
    shot(page, "review-consensus-edited")
    page.keyboard.press("m")  # restore the merge and approve it
    page.get_by_text("Nothing to review").wait_for()

    after = image(served, CONSENSUS)
    assert after["review_state"] == "approved" and after["review"]["author"] == REVIEWER
    assert after["head_revision"] == merged["head_revision"] + 2 and after["annotation"] == merged["annotation"]
    size = (after["height"], after["width"])
    expected = merge_answers([annotation_from_payload(setup["answers"][a]) for a in ANNOTATORS],
                             iou_threshold=IOU_THRESHOLD, size=size).annotation
    head = annotation_from_payload(after["annotation"])
    assert np.allclose(head.xyxy, expected.xyxy, atol=0.01) and list(head.class_id) == list(expected.class_id)
    for name in ANNOTATORS:  # the merge is neither answer as it stands
        answer = annotation_from_payload(setup["answers"][name])
        assert head.xyxy.shape != answer.xyxy.shape or not np.allclose(head.xyxy, answer.xyxy, atol=0.5), name


def test_an_annotator_is_told_the_page_is_for_reviewers(new_page, served: Served, setup: dict) -> None:  # noqa: ANN001
    page = new_page()
    sign_in(page, served.url, "bob", USER_PASSWORD)
    page.goto(f"{served.url}/#/p/{served.name}/review")
    page.get_by_text("Reviewers only").wait_for()
    assert page.locator("#review-stage").count() == 0  # nothing of the queue is shown
