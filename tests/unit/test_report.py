"""jobs.report: the page's numbers (totals, Wilson interval, z-test) and its plots, which must
decode as images."""

from __future__ import annotations

import base64
import io
import json
import math
import re
from pathlib import Path
from typing import Any

import matplotlib.image as mpimg
import pytest

from jobs import report
from operators.model.evaluation import window_totals

HOUR = 3_600_000


def _windows(variant: str, hit_every: int, events: int = 600) -> list[dict[str, Any]]:
    rows = [(variant, n * 60_000, {"tested": 1, "hit": int(n % hit_every == 0), "ndcg": 0.5 * (n % hit_every == 0),
                                   "rr": 0.5 * (n % hit_every == 0), "listed": 1, "diversity": 0.7, "novelty": 8.0,
                                   "lagged": 1, "model_lag_ms": 2_000, "ranked": int(n % 4 == 0),
                                   "auc": 0.8 * (n % 4 == 0), "catalogue": 50, "timed": 1, "latency_ms": 300},
                 [f"i{n % 7}"])
            for n in range(events)]
    return window_totals(rows, HOUR)


def test_totals_and_the_z_test_come_from_the_windows_sums() -> None:
    windows = _windows("control", 10) + _windows("treatment", 5)
    by_variant = report.totals(windows)
    assert (by_variant["control"]["tested"], by_variant["control"]["hits"]) == (600, 60)
    assert (by_variant["treatment"]["tested"], by_variant["treatment"]["hits"]) == (600, 120)
    [c] = report.compare(by_variant, "control")
    pooled = 180 / 1200
    z = (0.2 - 0.1) / math.sqrt(pooled * (1 - pooled) * (2 / 600))
    assert (c.n, c.n_control) == (600, 600) and c.z == pytest.approx(z)
    assert c.p_value == pytest.approx(math.erfc(z / math.sqrt(2))) and c.p_value < 1e-5


def test_the_page_has_every_plot_as_a_png_and_the_comparison(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    path.write_text("".join(json.dumps(w) + "\n" for w in _windows("control", 10) + _windows("treatment", 5)))
    out = tmp_path / "report.html"
    assert report.main(["--input", str(path), "--out", str(out)]) == 0
    page = out.read_text()
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(images) == len(report.PLOTS)
    for data in images:
        pixels = mpimg.imread(io.BytesIO(base64.b64decode(data)), format="png")
        assert pixels.shape[0] > 200 and pixels.shape[1] > 500 and pixels.std() > 0   # drawn, not blank
    assert "treatment vs control" in page and "600 / 600" in page and "+0.1000" in page


def test_bad_inputs_exit_2(tmp_path: Path) -> None:
    assert report.main(["--input", str(tmp_path / "absent.jsonl"), "--out", str(tmp_path / "r.html")]) == 2
    empty = tmp_path / "e.jsonl"
    empty.write_text(json.dumps({"kind": "sliding"}) + "\n")
    assert report.main(["--input", str(empty), "--out", str(tmp_path / "r.html")]) == 2
    junk = tmp_path / "j.jsonl"
    junk.write_text(json.dumps({"kind": "tumble", "variant": "v"}) + "\n")
    assert report.main(["--input", str(junk), "--out", str(tmp_path / "r.html")]) == 2
    assert not (tmp_path / "r.html").exists()
