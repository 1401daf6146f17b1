"""The models page under the server's CSP shows the deployed package's version and the previous one, and an admin
rolls back to it with one button (two real BCCD cell classifiers deployed one after the other)."""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import expect

from tests.web.conftest import ADMIN_PASSWORD, csp_page, serve
from visionloop.core.package import load_package
from visionloop.storage import Project
from visionloop.storage.deployment import read_deployment, write_deployment
from visionloop.storage.users import ensure_admin


def test_models_page_rolls_back_to_the_previous_package(browser, tmp_path: Path, cell_package: Path,  # noqa: ANN001
                                                        cell_package_v2: Path, shot: Callable) -> None:
    folder = tmp_path / "projects"
    with Project.create(folder / "cells", task="classification") as p:
        ensure_admin(p, password=ADMIN_PASSWORD)
    versions = {}
    for name, archive in (("v1", cell_package), ("v2", cell_package_v2)):
        with zipfile.ZipFile(archive) as zf:
            zf.extractall(folder / "cells" / "packages" / name)
        sha = load_package(folder / "cells" / "packages" / name).manifest.model_sha256
        versions[name] = sha[:12]
        write_deployment(folder / "cells", package=name, by="admin", package_version=sha[:12], model_sha256=sha)

    with serve([folder / "cells"], projects_dir=folder) as server, csp_page(browser, server.url) as page:
        page.goto(f"{server.url}/#/p/cells/models")
        line = page.locator("#deployment-line")
        expect(line).to_contain_text(f"Deployed: v2 version {versions['v2']}")
        expect(line).to_contain_text(f"previous: v1 ({versions['v1']})")
        shot(page, "models-deployed-v2")
        page.locator("#rollback").click()
        page.get_by_role("button", name="Roll back", exact=True).click()
        expect(line).to_contain_text(f"Deployed: v1 version {versions['v1']}")
        expect(line).to_contain_text(f"previous: v2 ({versions['v2']})")
        expect(page.locator("#packages tr.deployed")).to_have_attribute("data-package", "v1")
        shot(page, "models-rolled-back")

    record = read_deployment(folder / "cells")
    assert record["package"] == "v1" and record["action"] == "rollback" and record["deployed_by"] == "admin"
    assert record["previous"]["package"] == "v2"
