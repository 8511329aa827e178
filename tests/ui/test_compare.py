"""The Models tab's comparison (``viewmodels/compare.py``): a note when the models were
validated on different splits, best values in the legend and the table, hyper-parameter
columns."""

from __future__ import annotations

import re

from smalltrain.ui.viewmodels.compare import Compared, comparison_html

CURVE_A = [(1.0, 0.9), (2.0, 0.5), (3.0, 0.6)]  # best 0.5 at epoch 2, last 0.6
CURVE_B = [(1.0, 0.8), (2.0, 0.7), (3.0, 0.4)]


def _audio(name: str, points: list[tuple[float, float]], **cfg: object) -> Compared:
    config = {"epochs": 3, "batch_size": 4, "learning_rate": 0.001, "latent_dim": 16,
              "model_width": 8, "seed": 0, "split_seed": None, "val_fraction": 0.2,
              "model_name": name, **cfg}  # fmt: skip
    return Compared(name, points, config, "audio")


def test_best_values_in_legend_and_table_with_hyper_parameters() -> None:
    html = comparison_html([_audio("a", CURVE_A), _audio("b", CURVE_B, learning_rate=0.003)],
                           "val/sc")  # fmt: skip
    legend = re.findall(r'<div class="st-legend">(.*?)</div>', html)[0]
    assert "best 0.5 @ epoch 2" in legend  # not the last value, 0.6
    assert "best 0.4 @ epoch 3" in legend
    table = html[html.index('<table class="st-table st-compare">') :]
    headers = re.findall(r"<th>(.*?)</th>", table)
    assert headers[:4] == ["model", "best val/sc", "at epoch", "validated on"]
    assert {"epochs", "batch_size", "learning_rate", "latent_dim", "seed"} <= set(headers)
    assert "model_name" not in headers
    rows = re.findall(r"<tr><td>(.*?)</tr>", table)
    assert ">0.5<" in f">{rows[0]}" or "<td>0.5</td>" in rows[0]
    assert "0.003" in rows[1]
    assert "different splits" not in html  # one split (seed 0) for both


def test_different_splits_are_noted_and_higher_is_better_for_map() -> None:
    html = comparison_html([_audio("s0", CURVE_A, seed=0), _audio("s1", CURVE_B, seed=1)], "val/sc")
    assert "validated on different splits" in html
    assert "s0: split seed 0" in html
    assert "s1: split seed 1" in html
    # a split_seed held fixed while the seed varies (what a seed sweep does): one split
    same = comparison_html(
        [_audio("t0", CURVE_A, seed=0, split_seed=7), _audio("t1", CURVE_B, seed=1, split_seed=7)],
        "val/sc",
    )
    assert "different splits" not in same
    detect = [Compared("d", CURVE_A, {"base_model": "yolo11n.yaml", "epochs": 3}, "detect")]
    mapped = comparison_html(detect, "val/mAP50")
    assert "higher is better" in mapped
    assert "best 0.9 @ epoch 1" in mapped
    assert "the dataset&#x27;s val split" in mapped or "the dataset's val split" in mapped
