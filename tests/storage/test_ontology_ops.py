import numpy as np
import pytest
from sqlalchemy import func, select

from tests.conftest import make_image_bytes
from visionloop.core import Boxes, Label, SemanticMask, StaleRevisionError, Tags
from visionloop.core.errors import AnnotationValidationError, ConflictError, NotFoundError
from visionloop.storage import NewImage
from visionloop.storage.models import ClassRow, OntologyOpRow, RevisionRow
from visionloop.storage.ontology_ops import list_ontology_ops, merge_classes, rename_class, split_class


def add_image(project, seed=0):
    data = make_image_bytes(seed=seed)
    sha = project.blobs.put(data)
    [(image_id, _)] = project.add_images([NewImage(sha256=sha, width=64, height=48, format="jpeg", name=f"{seed}.jpg")])
    return image_id


def boxes(*class_ids):
    n = len(class_ids)
    xyxy = np.array([[i, i, i + 10, i + 10] for i in range(n)], dtype=float).reshape(-1, 4)
    return Boxes(xyxy, np.array(class_ids, dtype=np.int64))


def db_counts(project):
    with project.engine.connect() as c:
        return (c.execute(select(func.count(RevisionRow.id))).scalar_one(),
                c.execute(select(func.count(ClassRow.id))).scalar_one(),
                c.execute(select(func.count(OntologyOpRow.id))).scalar_one())


@pytest.fixture
def det(project_factory):
    """Detection project: classes a, b, c; 6 images."""
    p = project_factory("detection")
    ids = p.class_ids(["a", "b", "c"])
    a, b, c = ids["a"], ids["b"], ids["c"]
    layout = [(a, b), (a, c), (b, b, c), (a,), (c,), ()]
    images = []
    for seed, cls in enumerate(layout):
        iid = add_image(p, seed)
        p.save_annotation(iid, boxes(*cls), base_revision=None, author="alice")
        images.append(iid)
    return p, ids, images


def test_rename_keeps_id_annotations_and_revisions(det):
    p, ids, images = det
    before = {i: p.head(i) for i in images}
    op = rename_class(p, "a", "alpha", author="bob")
    onto = p.ontology()
    assert onto.by_name("alpha").id == ids["a"]
    assert onto.get("a") is None
    assert (op.kind, op.author, op.params["class_id"], op.rewritten) == ("rename", "bob", ids["a"], {})
    for i in images:  # nothing rewritten: payloads hold ids
        assert p.head(i)[0] == before[i][0] == 1
        assert p.head(i)[1] == before[i][1]
    assert p.stats()["classes"] == {"alpha": 3, "b": 3, "c": 3}
    with pytest.raises(ConflictError, match="merge"):
        rename_class(p, "alpha", "b", author="bob")
    with pytest.raises(NotFoundError):
        rename_class(p, "nope", "x", author="bob")


def test_merge_into_new_class_rewrites_counts_and_keeps_old_revisions(det):
    p, ids, images = det
    assert p.stats()["classes"] == {"a": 3, "b": 3, "c": 3}
    op = merge_classes(p, ["b", "c"], "bc", author="bob")
    stats = p.stats()
    assert stats["classes"] == {"a": 3, "bc": 6}
    assert stats["annotations"] == 9
    onto = p.ontology()
    bc = onto.by_name("bc").id
    assert not onto.by_id(ids["b"]).active and not onto.by_id(ids["c"]).active  # ids reserved, retired
    assert bc not in (ids["a"], ids["b"], ids["c"])
    # images 0, 1, 2, 4 had b or c; 3 and 5 untouched
    assert sorted(op.rewritten) == [images[0], images[1], images[2], images[4]]
    for i in images:
        hist = p.history(i)
        if i in op.rewritten:
            assert [r.revision for r in hist] == [1, 2]
            assert hist[1].author == f"ontology:merge#{op.id}"
            old, new = hist[0].annotation, hist[1].annotation
            assert set(old.class_id.tolist()) & {ids["b"], ids["c"]}
            assert set(new.class_id.tolist()) <= {ids["a"], bc}
            np.testing.assert_array_equal(old.xyxy, new.xyxy)
        else:
            assert len(hist) == 1
    assert [o.kind for o in list_ontology_ops(p)] == ["merge"]
    assert list_ontology_ops(p)[0].rewritten == op.rewritten


def test_merge_into_one_of_the_sources_keeps_its_id(det):
    p, ids, images = det
    merge_classes(p, ["a", "b"], "a", author="bob")
    onto = p.ontology()
    assert onto.by_name("a").id == ids["a"]
    assert not onto.by_id(ids["b"]).active
    assert p.stats()["classes"] == {"a": 6, "c": 3}
    with pytest.raises(ConflictError, match="changes nothing"):
        merge_classes(p, ["a"], "a", author="bob")


