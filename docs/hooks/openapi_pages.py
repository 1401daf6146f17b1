"""MkDocs hook: the REST API pages are rendered at build time from the apps' own OpenAPI schemas.

A page holding the line ``<!-- openapi: projects -->`` (the project API) or ``<!-- openapi: model-server -->`` (the
model server) gets it replaced by one section per route (method, path, summary, parameters, request body, responses)
and the schemas they use, so the page can never drift from the code. Nothing is written into ``docs/``.
"""

from __future__ import annotations

import re
import tempfile
from functools import cache
from pathlib import Path
from typing import Any

MARKER = re.compile(r"^<!-- openapi: (?P<app>[a-z-]+) -->$", re.MULTILINE)
METHODS = ("get", "post", "put", "patch", "delete")


@cache
def schema(app: str) -> dict[str, Any]:
    """The OpenAPI document of ``projects`` or ``model-server``, from the app the servers run."""
    if app == "model-server":
        from visionloop.serving.model_server.app import create_inference_app

        return create_inference_app(runners={}).openapi()  # routes do not depend on the models served
    if app == "projects":
        from visionloop.core.settings import Settings
        from visionloop.serving.projects_api.app import create_app
        from visionloop.storage import Project

        with tempfile.TemporaryDirectory() as tmp:  # the app needs one project to start; its routes do not vary
            Project.create(Path(tmp) / "example", task="detection").close()
            return create_app(Path(tmp), settings=Settings()).openapi()
    raise ValueError(f"unknown app {app!r} in an openapi marker; use projects or model-server")


def _ref_name(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


def _type(s: dict[str, Any]) -> str:
    """A short type for a JSON schema: ``string``, ``integer[]``, ``ImagePublic``, ``string | null``."""
    if "$ref" in s:
        name = _ref_name(s["$ref"])
        return f"[{name}](#{name.lower()})"
    for key in ("anyOf", "oneOf"):
        if key in s:
            return " | ".join(_type(x) for x in s[key])
    if s.get("type") == "array":
        return _type(s.get("items", {})) + "[]"
    if "enum" in s:
        return " | ".join(f"`{v}`" for v in s["enum"])
    return str(s.get("type", "any"))


def _cell(text: str | None) -> str:
    return " ".join((text or "").split()).replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")


def render(doc: dict[str, Any]) -> str:
    """Markdown of an OpenAPI document: one section per operation, then the component schemas."""
    out: list[str] = []
    for path, item in doc.get("paths", {}).items():
        for method in METHODS:
            op = item.get(method)
            if op is None:
                continue
            out.append(f"### `{method.upper()} {path}`\n")
            if op.get("summary"):
                out.append(f"**{_cell(op['summary'])}**\n")
            if op.get("description"):
                out.append(op["description"].strip() + "\n")
            params = op.get("parameters", [])
            if params:
                out.append("| parameter | in | type | required | description |\n|---|---|---|---|---|")
                out += [f"| `{p['name']}` | {p['in']} | {_type(p.get('schema', {}))} | "
                        f"{'yes' if p.get('required') else 'no'} | {_cell(p.get('description'))} |" for p in params]
                out.append("")
            body = op.get("requestBody")
            if body:
                kinds = [f"`{media}`: {_type(c.get('schema', {}))}" for media, c in body.get("content", {}).items()]
                out.append(f"Request body{' (required)' if body.get('required') else ''}: {'; '.join(kinds)}\n")
                if body.get("description"):
                    out.append(body["description"].strip() + "\n")
            responses = op.get("responses", {})
            if responses:
                out.append("| status | description | body |\n|---|---|---|")
                for status, r in responses.items():
                    bodies = [_type(c.get("schema", {})) for c in r.get("content", {}).values() if c.get("schema")]
                    out.append(f"| {status} | {_cell(r.get('description'))} | {', '.join(bodies)} |")
                out.append("")
    schemas = doc.get("components", {}).get("schemas", {})
    if schemas:
        out.append("## Schemas\n")
    for name, s in schemas.items():
        out.append(f"### {name}\n")
        if s.get("description"):
            out.append(_cell(s["description"]) + "\n")
        props = s.get("properties", {})
        if props:
            required = set(s.get("required", []))
            out.append("| field | type | required | description |\n|---|---|---|---|")
            out += [f"| `{k}` | {_type(v)} | {'yes' if k in required else 'no'} | "
                    f"{_cell(v.get('description') or v.get('title'))} |" for k, v in props.items()]
            out.append("")
        elif "enum" in s:
            out.append(f"One of {_type(s)}.\n")
    return "\n".join(out)


def on_page_markdown(markdown: str, page: Any, **_: Any) -> str:
    """MkDocs event: replace each openapi marker with the rendered API."""
    return MARKER.sub(lambda m: render(schema(m.group("app"))), markdown)
