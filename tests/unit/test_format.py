"""The one formatting module every page uses: numbers a quant reads at a glance."""

from __future__ import annotations

import math

import plotly.graph_objects as go
import pytest

from pages._shared import format as fmt


@pytest.mark.parametrize("bad", [None, math.nan, math.inf, -math.inf, "x", True])
def test_missing_values_show_a_dash(bad: object) -> None:
    for f in (fmt.pct, fmt.money, fmt.integer, fmt.num):
        assert f(bad) == fmt.MISSING == "—"


def test_percentages_money_and_counts() -> None:
    assert fmt.pct(0.1234) == "12.34%"
    assert fmt.pct(-0.0523, 1) == "-5.2%"
    assert fmt.pct(0.05, 1, signed=True) == "+5.0%"
    assert fmt.pct(12.5) == "1,250.00%"
    assert fmt.money(1234567.8) == "1,234,567.80"
    assert fmt.money(-3.14159, 3, "USD") == "-3.142 USD"
    assert fmt.integer(15000) == "15,000"
    assert fmt.integer(2.6) == "3"


@pytest.mark.parametrize(
    ("x", "text"),
    [
        (123.456789, "123.5"),
        (0.012345678, "0.01235"),
        (1234567.891, "1,234,568"),
        (0.000012345, "1.234e-05"),
        (2.5e12, "2.500e+12"),
        (0.0, "0"),
        (-0.5, "-0.5000"),
    ],
)
def test_statistics_keep_significant_figures(x: float, text: str) -> None:
    assert fmt.num(x) == text


def test_plural_and_waits_never_mislead() -> None:
    assert fmt.plural(1, "row") == "1 row"
    assert fmt.plural(0, "row") == "0 rows"
    assert fmt.plural(1500, "query", "queries") == "1,500 queries"
    assert fmt.wait(0.01) == "1 s"  # never "0 s"
    assert fmt.wait(59.2) == "1 min"
    assert fmt.wait(125) == "2 min 5 s"
    assert fmt.wait(7200) == "2 h"


def test_headers_are_words() -> None:
    assert fmt.header("max_drawdown") == "Max drawdown"
    assert fmt.header("first") == "First"
    assert fmt.header("ip") == "IP"  # acronyms a reader knows stay upper case
    assert fmt.header("user_id") == "User ID"
    assert fmt.header("cagr") == "CAGR"
    assert fmt.header("api_calls") == "API calls"
    assert fmt.header("tip") == "Tip"


def test_log_axes_use_scientific_notation() -> None:
    fig = go.Figure(go.Scatter(y=[1e-9, 1e-3, 1.0]))
    fmt.log_axis(fig)
    axis = fig.layout.yaxis
    assert axis.type == "log"
    assert axis.exponentformat == "e"  # 1e-09, not SI prefixes like 1n


def test_palette_colours_are_distinct() -> None:
    assert len(set(fmt.PALETTE)) == len(fmt.PALETTE) >= 6
    assert fmt.UP != fmt.DOWN


# --- tables --------------------------------------------------------------------------------


def _config(cfg: dict[str, object], name: str) -> dict[str, object]:
    """The JSON-ready settings Streamlit sends for one column."""
    entry = cfg[name]
    assert isinstance(entry, dict)
    return entry


def _format(cfg: dict[str, object], name: str) -> object:
    type_config = _config(cfg, name)["type_config"]
    assert isinstance(type_config, dict)
    return type_config["format"]


def test_tables_have_word_headers_and_sortable_number_formats() -> None:
    import datetime as dt

    import polars as pl

    df = pl.DataFrame(
        {
            "max_drawdown": [-0.1234, -0.05],
            "final_equity": [1234567.8, 99.5],
            "n_trades": [15000, 3],
            "t_stat": [2.34567, 0.0012345],
            "created_at": [dt.datetime(2026, 1, 2, 3, 4, 5), dt.datetime(2026, 1, 3)],
            "symbol": ["BTC/USDT", "ETH/USDT"],
            "raw": ["{}", "{}"],
        }
    )
    frame, cfg = fmt.table(
        df,
        pct=["max_drawdown"],
        money=["final_equity"],
        ints=["n_trades"],
        sig=["t_stat"],
        times=["created_at"],
        labels={"symbol": "Market"},
        hide=["raw"],
    )
    # numbers stay numbers (the column sorts), the format is the column's
    assert frame["max_drawdown"].to_list() == pytest.approx([-12.34, -5.0])
    assert frame["n_trades"].dtype.is_integer()
    assert _config(cfg, "max_drawdown")["label"] == "Max drawdown"
    assert _format(cfg, "max_drawdown") == "%,.2f%%"
    assert _format(cfg, "final_equity") == "%,.2f"
    assert _format(cfg, "n_trades") == "%,d"
    assert _format(cfg, "t_stat") == "%,.4g"
    created = _config(cfg, "created_at")
    assert created["label"] == "Created at (UTC)"
    assert _format(cfg, "created_at") == "YYYY-MM-DD HH:mm:ss"
    assert _config(cfg, "symbol")["label"] == "Market"
    assert cfg["raw"] is None  # hidden
    assert _config(cfg, "n_trades")["label"] == "N trades"


def test_tables_show_a_dash_for_missing_values() -> None:
    import datetime as dt
    import math as m

    import polars as pl

    df = pl.DataFrame(
        {
            "user": ["alice", None],
            "ret": [0.1, None],
            "count": [1250, None],
            "stat": [m.nan, 1.5],
            "other": [None, 2.0],
            "seen": [dt.datetime(2026, 1, 2, 3, 4, 5), None],
        }
    )
    frame, cfg = fmt.table(df, pct={"ret": 1}, ints=["count"], sig=["stat"], times=["seen"])
    rows = frame.rows()
    assert rows == [
        ("alice", "10.0%", "1,250", fmt.MISSING, fmt.MISSING, "2026-01-02 03:04:05"),
        (fmt.MISSING, fmt.MISSING, fmt.MISSING, "1.500", "2.000", fmt.MISSING),
    ]
    assert _config(cfg, "seen")["label"] == "Seen (UTC)"
    assert all(v is not None for row in rows for v in row)


def test_table_times_are_shown_in_utc() -> None:
    import datetime as dt

    import polars as pl

    paris = dt.timezone(dt.timedelta(hours=1))
    df = pl.DataFrame({"at": [dt.datetime(2026, 1, 2, 4, 0, 0, tzinfo=paris), None]})
    frame, _ = fmt.table(df, times=["at"])
    assert frame["at"].to_list() == ["2026-01-02 03:00:00", fmt.MISSING]


def test_table_refuses_unknown_columns() -> None:
    import polars as pl

    with pytest.raises(KeyError, match="no column 'nope'"):
        fmt.table(pl.DataFrame({"a": [1]}), pct=["nope"])


def test_hidden_columns_are_hidden_and_never_hold_none() -> None:
    import datetime as dt

    import polars as pl

    df = pl.DataFrame(
        {"at": [dt.datetime(2026, 1, 2, 3, 4, 5)], "agent": [None], "x": [1]},
        schema={"at": pl.Datetime("us", "UTC"), "agent": pl.String, "x": pl.Int64},
    )
    frame, cfg = fmt.table(df, times=["at"], hide=["at", "agent"])
    assert cfg["at"] is None
    assert cfg["agent"] is None
    assert frame["agent"].to_list() == [fmt.MISSING]
