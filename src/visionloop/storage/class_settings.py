"""How classes look and are picked: colour, keyboard key, flags, active; adding several at once.

Renames go through :func:`visionloop.storage.ontology_ops.rename_class` (recorded), colours and flags through
:meth:`Project.set_class_flags`; the key is kept in the class's ``meta["key"]`` (see
:func:`visionloop.core.ontology.class_keys` for the defaults 1..9, 0). Retiring a class (``active=False``) is refused
while annotations use it: merge it into another class instead, so no instance is left with a retired id.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, func, select, update

from visionloop.core.errors import AnnotationValidationError, ConflictError
from visionloop.core.ontology import ClassDef, Ontology
from visionloop.storage.models import ClassRow, HeadCountRow
from visionloop.storage.ontology_ops import rename_class
from visionloop.storage.project import Project

__all__ = ["ClassSpec", "add_classes", "check_colour", "check_key", "update_class"]

_COLOUR = re.compile(r"#[0-9a-fA-F]{6}")


@dataclass(frozen=True, kw_only=True)
class ClassSpec:
    """A class to add: ``colour`` '' and ``key`` None take the defaults (palette by id, digit by place)."""

    name: str
    colour: str = ""
    key: str | None = None
    orientation_sensitive: bool = False
    colour_sensitive: bool = False


def check_colour(colour: str) -> str:
    """``colour`` as ``#rrggbb`` in lower case; AnnotationValidationError otherwise."""
    if not _COLOUR.fullmatch(colour):
        raise AnnotationValidationError("class colour", expected="#rrggbb (six hex digits)", actual=repr(colour))
    return colour.lower()


def check_key(key: str) -> str:
    """A keyboard key: one printable character, not a space."""
    if len(key) != 1 or not key.isprintable() or key.isspace():
        raise AnnotationValidationError("class key", expected="one printable character (a letter, digit or sign)",
                                        actual=repr(key))
    return key


def _check_key_free(onto: Ontology, key: str, class_id: int | None) -> None:
    owner = next((c for c in onto.active if c.meta.get("key") == key and c.id != class_id), None)
    if owner is not None:
        raise ConflictError(f"key {key!r} is the key of class {owner.name!r}; choose another key or change that "
                            "class's key first")


def _set_meta_key(conn: Connection, cdef: ClassDef, key: str | None) -> None:
    meta = {k: v for k, v in cdef.meta.items() if k != "key"}
    if key is not None:
        meta["key"] = key
    conn.execute(update(ClassRow).where(ClassRow.id == cdef.id).values(meta=meta))


def add_classes(project: Project, specs: Sequence[ClassSpec]) -> list[ClassDef]:
    """Add classes in one transaction, in order; a taken name or key rolls all back (ConflictError)."""
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise ConflictError(f"class names repeat in {names}; give each class once")
    keys = [check_key(s.key) for s in specs if s.key is not None]
    if len(set(keys)) != len(keys):
        raise ConflictError(f"class keys repeat in {keys}; give each class its own key")
    colours = [check_colour(s.colour) if s.colour else "" for s in specs]
    with project.transaction() as conn:
        made = []
        for spec, colour in zip(specs, colours, strict=True):
            if spec.key is not None:
                _check_key_free(project.ontology(conn), spec.key, None)
            cdef = project.add_class(spec.name, orientation_sensitive=spec.orientation_sensitive,
                                     colour_sensitive=spec.colour_sensitive, colour=colour, conn=conn)
            if spec.key is not None:
                _set_meta_key(conn, cdef, spec.key)
            made.append(cdef.id)
        onto = project.ontology(conn)
        return [onto.by_id(i) for i in made]


def update_class(
    project: Project, class_id: int, *, author: str, name: str | None = None, colour: str | None = None,
    key: str | None = None, orientation_sensitive: bool | None = None, colour_sensitive: bool | None = None,
    active: bool | None = None,
) -> ClassDef:
    """Change what is given (None: unchanged; ``key=""`` goes back to the default key). A rename is recorded as an
    ontology operation by ``author``. Returns the class as it is now."""
    if colour is not None:
        colour = check_colour(colour)
    if key:
        check_key(key)
    onto = project.ontology()
    cdef = onto.by_id(class_id)
    if active is not None and active != cdef.active:
        _set_active(project, cdef, active)
        cdef = project.ontology().by_id(class_id)
    flags = {k: v for k, v in {"colour": colour, "orientation_sensitive": orientation_sensitive,
                               "colour_sensitive": colour_sensitive}.items() if v is not None}
    if not cdef.active and (name is not None or key is not None or flags):
        raise ConflictError(f"class {cdef.name!r} is retired; make it active first (active: true)")
    if name is not None and name != cdef.name:
        rename_class(project, cdef.name, name, author=author)
    if flags:
        project.set_class_flags(project.ontology().by_id(class_id).name, **flags)
    if key is not None:
        with project.transaction() as conn:
            if key:
                _check_key_free(project.ontology(conn), key, class_id)
            _set_meta_key(conn, project.ontology(conn).by_id(class_id), key or None)
    return project.ontology().by_id(class_id)


def _set_active(project: Project, cdef: ClassDef, active: bool) -> None:
    with project.transaction() as conn:
        if active:
            if project.ontology(conn).get(cdef.name) is not None:
                raise ConflictError(f"an active class is called {cdef.name!r} already; rename one of them first")
        else:
            used = conn.execute(select(func.sum(HeadCountRow.count)).where(HeadCountRow.class_id == cdef.id)).scalar()
            if used:
                raise ConflictError(
                    f"class {cdef.name!r} has {int(used)} instances in current annotations; merge it into another "
                    f"class instead (visionloop classes merge PROJECT {cdef.name} --into OTHER)")
        conn.execute(update(ClassRow).where(ClassRow.id == cdef.id).values(active=active))
