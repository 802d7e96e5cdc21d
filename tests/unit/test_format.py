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


def test_log_axes_use_scientific_notation() -> None:
    fig = go.Figure(go.Scatter(y=[1e-9, 1e-3, 1.0]))
    fmt.log_axis(fig)
    axis = fig.layout.yaxis
    assert axis.type == "log"
    assert axis.exponentformat == "e"  # 1e-09, not SI prefixes like 1n


def test_palette_colours_are_distinct() -> None:
    assert len(set(fmt.PALETTE)) == len(fmt.PALETTE) >= 6
    assert fmt.UP != fmt.DOWN
