"""The dataset health page and the annotators page in Chromium, on the BCCD fixture project: the numbers on the page
are the API's and the database's, a histogram bar opens the browse page with the images behind it, and two annotators'
work (done through the work modules, as the queue and the review page do it) shows in the table, the charts, the
honeypot answers and the images they annotated."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import expect
from sqlalchemy import select, update

from tests.web.conftest import PROJECT, USER_PASSWORD, csp_page, sign_in
from visionloop.core.annotations import Boxes
from visionloop.quality.review_flow import submit_item
from visionloop.serving.projects_api.image_queries import count_images, resolve_filter
from visionloop.storage.annotator_stats import annotator_stats
from visionloop.storage.gold import mark_gold
from visionloop.storage.health import dataset_health
from visionloop.storage.label_issues import NewLabelIssue, save_label_issue_run
from visionloop.storage.models import AnnotationRow, ImageRow, RevisionRow
from visionloop.storage.work import approve_images, create_batch, next_item, reject_image, review_queue
from visionloop.storage.work_rows import AnswerRow

ANNOTATORS = ("alice", "bob")


def _project(served):
    return served.server.app.state.projects.get(served.name)  # the server's open project


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{math.floor(value * 100 + 0.5)}%"


@pytest.fixture(scope="module")
def activity(served) -> dict[str, object]:
    """alice and bob work through a batch with a honeypot (alice moves each box by a pixel, bob leaves one out),
    rita approves their images but one of bob's; their saves are then spread over two days, 70 s apart, as a
    working day's would be (the modules stamp them with the time of the test)."""
    p = _project(served)
    for name in ANNOTATORS:
        served.add_user(name, "annotator")
    served.add_user("rita", "reviewer")
    with p.engine.connect() as c:
        ids = list(c.execute(select(ImageRow.id).order_by(ImageRow.id)).scalars())
    mark_gold(p, ids[-1], author="admin")
    create_batch(p, name="first", annotators=list(ANNOTATORS), image_ids=ids[:6], per_annotator=3,
                 created_by="admin", honeypot_rate=1.0)
    for who in ANNOTATORS:
        while (item := next_item(p, who)) is not None:
            _, truth = p.head(item.image_id)
            keep = slice(None) if who == "alice" else slice(1, None)
            answer = Boxes(truth.xyxy[keep] + (1 if who == "alice" else 0), truth.class_id[keep])
            submit_item(p, item.id, annotator=who, annotation=answer, base_revision=item.base_revision)
    _, waiting = review_queue(p, limit=50)
    bobs = [w["image_id"] for w in waiting if w["annotators"] == ["bob"]]
    reject_image(p, bobs[0], author="rita", reason="a cell is missing", tags=["missing_object"])
    approve_images(p, [w["image_id"] for w in waiting if w["image_id"] != bobs[0]], author="rita")
    start = datetime.now(UTC).replace(hour=9, minute=0, second=0, microsecond=0) - timedelta(days=2)
    with p.transaction() as c:
        for who in ANNOTATORS:
            saves = [("r", r.id, r.created_at) for r in c.execute(select(RevisionRow.id, RevisionRow.created_at)
                                                                   .where(RevisionRow.author == who))]
            saves += [("a", a.id, a.created_at) for a in c.execute(select(AnswerRow.id, AnswerRow.created_at)
                                                                    .where(AnswerRow.annotator == who))]
            for n, (kind, row_id, _) in enumerate(sorted(saves, key=lambda s: s[2])):
                day = n % 2 if who == "alice" else n // 3  # alice two a day, bob three on the first
                at = start + timedelta(days=day, seconds=70 * n)
                table = RevisionRow if kind == "r" else AnswerRow
                c.execute(update(table).where(table.id == row_id).values(created_at=at))
    stats = {s.name: s for s in annotator_stats(p)}
    assert all(stats[w].images and stats[w].hours for w in ANNOTATORS), stats
    assert stats["bob"].rejected == 1 and stats["alice"].acceptance_rate == 1.0
    assert stats["alice"].honeypots == stats["bob"].honeypots == 1  # the one gold image, first in each queue
    assert stats["alice"].honeypot_score > stats["bob"].honeypot_score  # bob left a cell out
    return {"stats": stats, "ids": ids}


