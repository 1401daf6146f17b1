"""The webhooks page under the server's CSP, with a real receiver on 127.0.0.1: an admin adds a webhook (the secret
shown once), tests it and sees the delivery arrive, turns it off, reads the events, removes it; a viewer is told the
page is for admins."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import expect

from tests.serving.webhook_receiver import receiving
from tests.web.conftest import USER_PASSWORD, Served, csp_page
from visionloop.serving.webhooks import verify_signature
from visionloop.storage.events import list_webhooks
from visionloop.storage.review import set_review_state


@pytest.mark.slow
@pytest.mark.ci  # the page's one browser test: 25 s on a loaded 2-core machine (a delivery waits for the page's refresh)
def test_webhooks_page_adds_tests_turns_off_and_removes(browser, served: Served, shot: Callable) -> None:  # noqa: ANN001
    project = served.server.app.state.projects.get(served.name)
    first = project.images(limit=1)[0].id
    set_review_state(project, [first], "submitted", author="ann")
    set_review_state(project, [first], "approved", author="rita")  # an event to list
    with receiving([204]) as rx, csp_page(browser, served.url) as page:
        page.goto(f"{served.url}/#/p/{served.name}/webhooks")
        expect(page.get_by_test_id("webhook-list")).to_contain_text("No webhooks yet")
        expect(page.locator("[data-testid=events] tr[data-kind='review.done']")).to_have_count(1)
        page.fill("#webhook-url", rx.url)
        page.get_by_label("Review done").check()
        page.get_by_role("button", name="Add webhook").click()
        secret = page.get_by_test_id("webhook-secret").inner_text().strip()
        assert len(secret) >= 32
        page.get_by_role("button", name="I have kept it").click()
        row = page.locator("[data-testid=webhook-list] tr[data-id]")
        expect(row).to_have_count(1)
        expect(row).to_contain_text(rx.url)
        expect(row).to_contain_text("review.done")

        row.locator("[data-action=test]").click()
        (ping,) = rx.wait_for(1)
        assert ping.json["kind"] == "webhook.ping"
        assert verify_signature(secret, ping.body, timestamp=ping.headers["X-Visionloop-Timestamp"],
                                signature=ping.headers["X-Visionloop-Signature"])
        delivered = page.locator("[data-testid=deliveries] tr[data-state=delivered]")
        expect(delivered).to_have_count(1, timeout=30_000)
        expect(delivered.locator("[data-col=status]")).to_have_text("204")
        expect(page.locator("[data-testid=events] tr[data-kind='webhook.ping']")).to_have_count(1, timeout=30_000)
        shot(page, "webhooks-page")

        row.locator("[data-action=toggle]").click()
        expect(row.locator("[data-action=toggle]")).to_have_text("Turn on")
        assert [w.active for w in list_webhooks(project)] == [False]
        row.locator("[data-action=remove]").click()
        page.get_by_role("dialog").get_by_role("button", name="Remove").click()
        expect(page.get_by_test_id("webhook-list")).to_contain_text("No webhooks yet")
        assert list_webhooks(project) == []

    served.add_user("vera", "viewer")
    with csp_page(browser, served.url, "vera", USER_PASSWORD) as page:
        page.goto(f"{served.url}/#/p/{served.name}/webhooks")
        expect(page.get_by_role("alert")).to_contain_text("managed by the project's admins")
        expect(page.locator(".topbar-nav a", has_text="Webhooks")).to_have_count(0)
        expect(page.locator(".topbar-nav [data-menu=Admin]")).to_have_count(0)
