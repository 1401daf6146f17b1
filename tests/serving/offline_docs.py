"""A check both servers' tests share: the docs pages load every script and style from the server itself."""

from __future__ import annotations

import re
from collections.abc import Callable

import httpx


def assert_docs_offline(get: Callable[[str], httpx.Response]) -> None:
    """``/docs`` and ``/redoc`` answer, every asset they name is a path of this server that answers, no CDN."""
    for page in ("/docs", "/redoc"):
        r = get(page)
        assert r.status_code == 200
        refs = re.findall(r'(?:src|href)="([^"]+)"', r.text)
        assert refs, page
        for ref in refs:
            assert ref.startswith("/"), f"{page} loads {ref} from outside the server"
            asset = get(ref)
            assert asset.status_code == 200 and len(asset.content) > 0, ref
        assert "cdn" not in r.text and "fonts.googleapis" not in r.text
    assert "SwaggerUIBundle" in get("/docs-assets/swagger-ui-bundle.js").text
