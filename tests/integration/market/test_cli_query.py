from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from core.cli import main


def test_query_prints_writes_and_refuses(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["query", "SELECT symbol, count(*) AS n FROM bars GROUP BY 1 ORDER BY 1"]) == 0
    out = capsys.readouterr()
    assert "SP500" in out.out
    assert "row(s) in" in out.err
    csv = tmp_path / "daily.csv"
    assert main(["query", "SELECT * FROM daily WHERE symbol = 'GOOG'", "--csv", str(csv)]) == 0
    assert pl.read_csv(csv).height > 2000
    pq = tmp_path / "bars.parquet"
    assert main(["query", "SELECT * FROM bars", "--parquet", str(pq), "--max-rows", "7"]) == 0
    assert pl.read_parquet(pq).height == 7
    capsys.readouterr()
    assert main(["query", "SELECT * FROM read_csv('/etc/passwd')"]) == 1
    assert "read_csv" in capsys.readouterr().err


def test_query_errors_and_renames_are_reported(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["query", "SELEC 1"]) == 1
    err = capsys.readouterr().err
    assert "could not parse" in err
    assert str(data_dir) not in err
    assert main(["query", "SELECT 1 AS x, 2 AS x"]) == 0
    out = capsys.readouterr()
    assert "renamed to 'x_2'" in out.err
