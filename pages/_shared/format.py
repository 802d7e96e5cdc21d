"""How pages show things: user text (md_escape), numbers, headers, tables, axes and colours.

Numbers: `pct(0.1234)` "12.34%", `money(x)` "1,234.50", `integer(n)` "15,000", `num(x)` four
significant figures, `plural(1, "row")` "1 row", `wait(s)` never "0 s", `MISSING` "—" for
None/NaN. Headers: `header("max_drawdown")` "Max drawdown".

Tables: `table(df, pct=[...], money=[...], ints=[...], sig=[...], times=[...], labels={...},
help={...}, hide=[...])` returns `(frame, column_config)` for `st.dataframe`; `show_table(df,
...)` renders it (no index). Every column gets a word header (`labels` overrides it, `help` adds
a tooltip, `hide` hides it). Listed columns stay numbers and sort as numbers, shown as
percentages (fractions, scaled by 100), money (2 decimals), counts with separators, 4
significant figures, or UTC times to the second. `pct` and `money` also take `{column:
decimals}`. A column holding None/NaN is shown as text with "—" in those cells (it then sorts as
text). Example:

    frame, config = fmt.table(stats, pct=["cagr", "max_drawdown"], ints=["n_trades"])
    st.dataframe(frame, column_config=config, hide_index=True)
"""

from __future__ import annotations

import datetime as dt
import math
import re
import string
from collections.abc import Iterable, Mapping
from typing import Any

import polars as pl

from lakehouse.errors import wait_text

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
    """A wait to show a user, rounded up so it never says "0 s": "1 s", "2 min 5 s". The
    lakehouse's messages (throttling, quotas) use the same rule."""
    return wait_text(seconds)


ACRONYMS = frozenset(
    {"ip", "id", "url", "utc", "sql", "api", "cagr", "vwap", "ohlc", "ohlcv", "bic", "acf", "cpu"}
)
"""Words header() writes in capitals."""


def header(name: str) -> str:
    """A column header in words: "max_drawdown" -> "Max drawdown", "user_id" -> "User ID";
    words in ACRONYMS are capitalised, other upper-case letters stay."""
    words = [w.upper() if w.lower() in ACRONYMS else w for w in name.replace("_", " ").split()]
    text = " ".join(words)
    return text[:1].upper() + text[1:] if text else name


# --- tables --------------------------------------------------------------------------------

TIME_FORMAT = "YYYY-MM-DD HH:mm:ss"  # Streamlit (moment.js) spelling of "%Y-%m-%d %H:%M:%S"
_pct, _money = pct, money  # table() takes arguments of the same names


def _digits(spec: Mapping[str, int] | Iterable[str], default: int) -> dict[str, int]:
    if isinstance(spec, Mapping):
        return dict(spec)
    return {name: default for name in spec}


def _utc_text(value: object) -> str:
    if not isinstance(value, dt.datetime):
        return MISSING
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC)
    return value.strftime("%Y-%m-%d %H:%M:%S")


def _plain_number(v: object) -> str:
    return f"{v}" if isinstance(v, int) else num(v)


def _yes_no(v: object) -> str:
    return MISSING if v is None else ("yes" if v else "no")


def _plain_text(v: object) -> str:
    return MISSING if v is None else str(v)


def table(
    df: pl.DataFrame,
    *,
    pct: Mapping[str, int] | Iterable[str] = (),
    money: Mapping[str, int] | Iterable[str] = (),
    ints: Iterable[str] = (),
    sig: Iterable[str] = (),
    times: Iterable[str] = (),
    labels: Mapping[str, str] | None = None,
    help: Mapping[str, str] | None = None,  # a tooltip per column
    hide: Iterable[str] = (),
) -> tuple[pl.DataFrame, dict[str, Any]]:
    """A Polars frame ready for `st.dataframe(frame, column_config=config, hide_index=True)`:
    word headers, per-column number formats, UTC times and "—" for missing values."""
    import streamlit as st  # the engine's tests import this module without a Streamlit run

    pct_digits, money_digits = _digits(pct, 2), _digits(money, 2)
    ints, sig, times, hide = set(ints), set(sig), set(times), set(hide)
    labels, tips = dict(labels or {}), dict(help or {})
    listed = set(pct_digits) | set(money_digits) | ints | sig | times | hide | set(labels)
    for name in sorted(listed | set(tips)):
        if name not in df.columns:
            raise KeyError(f"no column {name!r} in this table; it has {', '.join(df.columns)}")

    columns: list[pl.Series] = []
    config: dict[str, Any] = {}
    for name in df.columns:
        col = df[name]
        label = labels.get(name) or header(name) + (" (UTC)" if name in times else "")
        tip = tips.get(name)
        missing = col.null_count() > 0 or (col.dtype.is_float() and bool(col.is_nan().any()))
        text: Any = None  # how one value reads when the column has to become text
        number_format = None
        if name in pct_digits:
            d = pct_digits[name]
            number_format, text = f"%,.{d}f%%", lambda v, d=d: _pct(v, d)
            if not missing:
                col = col * 100
        elif name in money_digits:
            d = money_digits[name]
            number_format, text = f"%,.{d}f", lambda v, d=d: _money(v, d)
        elif name in ints:
            number_format, text = "%,d", integer
        elif name in sig:
            number_format, text = "%,.4g", num
        elif name in times:
            text = _utc_text
            if isinstance(col.dtype, pl.Datetime) and col.dtype.time_zone is not None:
                col = col.dt.convert_time_zone("UTC")
        elif col.dtype.is_numeric():
            text = _plain_number
        elif col.dtype == pl.Boolean:
            text = _yes_no
        else:
            text = _plain_text

        if name in hide:  # hidden, but never "None" if a reader shows it
            if missing:
                col = pl.Series(name, [text(v) for v in col.to_list()], dtype=pl.String)
            config[name] = None
        elif missing:
            col = pl.Series(name, [text(v) for v in col.to_list()], dtype=pl.String)
            numeric = number_format is not None or df[name].dtype.is_numeric()
            config[name] = st.column_config.TextColumn(
                label, help=tip, alignment="right" if numeric else None
            )
        elif name in times:
            config[name] = st.column_config.DatetimeColumn(label, help=tip, format=TIME_FORMAT)
        elif number_format is not None:
            config[name] = st.column_config.NumberColumn(label, help=tip, format=number_format)
        else:
            config[name] = st.column_config.Column(label, help=tip)
        columns.append(col)
    return pl.DataFrame(columns), config


def show_table(df: pl.DataFrame, **kwargs: Any) -> Any:
    """Render `table(df, **kwargs)` with `st.dataframe` (no index); returns the element."""
    import streamlit as st

    frame, config = table(df, **kwargs)
    return st.dataframe(frame, column_config=config, hide_index=True)


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
