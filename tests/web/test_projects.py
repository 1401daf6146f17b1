"""Creating a project from the projects page: task, classes with colours, keys and flags."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.web.conftest import USER_PASSWORD, sign_in


def fill_class(page, row: int, name: str, colour: str, key: str, *, orientation: bool = False) -> None:
    rows = page.locator(".class-editor .class-row")
    while rows.count() <= row:
        page.click("text=+ Add a class")
    r = rows.nth(row)
    r.locator("input.class-name").fill(name)
    r.locator("input[type=color]").fill(colour)
    r.locator("input.key").fill(key)
    if orientation:
        r.get_by_label("Orientation matters").check()


def test_admin_creates_a_detection_project_with_classes(page, served, shot):
    page.click("#new-project")
    page.fill("#new-project-name", "traffic")
    page.select_option("#new-project-task", "detection")
    fill_class(page, 0, "car", "#1f77b4", "c")
    fill_class(page, 1, "arrow-left", "#ff7f0e", "l", orientation=True)
    fill_class(page, 2, "arrow-right", "#2ca02c", "r", orientation=True)
    shot(page, "new-project-dialog")
    page.click("text=Create project")
    page.wait_for_url("**/#/p/traffic/import")

    project = served.server.app.state.projects.get("traffic")
    assert project.task.value == "detection"
    classes = {c["name"]: c for c in project.ontology().to_json()}
    assert set(classes) == {"car", "arrow-left", "arrow-right"}
    assert classes["car"]["colour"] == "#1f77b4" and not classes["car"]["orientation_sensitive"]
    assert classes["arrow-left"]["orientation_sensitive"] and classes["arrow-right"]["orientation_sensitive"]
    keys = {c["name"]: c["key"] for c in page.evaluate(
        "async () => (await import('/static/js/api.js')).api.get('projects/traffic/classes')")}
    assert keys == {"car": "c", "arrow-left": "l", "arrow-right": "r"}

    # its dashboard says to import images first and shows the classes with their keys
    page.goto(f"{served.url}/#/p/traffic")
    page.locator(".empty", has_text="No images yet").wait_for()
    chips = page.locator("#class-list .chip")
    assert [chips.nth(i).inner_text().split() for i in range(chips.count())] == [
        ["car", "c"], ["arrow-left", "l"], ["arrow-right", "r"]]
    shot(page, "new-project-dashboard")

    # the new project is listed, with the creator as its admin
    page.goto(f"{served.url}/#/")
    card = page.locator("[data-project=traffic]")
    card.wait_for()
    assert "admin" in card.inner_text().lower() and "0 images" in card.inner_text()


def test_the_form_says_what_to_fix(page, served):
    page.click("#new-project")
    page.fill("#new-project-name", "has a space")
    page.click("text=Create project")
    assert "no spaces" in page.locator(".modal .error-box").inner_text()
    page.fill("#new-project-name", "twice")
    fill_class(page, 0, "cell", "#111111", "1")
    fill_class(page, 1, "Cell", "#222222", "2")
    page.click("text=Create project")
    assert 'Two classes are named "Cell"' in page.locator(".modal .error-box").inner_text()
    fill_class(page, 1, "nucleus", "#222222", "1")
    page.click("text=Create project")
    assert 'The key "1" is used by two classes' in page.locator(".modal .error-box").inner_text()
    page.keyboard.press("Escape")
    assert page.locator(".modal").count() == 0


def test_an_existing_name_is_refused_with_a_message(page, served):
    page.click("#new-project")
    page.fill("#new-project-name", served.name)
    page.click("text=Create project")
    message = page.locator(".modal .error-box")
    message.wait_for(state="visible")
    assert "exists already" in message.inner_text()


def test_an_annotator_cannot_create_projects(new_page, served):
    served.add_user("anna", "annotator")
    page = new_page()
    sign_in(page, served.url, "anna", USER_PASSWORD)
    expect(page.locator(f"[data-project={served.name}]")).to_be_visible()
    assert page.locator("#new-project").count() == 0
