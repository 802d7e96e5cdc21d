"""Small display helpers."""

from __future__ import annotations

import re
import string

_PUNCTUATION = frozenset(string.punctuation)
# GFM turns www., http(s)://, mailto:, xmpp: and name@host into links even when escaped; an
# empty `:red[]` (Streamlit's null directive, renders nothing) splits them.
_AUTOLINK = re.compile(r"(?i)(www|https?|mailto|xmpp)(?=\\[.:])|(\\@)")


def md_escape(text: str) -> str:
    """User text for anything Streamlit renders as markdown (captions, metrics, alerts, labels,
    toasts, tab and expander titles), so it shows exactly as typed.

    Every ASCII punctuation character is backslash-escaped (CommonMark shows those literally):
    emphasis, links, HTML, lists, headings, math, `:color[...]`, `:material/...:` and emoji
    shortcodes all stay text. Not for plain-text elements (st.text, st.code, dataframes,
    select options), which would show the backslashes.
    """
    escaped = "".join("\\" + c if c in _PUNCTUATION else c for c in text)
    escaped = _AUTOLINK.sub(lambda m: m.group(1) + ":red[]" if m.group(1) else "\\@:red[]", escaped)
    return " ".join(escaped.splitlines())


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")
