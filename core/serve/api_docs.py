"""The REST API's readable page: the OpenAPI document rendered as plain HTML on the server.

No scripts and no outside assets: the app's Content-Security-Policy allows neither inline
scripts nor other origins (inline styles it allows).
"""

from __future__ import annotations

import html
from typing import Any

Spec = dict[str, Any]


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem;
       color: #1f2328; line-height: 1.5; }
code, .path { font-family: ui-monospace, monospace; }
.op { border: 1px solid #d0d7de; border-radius: 6px; padding: 0.5rem 1rem; margin: 1rem 0; }
.method { font-weight: bold; padding: 0.1rem 0.4rem; border-radius: 4px; background: #ddf4ff; }
.method.post { background: #dafbe1; }
table { border-collapse: collapse; margin: 0.5rem 0; }
td, th { border: 1px solid #d0d7de; padding: 0.2rem 0.5rem; text-align: left; vertical-align: top; }
"""


def _schema(spec: Spec, ref: str) -> dict[str, Any]:
    out: dict[str, Any] = spec["components"]["schemas"][ref.rsplit("/", 1)[-1]]
    return out


def _operation(spec: Spec, method: str, path: str, op: dict[str, Any]) -> str:
    prefix = spec["servers"][0]["url"]
    scope = op.get("x-scope")
    parts = [
        f'<section class="op" id="{_e(op["operationId"])}">',
        f'<h3><span class="method {method}">{method.upper()}</span> '
        f'<span class="path">{_e(prefix + path)}</span></h3>',
        f"<p><strong>{_e(op['summary'])}</strong></p>",
        f"<p>Token scope: <code>{_e(scope)}</code></p>" if scope else "<p>No token needed.</p>",
    ]
    if op.get("description"):
        parts.append(f"<p>{_e(op['description'])}</p>")
    rows = [
        (p["name"], p["schema"].get("type", ""), p.get("required", False), p["description"])
        for p in op.get("parameters", [])
    ]
    body = op.get("requestBody")
    if body:
        schema = _schema(spec, body["content"]["application/json"]["schema"]["$ref"])
        need = set(schema.get("required", []))
        rows += [
            (n, s.get("type", ""), n in need, s.get("description", ""))
            for n, s in schema["properties"].items()
        ]
    if rows:
        where = "JSON body fields" if body else "Query parameters"
        parts.append(
            f"<p>{where}:</p><table><tr><th>name</th><th>type</th><th>required</th>"
            "<th>meaning</th></tr>"
        )
        parts += [
            f"<tr><td><code>{_e(n)}</code></td><td>{_e(t)}</td><td>{'yes' if r else ''}"
            f"</td><td>{_e(d)}</td></tr>"
            for n, t, r, d in rows
        ]
        parts.append("</table>")
    answers = []
    for status, resp in op["responses"].items():
        if "$ref" in resp:
            resp = spec["components"]["responses"][resp["$ref"].rsplit("/", 1)[-1]]
        kinds = ", ".join(resp.get("content", {}))
        answers.append(
            f"<li><code>{_e(status)}</code> {_e(resp['description'])}"
            + (f" ({_e(kinds)})" if kinds else "")
            + "</li>"
        )
    parts.append(f"<p>Answers:</p><ul>{''.join(answers)}</ul></section>")
    return "\n".join(parts)


def docs_html(spec: Spec) -> str:
    """A readable page of `spec`: every operation with its scope, inputs and answers."""
    info = spec["info"]
    ops = [(m, p, op) for p, item in spec["paths"].items() for m, op in item.items()]
    toc = "".join(
        f'<li><a href="#{_e(op["operationId"])}">{m.upper()} {_e(p)}</a> {_e(op["summary"])}</li>'
        for m, p, op in ops
    )
    body = "\n".join(_operation(spec, m, p, op) for m, p, op in ops)
    openapi = spec["servers"][0]["url"] + "/openapi.json"
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{_e(info['title'])}</title><style>{_STYLE}</style></head><body>"
        f"<h1>{_e(info['title'])} <small>{_e(info['version'])}</small></h1>"
        f"<p>{_e(info['description'])}</p>"
        f'<p>Machine-readable: <a href="{_e(openapi)}">{_e(openapi)}</a> (OpenAPI 3.1).</p>'
        f"<h2>Routes</h2><ul>{toc}</ul>{body}</body></html>"
    )
