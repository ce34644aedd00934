"""Shared helpers of the benchmark scripts: a results folder, a table printer, a JSON writer."""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

RESULTS = Path(__file__).resolve().parent / "results"


def print_table(title: str, columns: list[str], rows: list[list[object]]) -> None:
    table = Table(title=title, title_justify="left")
    for c in columns:
        table.add_column(c, justify="right" if c != columns[0] else "left")
    for row in rows:
        table.add_row(*[f"{v:.3f}" if isinstance(v, float) else str(v) for v in row])
    Console().print(table)


def write_json(name: str, payload: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    payload = {
        "benchmark": name,
        "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "machine": {"python": platform.python_version(), "cpu": platform.processor() or platform.machine()},
        **payload,
    }
    path = RESULTS / f"{name}.json"
    path.write_text(
        json.dumps(payload, indent=2, default=lambda o: o.item() if isinstance(o, np.generic) else str(o))
    )
    print(f"wrote {path}")
    return path
