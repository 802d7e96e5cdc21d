"""The OpenAPI document against the router: every route documented and every documented
route served; the document is structurally sound and the HTML page is script-free."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from starlette.routing import Mount, Route

from core.serve.api_docs import docs_html
from core.serve.openapi import openapi_spec
from core.serve.rest import Resource, api_routes
from lakehouse import SCOPES


def _no_services() -> Any:
    raise AssertionError("building the routes must not touch the services")


def served(base: str = "") -> set[tuple[str, str]]:
    """(method, path under the prefix) of every route api_routes gives."""
    routes = api_routes(base, _no_services)
    index, mount = routes
    assert isinstance(index, Route)
    assert isinstance(mount, Mount)
    assert index.path == mount.path
    out = set()
    for route in mount.routes:
        assert isinstance(route, Route)
        assert isinstance(route.endpoint, Resource)
        out |= {(m, route.path) for m in route.endpoint.methods}
    return out


def documented(spec: dict[str, Any]) -> set[tuple[str, str]]:
    return {(m.upper(), p) for p, item in spec["paths"].items() for m in item}


def test_every_route_is_documented_and_every_documented_route_is_served() -> None:
    spec = openapi_spec("/api/v1")
    assert served() == documented(spec)
    assert len(served()) == 11
    assert served("/hft") == served()
    assert openapi_spec("/hft/api/v1")["servers"] == [{"url": "/hft/api/v1"}]


def _refs(node: object) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return own + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def test_the_document_is_structurally_sound() -> None:
    spec = openapi_spec("/api/v1")
    assert spec["openapi"] == "3.1.0"
    assert {"title", "version", "description"} <= set(spec["info"])
    for ref in _refs(spec):  # every reference resolves inside the document
        node: Any = spec
        for part in ref.removeprefix("#/").split("/"):
            node = node[part]
    for schema in spec["components"]["schemas"].values():
        Draft202012Validator.check_schema(schema)
    ids = [op["operationId"] for item in spec["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids))
    for path, item in spec["paths"].items():
        assert path.startswith("/")
        for method, op in item.items():
            assert "200" in op["responses"], (method, path)
            for param in op.get("parameters", []):
                assert {"name", "in", "schema", "description"} <= set(param)
            scope = op.get("x-scope")
            if scope is None:
                assert op["security"] == [], (method, path)
                continue
            assert scope in SCOPES
            assert op["security"] == [{"bearer": [scope]}]
            for status in ("401", "403", "429"):
                ref = op["responses"][status]["$ref"]
                content = spec["components"]["responses"][ref.rsplit("/", 1)[-1]]["content"]
                assert "application/problem+json" in content
            if method == "post":
                assert "413" in op["responses"]
                assert op["requestBody"]["required"] is True
    assert set(spec["components"]["securitySchemes"]) == {"bearer"}
    assert "Retry-After" in spec["components"]["responses"]["TooManyRequests"]["headers"]


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs += attrs


def test_the_docs_page_is_plain_html_from_the_spec() -> None:
    spec = openapi_spec("/api/v1")
    page = docs_html(spec)
    parser = _Tags()
    parser.feed(page)
    assert "script" not in parser.tags
    assert not [a for a, _ in parser.attrs if a.startswith("on")]  # no inline handlers
    assert not [v for a, v in parser.attrs if a in ("src", "href") and v and "//" in v]
    for path, item in spec["paths"].items():
        for op in item.values():
            assert f'id="{op["operationId"]}"' in page
            assert f"/api/v1{path}" in page
    assert "hft_pat_" in page
    assert re.search(r"<code>symbol</code></td><td>string</td><td>yes", page)


@pytest.mark.parametrize("hostile", ["<script>alert(1)</script>", '"><img src=x onerror=1>'])
def test_the_docs_page_escapes_what_it_shows(hostile: str) -> None:
    spec = openapi_spec("/api/v1")
    page = docs_html({**spec, "info": {**spec["info"], "title": hostile}})
    assert hostile not in page
    assert "&lt;" in page
