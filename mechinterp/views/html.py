"""The HTML kit every page of the lab shares: a self-contained page shell, tables, inlined figures.

Pages open from file:// with no network: images are inlined as data URLs, styles are in the page.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path

from mechinterp.formats.reading import read_json


def load_json(path: Path) -> dict | None:
    """A results file a page shows: None when it is missing (that part of the page is left out),
    one error naming it when it is damaged."""
    return read_json(path, "re-run the stage that writes it") if path.exists() else None


def img(path: Path, alt: str) -> str:
    if not path.exists():
        return ""
    data = base64.b64encode(path.read_bytes()).decode()
    alt = html.escape(alt)
    return f'<figure><img alt="{alt}" src="data:image/png;base64,{data}"><figcaption>{alt}</figcaption></figure>'


def table(rows: list[dict]) -> str:
    if not rows:
        return ""
    keys = list(rows[0])
    head = "".join(f"<th>{html.escape(str(k))}</th>" for k in keys)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(fmt(r.get(k)))}</td>" for k in keys) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, list):
        return ", ".join(fmt(x) for x in v)
    return "" if v is None else str(v)


REPORT_CSS = ("body{font:14px system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}"
              "table{border-collapse:collapse;margin:.8em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}"
              "img{max-width:100%}figure{margin:1em 0}pre{background:#f5f5f5;padding:.6em;white-space:pre-wrap}")
"""The reports' style: a readable column, tables with borders, figures at most the column's width."""


def page(parts: list[str], title: str = "mechinterp report", css: str = REPORT_CSS) -> str:
    """A self-contained page of the given HTML parts (figures inlined by img), styled by css."""
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{css}</style></head><body>" + "\n".join(parts) + "</body></html>")
