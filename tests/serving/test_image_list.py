"""The image list: filters, keyset paging, the count, an image's neighbours; and its SQL at 100,000 images."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event

from tests.serving.big_projects import REVIEW_EVERY, SPLIT_OF, fill_listing_project
from tests.serving.conftest import bearer_headers
from visionloop.core.annotations import Boxes
from visionloop.core.settings import Settings
from visionloop.serving.projects_api.app import create_app
from visionloop.storage import NewImage, Project
from visionloop.storage.review import set_review_state
from visionloop.storage.versions import create_version, version_items

API = "/api/v1"


@pytest.fixture
def small(project_factory, image_factory) -> Project:
    """Ten images: ids 1-6 ``dir/F0.jpg``..``dir/F5.jpg``, annotated (even ids: a box of ``cat`` by alice, odd:
    ``dog`` by bob), in version v1; ids 7-10 ``f6.jpg``..``f9.jpg``, added after it."""
    p: Project = project_factory("detection", name="small")
    cls = p.class_ids(["cat", "dog"])
    data = image_factory("x.jpg", width=64, height=48).read_bytes()
    ids = [p.add_images([NewImage(sha256=p.blobs.put(data + bytes([i])), width=64, height=48, format="jpeg",
                                  name=f"dir/F{i}.jpg")])[0][0] for i in range(6)]
    for i in ids:
        p.save_annotation(i, Boxes([[1, 1, 9, 9]], [cls["cat" if i % 2 == 0 else "dog"]]), base_revision=None,
                          author="alice" if i % 2 == 0 else "bob")
    create_version(p, name="v1", phash_distance=-1)
    p.add_images([NewImage(sha256=p.blobs.put(data + bytes([i])), width=64, height=48, format="jpeg",
                           name=f"f{i}.jpg") for i in range(6, 10)])
    return p


@pytest.fixture
def client(small: Project) -> Iterator[TestClient]:
    with TestClient(create_app(small.root, settings=Settings()), headers=bearer_headers(small)) as c:
        yield c


def ids_of(client: TestClient, project: Project, **params: object) -> list[int]:
    r = client.get(f"{API}/projects/{project.name}/images", params={"limit": 500, **params})
    assert r.status_code == 200, r.text
    count = client.get(f"{API}/projects/{project.name}/images/count", params=params)
    assert count.json()["total"] == r.json()["total"] == len(r.json()["items"]), (params, count.text)
    return [i["id"] for i in r.json()["items"]]


def test_each_filter(client: TestClient, small: Project) -> None:
    assert ids_of(client, small) == list(range(1, 11))
    assert ids_of(client, small, **{"class": "cat"}) == [2, 4, 6]
    dog = next(c.id for c in small.ontology().classes if c.name == "dog")
    assert ids_of(client, small, **{"class": str(dog)}) == [1, 3, 5]
    assert ids_of(client, small, annotated="true") == [1, 2, 3, 4, 5, 6]
    assert ids_of(client, small, annotated="false") == [7, 8, 9, 10]
    assert ids_of(client, small, annotator="bob") == [1, 3, 5]
    assert ids_of(client, small, q="f1") == [2]  # dir/F1.jpg, any case
    assert ids_of(client, small, q="R/F") == [1, 2, 3, 4, 5, 6]
    assert ids_of(client, small, q="%") == ids_of(client, small, q="_") == []  # literal characters, not patterns
    splits = {it.image.id: it.split for it in version_items(small, "v1")}
    for split in ("train", "val", "test"):
        assert ids_of(client, small, split=split) == sorted(i for i, s in splits.items() if s == split)
        assert ids_of(client, small, split=split, version="v1") == ids_of(client, small, split=split)
    assert ids_of(client, small, split="none") == [7, 8, 9, 10]
    assert ids_of(client, small, **{"class": "cat"}, annotator="alice", q=".JPG") == [2, 4, 6]


def test_review_filter_and_state(client: TestClient, small: Project) -> None:
    set_review_state(small, [1, 2, 3], "submitted", author="rita")
    set_review_state(small, [2], "approved", author="victor")
    set_review_state(small, [3], "rejected", author="victor", reason="box too loose")
    assert ids_of(client, small, review="submitted") == [1]
    assert ids_of(client, small, review="approved") == [2]
    assert ids_of(client, small, review="todo") == [4, 5, 6, 7, 8, 9, 10]
    items = client.get(f"{API}/projects/{small.name}/images", params={"limit": 3}).json()["items"]
    assert [i["review_state"] for i in items] == ["submitted", "approved", "rejected"]
    detail = client.get(f"{API}/projects/{small.name}/images/3").json()
    assert detail["review_state"] == "rejected"
    assert {k: detail["review"][k] for k in ("state", "reason", "author")} == {
        "state": "rejected", "reason": "box too loose", "author": "victor"}
    log = client.get(f"{API}/projects/{small.name}/images/3/reviews").json()
    assert [(e["state"], e["author"]) for e in log] == [("submitted", "rita"), ("rejected", "victor")]
    assert client.get(f"{API}/projects/{small.name}/images/4").json()["review"] is None


def test_keyset_pages_cover_the_list_once(client: TestClient, small: Project) -> None:
    url = f"{API}/projects/{small.name}/images"
    seen, after, pages = [], None, 0
    while True:
        body = client.get(url, params={"limit": 3, **({"after": after} if after is not None else {})}).json()
        seen += [i["id"] for i in body["items"]]
        pages += 1
        after = body["next_after"]
        if after is None:
            break
        assert after == body["items"][-1]["id"]
    assert seen == list(range(1, 11)) and pages == 4
    filtered = client.get(url, params={"limit": 2, "after": 2, "annotated": "true"}).json()
    assert [i["id"] for i in filtered["items"]] == [3, 4] and filtered["next_after"] == 4 and filtered["total"] == 6
    old = client.get(url, params={"offset": 8, "limit": 5}).json()  # old clients page by offset
    assert [i["id"] for i in old["items"]] == [9, 10] and old["next_after"] is None and old["total"] == 10


def test_detail_neighbours_follow_the_filters(client: TestClient, small: Project) -> None:
    url = f"{API}/projects/{small.name}/images"
    plain = client.get(f"{url}/4").json()
    assert (plain["prev_id"], plain["next_id"]) == (3, 5)
    cats = client.get(f"{url}/4", params={"class": "cat"}).json()
    assert (cats["prev_id"], cats["next_id"]) == (2, 6)
    first = client.get(f"{url}/1", params={"annotated": "false"}).json()
    assert (first["prev_id"], first["next_id"]) == (None, 7)
    last = client.get(f"{url}/10").json()
    assert (last["prev_id"], last["next_id"]) == (9, None)


@pytest.mark.parametrize("params, status, fragment", [
    ({"class": "cow"}, 404, "class"),
    ({"class": "99"}, 404, "class id"),
    ({"split": "holdout"}, 404, "split"),
    ({"split": "train", "version": "v9"}, 404, "version"),
    ({"version": "v1"}, 404, "split"),
    ({"review": "maybe"}, 404, "review state"),
    ({"annotated": "perhaps"}, 422, "annotated"),
    ({"after": -1}, 422, "after"),
])
def test_bad_filters_say_what_is_known(client: TestClient, small: Project, params: dict, status: int,
                                       fragment: str) -> None:
    for path in ("", "/count", "/1"):
        r = client.get(f"{API}/projects/{small.name}/images{path}", params=params)
        if path != "" and "after" in params:
            continue  # only the list pages
        assert r.status_code == status and fragment in r.text, (path, params, r.text)


def test_split_filter_needs_a_version(project_factory, image_factory) -> None:
    p: Project = project_factory("detection", name="fresh")
    with TestClient(create_app(p.root, settings=Settings()), headers=bearer_headers(p)) as c:
        r = c.get(f"{API}/projects/{p.name}/images", params={"split": "train"})
        assert r.status_code == 404 and "create one first" in r.text
        assert c.get(f"{API}/projects/{p.name}/images/count", params={"split": "none"}).status_code == 404


# ---- 100,000 images ----------------------------------------------------------------------------------------------

FILTERS = [
    ({}, 100_000),
    ({"class": "b"}, 25_000),
    ({"split": "val"}, 10_000),
    ({"split": "none"}, 1_000),
    ({"annotated": "true"}, 50_000),
    ({"annotated": "false"}, 50_000),
    ({"review": "approved"}, 100_000 // (2 * REVIEW_EVERY)),
    ({"review": "submitted"}, 100_000 // REVIEW_EVERY - 100_000 // (2 * REVIEW_EVERY)),
    ({"review": "todo"}, 100_000 - 100_000 // REVIEW_EVERY),
    ({"annotator": "bob"}, 25_000),
    ({"q": "IMG00042"}, 10),  # img000420 .. img000429, any case
    # bob's images are the ids 3 mod 4: their last digit is 1, 3, 5, 7 or 9 alike, and 1, 3, 5 are train
    ({"class": "b", "annotator": "bob", "split": "train"},
     25_000 * sum(SPLIT_OF[d] == "train" for d in (1, 3, 5, 7, 9)) // 5),
]


def test_filtered_list_at_100k_images_uses_indexes(project_factory, tmp_path: Path) -> None:
    """Every filter's page, count and neighbours at 100,000 images: the right answer, and a query plan that reaches
    each table through an index (a full scan only of the image names, for a substring). Times are printed only."""
    p: Project = project_factory("detection", name="big")
    t0 = time.perf_counter()
    fill_listing_project(p, images=100_000)
    print(f"\n100,000 image rows made by SQL bulk insert in {time.perf_counter() - t0:.1f} s")
    with TestClient(create_app(p.root, settings=Settings()), headers=bearer_headers(p)) as c:
        served = c.app.state.projects.get(p.name)
        statements: list[tuple[str, object]] = []
        event.listen(served.engine, "before_cursor_execute",
                     lambda conn, cursor, sql, params, *rest: statements.append((sql, params)))
        url = f"{API}/projects/{p.name}/images"
        for params, expected in FILTERS:
            statements.clear()
            t0 = time.perf_counter()
            page = c.get(url, params={**params, "after": 50_000, "limit": 100})
            t_page = time.perf_counter() - t0
            assert page.status_code == 200, page.text
            body = page.json()
            assert body["total"] == expected, params
            ids = [i["id"] for i in body["items"]]
            assert ids == sorted(ids) and all(i > 50_000 for i in ids), params
            assert len(ids) == (100 if expected > 2_000 else len(ids)) and body["next_after"] == (
                ids[-1] if len(ids) == 100 else None), params
            t0 = time.perf_counter()
            detail = c.get(f"{url}/50001", params=params)
            t_detail = time.perf_counter() - t0
            assert detail.status_code == 200
            plans = []
            with served.engine.connect() as conn:
                for sql, args in list(statements):
                    if "images" in sql and "api_tokens" not in sql:
                        plans += [r[-1] for r in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", args).all()]
            scans = [line for line in plans if line.startswith("SCAN")]
            assert scans == (["SCAN images"] if "q" in params else []), (params, plans)
            print(f"{params}: {expected} images; page {t_page * 1000:.0f} ms, detail with neighbours "
                  f"{t_detail * 1000:.0f} ms")
