"""The projects page and a project's dashboard, as an admin and as a viewer."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.web.conftest import BCCD_IMAGES, PROJECT, USER_PASSWORD, sign_in


def stats_of(served) -> dict:
    project = served.server.app.state.projects.get(served.name)
    return project.stats()


def test_projects_page_lists_the_project_with_its_counts(page, served, shot):
    card = page.locator(f"[data-project={PROJECT}]")
    card.locator(".project-images").filter(has_text=f"{BCCD_IMAGES} images").wait_for()
    assert "Detection" in card.inner_text()
    expect(page.locator("#new-project")).to_be_visible()  # the admin may create projects
    shot(page, "projects")


def test_dashboard_shows_counts_and_the_class_chart(page, served, shot):
    stats = stats_of(served)
    page.click(f"[data-project={PROJECT}]")
    page.wait_for_selector("[data-testid=class-chart]")
    assert page.locator("[data-testid=stat-images]").inner_text() == str(stats["images"])
    assert page.locator("[data-testid=stat-annotated]").inner_text() == str(stats["annotated_images"])
    bars = page.locator("[data-testid=class-chart] .bar")
    assert bars.count() == len(stats["classes"]) == 3  # BCCD: RBC, WBC, Platelets
    for name, count in stats["classes"].items():
        bar = page.locator(f'[data-testid=class-chart] .bar[data-class="{name}"]')
        assert bar.locator("text.value").text_content() == str(count)
    # the longest bar comes first
    first = bars.first.get_attribute("data-class")
    assert first == max(stats["classes"], key=stats["classes"].get)
    # the admin sees the admin actions and the top bar's admin pages
    expect(page.locator("#create-version")).to_be_visible()
    assert page.locator(".topbar .role-badge").text_content() == "admin"
    shot(page, "dashboard-admin")
    # the pages are grouped in menus: one opens on a click, a choice or Escape closes it, another click closes it
    menu = page.locator(".topbar-nav [data-menu=Models]")
    expect(menu.get_by_role("link", name="Train")).to_be_hidden()
    menu.locator("summary").click()
    expect(menu.get_by_role("link", name="Train")).to_be_visible()
    shot(page, "top-bar-menu")
    page.keyboard.press("Escape")
    expect(menu.get_by_role("link", name="Train")).to_be_hidden()
    page.locator(".topbar-nav [data-menu=Label] summary").click()
    menu.locator("summary").click()  # opening one menu closes the other
    expect(page.locator(".topbar-nav [data-menu=Label] a", has_text="Review")).to_be_hidden()
    menu.get_by_role("link", name="Train").click()
    page.wait_for_url("**/train")
    expect(page.locator(".topbar-nav [data-menu=Models] summary")).to_have_class("nav-link active")
    expect(page.locator(".topbar-nav [data-menu=Models] a", has_text="Train")).to_be_hidden()


def test_a_viewer_sees_no_admin_actions(new_page, served, shot):
    served.add_user("vera", "viewer")
    page = new_page()
    sign_in(page, served.url, "vera", USER_PASSWORD)
    assert not page.locator("#new-project").count()
    page.click(f"[data-project={PROJECT}]")
    page.wait_for_selector("[data-testid=class-chart]")
    assert page.locator(".topbar .role-badge").text_content() == "viewer"
    for hidden in ("#create-version", ".topbar-nav >> text=Train", ".topbar-nav >> text=Import",
                   ".page-actions >> text=Import"):
        assert page.locator(hidden).count() == 0, hidden
    expect(page.locator(".topbar-nav >> text=Images")).to_be_visible()
    # a menu left with one page for the role is that page's link; one left with none is not shown
    assert page.locator(".topbar-nav [data-menu=Admin]").count() == 0
    assert page.locator(".topbar-nav [data-menu=Label]").count() == 0
    expect(page.locator(".topbar-nav [data-menu=Models] summary")).to_be_visible()
    shot(page, "dashboard-viewer")


def test_top_bar_counts_the_edits_waiting_in_this_browser(page, served):
    """An edit the server refuses (a stale base revision: 409) stays in the browser's queue until the person
    chooses; the top bar says so on every page, and clears when the queue is empty."""
    page.click(f"[data-project={PROJECT}]")
    page.wait_for_selector("[data-testid=class-chart]")
    pending = page.locator("#pending-edits")
    assert pending.is_hidden()
    page.evaluate("""async (project) => {
        const offline = await import('/static/js/offline.js');
        await offline.enqueue(project, 1, {type: 'boxes', xyxy: [[1, 1, 9, 9]], class_id: [1]}, 999);
    }""", PROJECT)
    pending.filter(has_text="1 edit waiting to be sent").wait_for()
    page.evaluate("async (project) => (await import('/static/js/offline.js')).resolveConflict(project, 1)", PROJECT)
    pending.wait_for(state="hidden")


def test_admin_creates_a_dataset_version_from_the_dashboard(page, served, shot):
    from visionloop.storage.versions import list_versions

    page.click(f"[data-project={PROJECT}]")
    page.click("#create-version")
    page.fill("#version-name", "first")
    page.fill("#version-seed", "3")
    page.click(".modal button.primary")
    page.locator(".toast", has_text="Version first created").wait_for()
    row = page.locator("#versions tbody tr", has_text="first")
    row.wait_for()
    made = {v.name: v for v in list_versions(served.server.app.state.projects.get(served.name))}["first"]
    assert made.params.get("seed") == 3
    assert str(made.summary["images"]) in row.inner_text()
    assert "train" in row.inner_text()
    shot(page, "dashboard-version")
    # the same name again is refused, and the dialog says why
    page.click("#create-version")
    page.fill("#version-name", "first")
    page.click(".modal button.primary")
    page.locator(".modal .error-box").wait_for(state="visible")
    assert "first" in page.locator(".modal .error-box").inner_text()


def test_admin_edits_the_classes(page, served, shot):
    """Colour, key, rename and a new class are saved; retiring a class in use is refused and the dialog says why.
    (Last in this module: it renames a class.)"""
    project = served.server.app.state.projects.get(served.name)
    page.click(f"[data-project={PROJECT}]")
    page.click("#edit-classes")
    ids = {c.name: c.id for c in project.ontology().classes}

    def row(name: str):
        return page.locator(f".modal .class-row[data-class-id='{ids[name]}']")

    row("WBC").locator("input[type=color]").fill("#112233")
    row("WBC").locator("input.key").fill("w")
    row("Platelets").locator("input.class-name").fill("Platelet")
    page.click(".modal >> text=+ Add a class")
    page.locator(".modal .class-row:not([data-class-id]) input.class-name").last.fill("Ghost")
    shot(page, "edit-classes")
    page.click(".modal button.primary")
    page.locator(".toast", has_text="Classes saved").wait_for()
    by_name = {c["name"]: c for c in page.evaluate(
        "async (p) => (await import('/static/js/api.js')).api.get(`projects/${p}/classes`)", PROJECT)}
    assert by_name["WBC"]["colour"] == "#112233" and by_name["WBC"]["key"] == "w"
    assert "Platelet" in by_name and "Platelets" not in by_name and "Ghost" in by_name
    assert {c.name for c in project.ontology().classes if c.active} == {"RBC", "WBC", "Platelet", "Ghost"}
    page.locator('[data-testid=class-chart] .bar[data-class="WBC"] rect[fill="#112233"]').wait_for()

    page.click("#edit-classes")
    row("RBC").locator(".icon-button").click()
    page.click(".modal button.primary")
    refused = page.locator(".modal .error-box")
    refused.wait_for(state="visible")
    assert "RBC" in refused.inner_text()
    assert "RBC" in {c.name for c in project.ontology().classes if c.active}


def test_a_reviewer_is_shown_what_waits_for_review(new_page, served):
    from visionloop.serving.projects_api.image_queries import image_page
    from visionloop.storage.review import set_review_state

    project = served.server.app.state.projects.get(served.name)
    ids = [i.id for i in image_page(project, limit=2)[0]]
    set_review_state(project, ids, "submitted", author="admin")
    served.add_user("rex", "reviewer")
    page = new_page()
    sign_in(page, served.url, "rex", USER_PASSWORD)
    page.click(f"[data-project={PROJECT}]")
    page.locator("[data-testid=stat-review]", has_text="2").wait_for()
    page.click(".page-actions >> text=Review 2")
    page.wait_for_url(f"**/#/p/{PROJECT}/images?review=submitted")
    page.locator("#match-count", has_text="2 images match").wait_for()
