"""Work assignment in the browser, on real BCCD images: an admin creates a batch on the Work page, the annotator
works through My queue in the editor's work mode (Shift+Enter submits and opens the next), a reviewer rejects with a
reason, tags and a box drawn on the image (through the API: the review page has its own tests), the annotator sees
the rejection and the box, fixes and resubmits, the reviewer approves; every state change is on record. And a
honeypot: a gold image marked on the Work page, a batch at honeypot rate 1.0, the annotator answers it like any
other image (it opens empty, never called gold), and the answer is scored against the gold.
"""

from __future__ import annotations

import httpx
import pytest

from tests.web.conftest import ADMIN_PASSWORD, USER_PASSWORD, Served, csp_page, sign_in
from tests.web.test_editor import drag, open_editor, payload, screen, token_of

API = "/api/v1"
TIMEOUT = 120.0


def call(served: Served, method: str, path: str, headers: dict[str, str], **kw: object) -> object:
    r = httpx.request(method, f"{served.url}{API}/projects/{served.name}/{path}", headers=headers, timeout=TIMEOUT,
                      **kw)
    assert r.is_success, r.text
    return r.json() if r.content else None


@pytest.fixture(scope="module")
def people(served: Served) -> dict[str, dict[str, str]]:
    served.add_user("ann", "annotator")
    served.add_user("rita", "reviewer")
    return {"admin": token_of(served.url), "ann": token_of(served.url, "ann", USER_PASSWORD),
            "rita": token_of(served.url, "rita", USER_PASSWORD)}


def visit(p, url: str, selector: str) -> None:  # noqa: ANN001
    """Open ``url`` (rendered anew when the page is there already) and wait for ``selector``."""
    if p.url == url:
        p.reload()  # the same hash again does not render anew
    else:
        p.goto(url)
    p.wait_for_selector(selector)


def open_work_page(page, served: Served) -> None:  # noqa: ANN001
    visit(page, f"{served.url}/#/p/{served.name}/work", "[data-testid=work-page]")


def create_batch(page, name: str, *, per_annotator: int, honeypot: float = 0.0) -> None:  # noqa: ANN001
    page.fill("#batch-name", name)
    page.select_option("#batch-annotated", "")  # every BCCD image is annotated already: take any
    page.fill("#batch-per-annotator", str(per_annotator))
    page.fill("#batch-honeypot", str(honeypot))
    page.click("#batch-create")
    page.wait_for_selector(f"tr.work-batch[data-batch='{name}']")


def annotator_page(new_page, served: Served):  # noqa: ANN001, ANN201
    p = new_page()
    p.set_default_timeout(60_000)
    sign_in(p, served.url, "ann", USER_PASSWORD)
    return p


def open_queue(p, served: Served) -> None:  # noqa: ANN001
    visit(p, f"{served.url}/#/p/{served.name}/queue", "[data-testid=queue-page]")


def wait_item(p, item: int | None = None) -> int:  # noqa: ANN001
    """Wait for the editor in work mode (on ``item`` when given); returns the item id."""
    want = f" && window.vlEditor.work.item.item === {item}" if item else ""
    p.wait_for_function(f"window.vlEditor && window.vlEditor.work && window.vlEditor.history{want}")
    p.wait_for_function("window.vlEditor.timings.rendered !== undefined")
    return p.evaluate("window.vlEditor.work.item.item")


def submit_and_wait(p, served: Served) -> None:  # noqa: ANN001
    """Shift+Enter, and wait until the editor shows another item or the queue."""
    before = p.evaluate("window.vlEditor.work.item.item")
    p.keyboard.press("Shift+Enter")
    p.wait_for_function(f"location.hash.endsWith('/queue') || (window.vlEditor && window.vlEditor.work "
                        f"&& window.vlEditor.work.item.item !== {before} && window.vlEditor.history)")


