"""Item metadata (titles) for explanations, and the JSON shape of one recommended item.

>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> _ = (d / "u.item").write_bytes(b"1|Toy Story (1995)|01-Jan-1995||url|0\\n")
>>> load_titles(str(d / "u.item"))
{'1': 'Toy Story (1995)'}
>>> _ = (d / "movies.csv").write_text('movieId,title,genres\\n2,"Heat, the (1995)",Action\\n')
>>> load_titles(str(d / "movies.csv"))
{'2': 'Heat, the (1995)'}
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from operators.records import Recommendation


def load_titles(path: str) -> dict[str, str]:
    """Item id -> title from MovieLens ``u.item`` (pipe-separated, Latin-1), a CSV with
    ``movieId``/``item_id`` and ``title`` columns, or JSON lines with ``item_id`` and ``title``."""
    p = Path(path)
    if p.name == "u.item":
        lines = p.read_text(encoding="latin-1").splitlines()
        return {f[0]: f[1] for f in (line.split("|") for line in lines) if len(f) > 1}
    if p.suffix == ".csv":
        with p.open(encoding="utf-8", newline="") as f:
            rows = list(csv.DictReader(f))
        key = "movieId" if rows and "movieId" in rows[0] else "item_id"
        return {r[key]: r["title"] for r in rows if r.get(key) and r.get("title")}
    out = {}
    for line in p.read_text(encoding="utf-8").splitlines():
        doc = json.loads(line) if line.strip() else None
        if isinstance(doc, dict) and "item_id" in doc and "title" in doc:
            out[str(doc["item_id"])] = str(doc["title"])
    return out


def recommendation_json(r: Recommendation) -> dict[str, Any]:
    out: dict[str, Any] = {"item_id": r.item_id, "score": r.score, "reason": r.reason}
    if r.related_item is not None:
        out["related_item"] = r.related_item
        if r.related_title is not None:
            out["related_title"] = r.related_title
    if r.features:
        out["features"] = list(r.features)
    return out
