"""How pages show things: user text (md_escape), numbers, headers, axes and colours."""

from __future__ import annotations

import math
import re
import string
from typing import Any

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


# --- numbers -------------------------------------------------------------------------------
# One place decides how every page shows a number, so a return reads the same on Regimes as on
# the backtest table. Each function takes None, NaN or a non-number and shows MISSING.

MISSING = "—"


def _finite(x: object) -> float | None:
    if x is None or isinstance(x, bool):
        return None
    try:
        v = float(x)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def pct(x: object, digits: int = 2, *, signed: bool = False) -> str:
    """A fraction as a percentage: 0.1234 -> "12.34%" (returns, CAGR, drawdown, volatility)."""
    v = _finite(x)
    if v is None:
        return MISSING
    return f"{v * 100:{'+' if signed else ''},.{digits}f}%"


def money(x: object, digits: int = 2, unit: str = "") -> str:
    """Thousands separators and fixed decimals: 1234567.8 -> "1,234,567.80"."""
    v = _finite(x)
    if v is None:
        return MISSING
    text = f"{v:,.{digits}f}"
    return f"{text} {unit}" if unit else text


def integer(x: object) -> str:
    """A count with thousands separators: 15000 -> "15,000"."""
    v = _finite(x)
    return MISSING if v is None else f"{round(v):,}"


def num(x: object, sig: int = 4) -> str:
    """A statistic to `sig` significant figures; scientific notation outside 1e-4 .. 1e9."""
    v = _finite(x)
    if v is None:
        return MISSING
    if v == 0:
        return "0"
    mag = math.floor(math.log10(abs(v)))
    if mag < -4 or mag >= 9:
        return f"{v:.{sig - 1}e}"
    decimals = max(sig - 1 - mag, 0)
    return f"{v:,.{decimals}f}"


def plural(n: int, noun: str, many: str | None = None) -> str:
    """ "1 row", "2 rows", "1,500 rows" (never "1 rows")."""
    word = noun if n == 1 else (many or noun + "s")
    return f"{n:,} {word}"


def wait(seconds: float) -> str:
    """A wait to show a user, rounded up so it never says "0 s": "1 s", "2 min 5 s"."""
    s = max(1, math.ceil(seconds))
    if s < 60:
        return f"{s} s"
    m, s = divmod(s, 60)
    if m < 60:
        return f"{m} min {s} s" if s else f"{m} min"
    h, m = divmod(m, 60)
    return f"{h} h {m} min" if m else f"{h} h"


def header(name: str) -> str:
    """A column header in words: "max_drawdown" -> "Max drawdown"; short acronyms stay."""
    words = name.replace("_", " ").strip()
    return words[:1].upper() + words[1:] if words else name


def log_axis(fig: Any, axis: str = "y", **kwargs: Any) -> None:
    """A log axis of a Plotly figure with scientific tick labels (1e-06), not SI (1µ)."""
    update = fig.update_yaxes if axis == "y" else fig.update_xaxes
    update(type="log", exponentformat="e", showexponent="all", **kwargs)


PALETTE = (
    "#29b5e8",  # the theme's primary colour first
    "#f5a623",
    "#7ed321",
    "#d0021b",
    "#bd10e0",
    "#50e3c2",
    "#8b572a",
    "#9b9b9b",
)
"""Distinct colours for series that are compared on one chart, in this order."""
UP, DOWN = "#26a69a", "#ef5350"
"""Candle and volume colours: the same two on every price chart."""