def test_assign_annotate_reject_fix_approve(page, new_page, served: Served, people, shot) -> None:
    admin, rita = people["admin"], people["rita"]
    open_work_page(page, served)
    create_batch(page, "week-1", per_annotator=2)
    row = page.locator("tr.work-batch[data-batch='week-1']")
    assert row.locator("td[data-state=todo]").inner_text() == "2"
    assert page.locator("tr.work-annotator[data-batch='week-1'][data-annotator=ann]").count() == 1
    shot(page, "work-page-batch")

    ann = annotator_page(new_page, served)
    open_queue(ann, served)
    assert ann.inner_text("[data-testid=queue-todo]") == "2"
    shot(ann, "queue-start")
    ann.click("[data-testid=queue-start]")
    first = wait_item(ann)
    image = ann.evaluate("window.vlEditor.id")
    n0 = len(payload(ann)["xyxy"])
    drag(ann, (20, 20), (90, 80))  # one more box
    assert len(payload(ann)["xyxy"]) == n0 + 1
    assert ann.evaluate("window.vlEditor.panel.statusEl.textContent") == "Not submitted yet"
    ann.reload()  # the edit is kept in this browser until it is submitted
    wait_item(ann, first)
    assert len(payload(ann)["xyxy"]) == n0 + 1
    submit_and_wait(ann, served)
    second = wait_item(ann)
    assert second != first
    # someone saves the second image meanwhile: submitting shows both versions, "Merge both" submits the union
    other = ann.evaluate("window.vlEditor.id")
    drag(ann, (300, 20), (360, 70))
    start = call(served, "GET", f"images/{other}", admin)
    theirs = {**start["annotation"], "xyxy": [*start["annotation"]["xyxy"], [400, 30, 470, 90]],
              "class_id": [*start["annotation"]["class_id"], start["annotation"]["class_id"][0]]}
    theirs.pop("attributes", None)
    saved = call(served, "PUT", f"images/{other}/annotation", admin,
                 json={"payload": theirs, "base_revision": start["head_revision"]})
    ann.keyboard.press("Shift+Enter")
    dialog = ann.locator(".ed-conflict-dialog")
    dialog.wait_for()
    assert "admin" in dialog.inner_text()
    ann.click("[data-choice=merge]")
    ann.wait_for_selector("[data-testid=queue-page]")
    merged = call(served, "GET", f"images/{other}", admin)
    assert merged["head_revision"] == saved["revision"] + 1 and [400, 30, 470, 90] in merged["annotation"]["xyxy"]
    assert any(b == pytest.approx([300, 20, 360, 70], abs=2) for b in merged["annotation"]["xyxy"])
    assert ann.inner_text("[data-testid=queue-submitted]") == "2" and ann.inner_text("[data-testid=queue-todo]") == "0"
    head = call(served, "GET", f"images/{image}", admin)
    assert len(head["annotation"]["xyxy"]) == n0 + 1 and head["review_state"] == "submitted"

    # the reviewer rejects it with a reason, tags and a box drawn on the image
    call(served, "POST", f"work/review/{image}/reject", rita, json={
        "reason": "the new box is loose", "tags": ["loose_box", "missing_object"], "comment": {"box": [10, 10, 110, 95]}})
    open_queue(ann, served)
    assert ann.inner_text("[data-testid=queue-rejected-list]").count("the new box is loose") == 1
    assert "Loose box" in ann.inner_text("[data-testid=queue-rejected-list]")
    shot(ann, "queue-rejected")
    ann.click(f"[data-testid=queue-rejected-list] tr[data-item='{first}'] a")
    wait_item(ann, first)
    assert "the new box is loose" in ann.inner_text("[data-testid=rejection]")
    comment = ann.evaluate("""() => {
        const layer = window.vlEditor.canvas.extraLayers.find((l) => l.get('name') === 'review-comment');
        return layer ? layer.getSource().getFeatures()[0].getGeometry().getExtent() : null;
    }""")
    h = head["height"]
    assert comment == pytest.approx([10, h - 95, 110, h - 10])  # the box, on the map's y-up pixels
    shot(ann, "editor-work-rejected")
    # fix: the loose box (the last one) is redrawn tighter
    ann.keyboard.press("Shift+Tab")  # select the last shape
    ann.keyboard.press("Delete")
    drag(ann, (25, 25), (85, 75))
    fixed = payload(ann)
    assert len(fixed["xyxy"]) == n0 + 1 and fixed["xyxy"][-1] == pytest.approx([25, 25, 85, 75], abs=2)
    submit_and_wait(ann, served)
    ann.wait_for_selector("[data-testid=queue-page]")
    assert ann.locator("[data-testid=queue-rejected-list]").count() == 0  # nothing left to fix

    call(served, "POST", "work/review/approve", rita, json={"ids": [image]})
    events = call(served, "GET", f"work/{first}/events", rita)
    assert [(e["state"], e["author"]) for e in events] == [
        ("todo", "admin"), ("submitted", "ann"), ("rejected", "rita"), ("submitted", "ann"), ("approved", "rita")]
    assert all(e["created_at"] for e in events)
    assert call(served, "GET", f"images/{image}", admin)["annotation"]["xyxy"][-1] == pytest.approx(
        [25, 25, 85, 75], abs=2)
    open_work_page(page, served)
    assert page.locator("tr.work-batch[data-batch='week-1'] td[data-state=approved]").inner_text() == "1"