def test_health_page_numbers_and_a_histogram_bar_opens_its_images(page, served, shot):
    p = _project(served)
    classes = p.class_ids(["RBC", "WBC"])
    save_label_issue_run(p, [NewLabelIssue(image_id=i, kind="wrong_class", score=0.9 - i / 100, box_index=0,
                                           given_class_id=classes["RBC"], suggested_class_id=classes["WBC"])
                             for i in (2, 5, 7)], created_by="admin", method="prune_by_noise_rate")
    health = dataset_health(p)
    page.goto(f"{served.url}/#/p/{PROJECT}/health")
    page.wait_for_selector("[data-testid=class-bars]")
    assert page.locator("[data-testid=health-images]").inner_text() == str(health.images)
    assert page.locator("[data-testid=health-boxes]").inner_text() == str(health.boxes)
    bars = page.locator("[data-testid=class-bars] .hbar")
    assert bars.count() == 3  # BCCD: RBC, WBC, Platelets, most objects first
    assert [bars.nth(i).get_attribute("data-name") for i in range(3)] == [c["name"] for c in health.classes]
    assert [int(bars.nth(i).get_attribute("data-value")) for i in range(3)] == [c["objects"] for c in health.classes]
    assert sum(c["objects"] for c in health.classes) == p.stats()["annotations"]
    sizes = page.locator("[data-testid=health-box-sizes-bins] .histo-bin")
    assert [int(sizes.nth(i).get_attribute("data-value")) for i in range(sizes.count())] == [
        b["count"] for b in health.box_sizes]
    aspects = page.locator("[data-testid=health-box-aspects-bins] .histo-bin")
    assert sum(int(aspects.nth(i).get_attribute("data-value")) for i in range(aspects.count())) == health.boxes
    reviews = page.locator("[data-testid=review-bars] .hbar")
    assert int(reviews.first.get_attribute("data-value")) == health.reviews["todo"]
    assert page.locator("[data-testid=health-label-errors]").inner_text() == "3"
    top = page.locator("[data-testid=label-error-top] li")
    assert top.count() == 3 and "wrong class: RBC → WBC" in top.first.inner_text()
    expect(page.locator("[data-testid=label-errors-link]")).to_have_attribute("href", f"#/p/{PROJECT}/health/label-errors")
    expect(page.locator("[data-testid=no-embeddings] #start-embed")).to_be_visible()  # the admin may start it
    shot(page, "health")

    # a size bin that some images have a box in and others not: its link opens exactly those images
    per_bin = [(i, b, count_images(p, resolve_filter(p, box_min=b["min"] or None, box_max=b["max"])))
               for i, b in enumerate(health.box_sizes) if b["count"]]
    index, chosen, expected = next((i, b, n) for i, b, n in per_bin if 0 < n < health.images)
    page.locator("[data-testid=health-box-sizes-bins] .histo-bin").nth(index).click()
    page.wait_for_selector("[data-testid=browse-page]")
    page.locator("#match-count", has_text=f"{expected} image").wait_for()
    assert f"box_min={chosen['min']}" in page.url
    expect(page.locator("[data-testid=filter-boxes]")).to_contain_text("Box size")
    assert page.locator("#thumb-grid .thumb").count() == expected
    shot(page, "health-bin-images")
    page.click("[data-testid=filter-boxes] button")  # the chip's x clears the bin
    page.locator("#match-count", has_text=f"{health.images} images").wait_for()


def test_health_page_for_a_viewer_has_no_admin_button(new_page, served):
    served.add_user("vera", "viewer")
    page = new_page()
    sign_in(page, served.url, "vera", USER_PASSWORD)
    page.goto(f"{served.url}/#/p/{PROJECT}/health")
    page.wait_for_selector("[data-testid=no-embeddings]")
    assert page.locator("#start-embed").count() == 0
    page.keyboard.press("l")  # a key per page behind the health page
    page.wait_for_url(f"**/#/p/{PROJECT}/health/label-errors")


def test_annotators_page_shows_the_numbers_charts_and_honeypots(page, served, activity, shot):
    stats = activity["stats"]
    page.goto(f"{served.url}/#/p/{PROJECT}/annotators")
    page.wait_for_selector("[data-testid=annotators-table]")
    for who in ANNOTATORS:
        s = stats[who]
        row = page.locator(f'[data-testid=annotators-table] tr[data-name="{who}"]')
        assert row.locator("[data-col=images]").inner_text() == str(s.images)
        assert row.locator("[data-col=objects]").inner_text() == str(s.objects)
        assert row.locator("[data-col=acceptance]").inner_text() == _pct(s.acceptance_rate)
        assert row.locator("[data-col=honeypot]").inner_text().startswith(_pct(s.honeypot_score))
        bar = page.locator(f'[data-testid=chart-images-per-hour] .hbar[data-name="{who}"]')
        assert float(bar.get_attribute("data-value")) == pytest.approx(s.images_per_hour)
        accept = page.locator(f'[data-testid=chart-acceptance] .hbar[data-name="{who}"]')
        assert float(accept.get_attribute("data-value")) == pytest.approx(s.acceptance_rate)
    assert page.locator("[data-testid=trend-chart] .uplot").count() == 1
    legend = page.locator("[data-testid=trend-chart] .u-legend").inner_text()
    assert all(who in legend for who in ANNOTATORS) and "rita" not in legend  # a line per person who worked
    assert page.locator('[data-testid=chart-acceptance] .hbar[data-name="rita"]').count() == 0
    shot(page, "annotators")
    page.select_option("#trend-unit", "week")
    page.wait_for_selector("[data-testid=trend-chart] .uplot")

    # J picks the first annotator: the honeypot answers they gave, and the images they annotated
    page.keyboard.press("j")
    detail = page.locator("[data-testid=annotator-detail]")
    detail.locator("h2", has_text="alice").wait_for()
    answers = detail.locator("[data-testid=honeypot-answers] tbody tr")
    answers.first.wait_for()
    assert answers.count() == 1
    assert answers.first.locator("[data-col=score]").inner_text() == _pct(stats["alice"].honeypot_score)
    shot(page, "annotators-alice")
    p = _project(served)
    with p.engine.connect() as c:
        theirs = c.execute(select(AnnotationRow.image_id).join(RevisionRow, RevisionRow.id == AnnotationRow.head_revision_id)
                           .where(RevisionRow.author == "alice")).all()
    detail.locator("[data-testid=annotator-images]").click()
    page.wait_for_selector("[data-testid=browse-page]")
    page.locator("#match-count", has_text=f"{len(theirs)} image").wait_for()
    assert page.locator("#filter-annotator").input_value() == "alice"
    assert len(theirs) == 3  # their share of the batch (a honeypot answer is no head revision)


def test_both_pages_work_under_the_csp(browser, served, activity):
    """The other tests bypass the app's Content-Security-Policy for their own predicates; here the charts (uPlot
    included) run under the one the server sends: nothing is blocked, nothing throws."""
    with csp_page(browser, served.url) as page:
        for route, ready in (("health", "[data-testid=health-box-sizes-bins] .histo-bin"),
                             ("annotators", "[data-testid=trend-chart] .uplot canvas")):
            page.goto(f"{served.url}/#/p/{PROJECT}/{route}")
            page.wait_for_selector(ready)
