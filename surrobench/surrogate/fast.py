"""One booster for every output: the surrogate's three models merged for one-call prediction.

A single-row XGBoost prediction costs mostly fixed overhead, so a trajectory that asks
three boosters costs three times what it must. The ``learns`` classifier, the ``curves``
regressor and the ``runtime`` regressor are therefore also written as one multi-target
XGBoost model (``fast.ubj``): the same trees, each assigned to its own output, in
XGBoost's documented JSON model schema. Its outputs are raw sums: the classifier's
margin, the curve scores, the two log-seconds. The separate models stay in the
directory; every load checks that the merged model agrees with them.
"""

from __future__ import annotations

import json

import numpy as np
import xgboost as xgb

__all__ = ["merge_boosters", "reference_outputs", "check_agreement", "probe_rows"]

TOLERANCE = 1e-4


def _base_scores(model: dict, logistic: bool) -> list[float]:
    text = str(model["learner"]["learner_model_param"]["base_score"]).strip().strip("[]")
    values = np.array([float(t) for t in text.split(",")], dtype=float)
    if logistic:  # stored as a probability, used as its margin
        values = np.log(values) - np.log1p(-values)
    return values.tolist()


def merge_boosters(parts: list[tuple[xgb.Booster, bool]]) -> xgb.Booster:
    """Merge boosters (``(booster, is_logistic)``) into one identity-link multi-target booster.

    Output columns follow the parts in order, each part contributing its own targets.
    """
    models = [json.loads(bytes(b.save_raw("json"))) for b, _ in parts]
    template = json.loads(bytes(parts[-1][0].save_raw("json")))
    subs, bases, offset = [], [], 0
    for model, (_, logistic) in zip(models, parts):
        gb = model["learner"]["gradient_booster"]
        if gb.get("name") != "gbtree":
            raise ValueError(f"fast model: can merge gbtree boosters only, got {gb.get('name')!r}")
        n_targets = int(model["learner"]["learner_model_param"]["num_target"])
        subs.append((gb["model"], offset))
        bases += _base_scores(model, logistic)
        offset += n_targets
    trees, info, indptr = [], [], [0]
    n_rounds = max(len(m["iteration_indptr"]) - 1 for m, _ in subs)
    for r in range(n_rounds):  # iteration r holds round r of every part that has one
        for m, off in subs:
            ptr = m["iteration_indptr"]
            if r < len(ptr) - 1:
                for t in range(ptr[r], ptr[r + 1]):
                    tree = dict(m["trees"][t])
                    tree["id"] = len(trees)
                    trees.append(tree)
                    info.append(int(m["tree_info"][t]) + off)
        indptr.append(len(trees))
    model = template["learner"]["gradient_booster"]["model"]
    model.update(trees=trees, tree_info=info, iteration_indptr=indptr)
    model["gbtree_model_param"]["num_trees"] = str(len(trees))
    params = template["learner"]["learner_model_param"]
    params["num_target"] = str(offset)
    params["base_score"] = "[" + ",".join(repr(float(np.float32(b))) for b in bases) + "]"
    params["boost_from_average"] = "0"
    template["learner"]["objective"] = {"name": "reg:squarederror", "reg_loss_param": {"scale_pos_weight": "1"}}
    template["learner"]["attributes"] = {}
    merged = xgb.Booster()
    merged.load_model(bytearray(json.dumps(template).encode()))
    merged.set_param({"nthread": 1})
    return merged


def reference_outputs(parts: list[tuple[xgb.Booster, bool]], x: np.ndarray) -> np.ndarray:
    """What the merged booster must answer: the parts' raw outputs side by side."""
    cols = []
    for booster, logistic in parts:
        out = np.asarray(booster.inplace_predict(x, predict_type="margin" if logistic else "value"), dtype=float)
        cols.append(out.reshape(len(x), -1))
    return np.hstack(cols)


def probe_rows(n_features: int, n: int = 64) -> np.ndarray:
    """Fixed probe inputs: values across [-1, 10] in every column, some missing."""
    grid = (np.arange(n * n_features, dtype=float).reshape(n, n_features) * 0.6180339887) % 1.0
    x = grid * 11.0 - 1.0
    x[np.arange(n) % 7 == 3, :] = np.nan
    x[(np.arange(n * n_features).reshape(n, n_features) % 11) == 5] = np.nan
    return x


def check_agreement(merged: xgb.Booster, parts: list[tuple[xgb.Booster, bool]], n_features: int) -> float:
    """Largest difference between the merged booster and its parts on the probe rows."""
    x = probe_rows(n_features)
    got = np.asarray(merged.inplace_predict(x), dtype=float).reshape(len(x), -1)
    want = reference_outputs(parts, x)
    if got.shape != want.shape:
        return float("inf")
    return float(np.max(np.abs(got - want) / np.maximum(1.0, np.abs(want))))