def test_a_honeypot_is_answered_like_any_image_and_scored(page, new_page, served: Served, people, shot) -> None:
    admin, rita = people["admin"], people["rita"]
    gold_id = 12
    truth = call(served, "GET", f"images/{gold_id}", admin)
    open_work_page(page, served)
    page.fill("#gold-ids", str(gold_id))
    page.click("#gold-mark")
    page.wait_for_selector(f"[data-testid=gold-list] [data-image='{gold_id}']")
    create_batch(page, "week-2", per_annotator=1, honeypot=1.0)
    shot(page, "work-page-gold")

    ann = annotator_page(new_page, served)
    open_queue(ann, served)
    ann.click("[data-testid=queue-start]")
    wait_item(ann)
    assert ann.evaluate("window.vlEditor.id") == gold_id  # rate 1.0: the honeypot comes first
    assert payload(ann)["xyxy"] == []  # it opens empty: the gold is not shown
    seen = call(served, "GET", f"images/{gold_id}", people["ann"])
    assert seen["annotation"] is None and seen["annotated"] is False
    # the annotator draws two of the gold boxes (apart: a drag that starts on a box moves it)
    boxes = truth["annotation"]["xyxy"]
    a = boxes[0]
    b = next(x for x in boxes if x[0] > a[2] or x[2] < a[0] or x[1] > a[3] or x[3] < a[1])
    classes = sorted(c["id"] for c in call(served, "GET", "classes", admin))  # keys 1, 2, 3 in id order
    for box in (a, b):
        x1, y1, x2, y2 = box
        ann.keyboard.press("Escape")  # nothing selected: the class key picks the class of the next box
        ann.keyboard.press(str(classes.index(truth["annotation"]["class_id"][boxes.index(box)]) + 1))
        ann.keyboard.press("b")
        ann.mouse.move(*screen(ann, x1, y1))
        ann.mouse.down()
        ann.mouse.move(*screen(ann, x2, y2), steps=8)
        ann.mouse.up()
    assert len(payload(ann)["xyxy"]) == 2
    text = ann.inner_text("body").lower()
    ann.keyboard.press("?")
    ann.wait_for_selector(".ed-keys")
    text += ann.inner_text("body").lower()
    assert "shift+enter" in text
    ann.keyboard.press("Escape")
    shot(ann, "editor-work-honeypot")
    submit_and_wait(ann, served)
    wait_item(ann)
    assert ann.evaluate("window.vlEditor.id") != gold_id
    submit_and_wait(ann, served)
    ann.wait_for_selector("[data-testid=queue-page]")
    text += ann.inner_text("body").lower()
    ann.goto(f"{served.url}/#/p/{served.name}/images")
    ann.wait_for_selector(f".thumb[data-id='{gold_id}']")
    text += ann.inner_text("body").lower()
    for word in ("gold", "honeypot"):
        assert word not in text, text[max(0, text.find(word) - 200):text.find(word) + 50]

    scored = call(served, "GET", "annotators/ann/honeypots", rita)
    assert scored["total"] == 1 and scored["items"][0]["image_id"] == gold_id
    score = scored["items"][0]["score"]
    n = len(truth["annotation"]["xyxy"])
    assert score["matched"] == 2, score
    assert score["missed"] == n - 2 and score["extra"] == 0
    stats = {s["name"]: s for s in call(served, "GET", "annotators", rita)["items"]}
    assert stats["ann"]["honeypots"] == 1 and 0 < stats["ann"]["honeypot_score"] < 1
    after = call(served, "GET", f"images/{gold_id}", admin)
    assert after["head_revision"] == truth["head_revision"]  # the answer changed neither the image nor its gold
    assert call(served, "GET", "work/gold", rita)[0]["annotation"] == truth["annotation"]
    # an admin marks the image open in the editor as gold with Shift+G
    open_editor(page, served.url, served.name, 11)
    page.keyboard.press("Shift+G")
    page.wait_for_selector(".toast >> text=gold")
    assert 11 in [g["image_id"] for g in call(served, "GET", "work/gold", rita)]



def test_the_work_pages_run_under_the_csp(browser, served: Served, people) -> None:
    """The Work page, My queue and the editor's work mode under the server's Content-Security-Policy (the tests
    above bypass it for their own predicates): nothing is blocked, nothing throws."""
    call(served, "POST", "work/batches", people["admin"], json={"name": "csp", "annotators": ["ann"],
                                                                 "image_ids": [9]})
    for user, password, route, ready in (
            ("admin", ADMIN_PASSWORD, "work", "tr.work-batch[data-batch=csp]"),
            ("ann", USER_PASSWORD, "queue", "[data-testid=queue-start]:not([disabled])")):
        with csp_page(browser, served.url, user, password) as p:
            p.goto(f"{served.url}/#/p/{served.name}/{route}")
            p.wait_for_selector(ready)
            if route == "queue":
                p.click("[data-testid=queue-start]")
                p.wait_for_selector("[data-testid=submit-next]")
                p.wait_for_selector(".ol-viewport canvas")
