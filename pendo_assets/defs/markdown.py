"""Small markdown renderings for asset metadata (pandas' own needs the `tabulate` package)."""

from __future__ import annotations

import pandas as pd


def frame_preview(frame: pd.DataFrame, rows: int = 5) -> str:
    """The first rows of a frame as a markdown table."""
    if frame.empty:
        return "No rows in this partition."
    head = frame.head(rows)
    lines = [
        "| " + " | ".join(str(c) for c in head.columns) + " |",
        "|" + "---|" * len(head.columns),
    ]
    for record in head.itertuples(index=False):
        lines.append("| " + " | ".join(_cell(v) for v in record) + " |")
    return "\n".join(lines)


def _cell(value: object) -> str:
    text = "" if value is None or (isinstance(value, float) and pd.isna(value)) else str(value)
    text = text.replace("|", "\\|").replace("\n", " ")
    return text if len(text) <= 60 else text[:57] + "..."