def test_stale_save_still_refused_after_merge(det):
    p, ids, images = det
    merge_classes(p, ["b", "c"], "c", author="bob")
    head, ann = p.head(images[0])
    assert head == 2
    with pytest.raises(StaleRevisionError) as err:  # an editor still holding revision 1
        p.save_annotation(images[0], boxes(ids["a"]), base_revision=1, author="carol")
    assert (err.value.base_revision, err.value.head_revision) == (1, 2)
    # and the retired class can no longer be used
    with pytest.raises(AnnotationValidationError):
        p.save_annotation(images[0], boxes(ids["b"]), base_revision=2, author="carol")


def test_merge_tags_collapses_duplicates(project_factory):
    p = project_factory("tagging")
    ids = p.class_ids(["cat", "kitten", "dog"])
    i1, i2 = add_image(p, 1), add_image(p, 2)
    p.save_annotation(i1, Tags(frozenset({ids["cat"], ids["kitten"], ids["dog"]})), base_revision=None, author="a")
    p.save_annotation(i2, Tags(frozenset({ids["kitten"]})), base_revision=None, author="a")
    merge_classes(p, ["cat", "kitten"], "cat", author="a")
    assert p.head(i1)[1] == Tags(frozenset({ids["cat"], ids["dog"]}))
    assert p.head(i2)[1] == Tags(frozenset({ids["cat"]}))
    assert p.stats()["classes"] == {"cat": 2, "dog": 1}


def test_merge_semantic_mask(project_factory):
    p = project_factory("segmentation")
    ids = p.class_ids(["road", "lane", "car"])
    iid = add_image(p)
    m = np.zeros((48, 64), dtype=np.int32)
    m[:10] = ids["road"]
    m[10:20] = ids["lane"]
    m[30:] = ids["car"]
    p.save_annotation(iid, SemanticMask(m), base_revision=None, author="a")
    merge_classes(p, ["road", "lane"], "drivable", author="a")
    new_id = p.ontology().by_name("drivable").id
    out = p.head(iid)[1].mask
    assert (out[:20] == new_id).all() and (out[30:] == ids["car"]).all() and (out[20:30] == 0).all()


def test_split_reassigns_assigned_instances_and_keeps_the_rest(det):
    p, ids, images = det
    # b instances: image0 idx1, image2 idx0 and idx1
    rep = split_class(p, "b", ["b_small", "b_large"],
                      assign={(images[0], 1): "b_small", (images[2], 1): "b_large"}, author="bob")
    assert rep.reassigned == {"b_small": 1, "b_large": 1}
    assert rep.reassigned_total == 2
    assert rep.remaining == 1
    onto = p.ontology()
    assert onto.by_name("b").active
    assert onto.by_name("b_small").parent_id == ids["b"]
    assert p.stats()["classes"] == {"a": 3, "b": 1, "c": 3, "b_small": 1, "b_large": 1}
    head2 = p.head(images[2])[1]
    assert head2.class_id.tolist() == [ids["b"], onto.by_name("b_large").id, ids["c"]]
    assert p.history(images[2])[0].annotation.class_id.tolist() == [ids["b"], ids["b"], ids["c"]]
    assert p.history(images[2])[1].author == f"ontology:split#{rep.op.id}"
    assert sorted(rep.op.rewritten) == sorted([images[0], images[2]])


def test_split_without_assignment_only_adds_classes(det):
    p, ids, images = det
    rep = split_class(p, "c", ["c1", "c2"], author="bob")
    assert (rep.reassigned_total, rep.remaining) == (0, 3)
    assert {"c1", "c2"} <= set(p.ontology().names)
    assert all(len(p.history(i)) == 1 for i in images)


def test_failed_split_changes_nothing(det):
    p, ids, images = det
    before = db_counts(p)
    # image 3 object 0 is class a, not b: the whole operation is refused
    with pytest.raises(AnnotationValidationError, match="source class"):
        split_class(p, "b", ["b1", "b2"], assign={(images[0], 1): "b1", (images[3], 0): "b2"}, author="bob")
    with pytest.raises(AnnotationValidationError, match="object index"):
        split_class(p, "b", ["b1"], assign={(images[0], 7): "b1"}, author="bob")
    with pytest.raises(AnnotationValidationError):
        split_class(p, "b", ["b1"], assign={(images[0], 1): "not-a-target"}, author="bob")
    assert db_counts(p) == before
    assert p.ontology().get("b1") is None
    assert list_ontology_ops(p) == []


def test_split_label_project(project_factory):
    p = project_factory("classification")
    ids = p.class_ids(["dog", "cat"])
    imgs = [add_image(p, s) for s in range(4)]
    for i in imgs:
        p.save_annotation(i, Label(ids["dog"]), base_revision=None, author="a")
    rep = split_class(p, "dog", ["terrier", "poodle"],
                      assign={(imgs[0], 0): "terrier", (imgs[1], 0): "poodle", (imgs[2], 0): "poodle"}, author="a")
    assert rep.reassigned == {"terrier": 1, "poodle": 2} and rep.remaining == 1
    assert p.stats()["classes"] == {"dog": 1, "cat": 0, "terrier": 1, "poodle": 2}
    onto = p.ontology()
    assert p.head(imgs[1])[1] == Label(onto.by_name("poodle").id)
    ops = list_ontology_ops(p)
    assert [o.kind for o in ops] == ["split"] and ops[0].params["source"] == "dog"
