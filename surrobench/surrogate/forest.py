"""The merged booster's trees as flat numpy arrays: the same sums as XGBoost, without its call overhead.

A single-row XGBoost prediction costs a few hundred microseconds, nearly all of it fixed
overhead; a simulated day asks for ten thousand of them. :class:`Forest` exports the trees
of an identity-link gbtree booster once (from XGBoost's documented JSON model schema, no
pickle) and walks all of them at once with a few numpy steps per depth level:

* every tree is padded to a complete binary tree of the forest's depth (a leaf above the
  bottom is copied into both halves of its subtree, so the padded splits never matter);
* every split is decided for all trees at once: XGBoost sends a value left when
  ``float32(x) < threshold`` and a missing value (NaN) to its node's default side, so a
  missing value is read as ``-inf`` at default-left nodes and ``+inf`` at the others;
* leaf values are added per output in tree order, starting from the base score, in float32
  — the order and precision of XGBoost's CPU predictor, so the sums agree bit for bit.

>>> import xgboost as xgb
>>> x = np.array([[0.0, 1.0], [1.0, np.nan], [0.5, 0.0]] * 4)
>>> booster = xgb.train({"max_depth": 2, "nthread": 1}, xgb.DMatrix(x, label=x[:, 0] + 1), 5)
>>> forest = Forest.from_booster(booster)
>>> bool(np.array_equal(forest.predict(x)[:, 0], booster.inplace_predict(x)))
True
"""

from __future__ import annotations

import json

import numpy as np

__all__ = ["Forest"]

_IDENTITY = ("reg:squarederror", "reg:absoluteerror", "reg:pseudohubererror", "reg:quantileerror")
_MAX_DEPTH = 16


def _base_scores(learner: dict, n_targets: int) -> np.ndarray:
    text = str(learner["learner_model_param"]["base_score"]).strip().strip("[]")
    values = np.array([float(t) for t in text.split(",")], dtype=np.float32)
    if values.size == 1:
        values = np.repeat(values, n_targets)
    if values.size != n_targets:
        raise ValueError(f"forest: base_score has {values.size} values for {n_targets} outputs")
    return values


def _depth(left: list[int], right: list[int]) -> int:
    deepest, stack = 0, [(0, 0)]
    while stack:
        node, level = stack.pop()
        if left[node] == -1:
            deepest = max(deepest, level)
        else:
            stack += [(left[node], level + 1), (right[node], level + 1)]
    return deepest


class Forest:
    """Flat arrays of a gbtree booster's trees; :meth:`predict` equals ``inplace_predict``."""

    def __init__(self, feature: np.ndarray, threshold: np.ndarray, leaf: np.ndarray, tree_target: np.ndarray,
                 base: np.ndarray, n_features: int):
        self.feature = feature  # (T, 2**D - 1): split feature, + n_features where missing goes right
        self.threshold = threshold  # (T, 2**D - 1) float32
        self.leaf = leaf  # (T, 2**D) float32
        self.tree_target = tree_target  # (T,) output of each tree
        self.base = base  # (n_outputs,) float32
        self.depth = leaf.shape[1].bit_length() - 1
        self.n_features = int(n_features)
        self.n_outputs = len(base)
        n_trees, n_inner = feature.shape
        # Walk T + 1 + n_outputs trees: the real ones, then one-leaf trees holding 0.0 and each base score.
        consts = np.concatenate([[np.float32(0.0)], base]).astype(np.float32)
        self._leaves = np.concatenate([leaf, np.repeat(consts[:, None], n_inner + 1, axis=1)]).ravel()
        self._col = np.concatenate([feature, np.zeros((len(consts), n_inner), np.intp)]).ravel()
        self._thr = np.concatenate([threshold, np.zeros((len(consts), n_inner), np.float32)]).ravel()
        walked = n_trees + len(consts)
        tree, slot = np.divmod(np.arange(walked * n_inner, dtype=np.intp), max(n_inner, 1))
        last = 2 * slot + 1 >= n_inner  # children are leaves: index the leaf array instead
        child = np.where(last, tree * (n_inner + 1) + 2 * slot + 1 - n_inner, tree * n_inner + 2 * slot + 1)
        self._child = child.astype(np.int32)
        self._root = np.arange(walked, dtype=np.intp) * (n_inner if self.depth else 1)
        self._fill = np.concatenate([np.full(n_features, -np.inf), np.full(n_features, np.inf)]).astype(np.float32)
        # Summation plan: column k lists base score k, then output k's trees in order, padded with +0.0.
        counts = np.bincount(tree_target, minlength=self.n_outputs)
        plan = np.full((self.n_outputs, 1 + int(counts.max(initial=0))), n_trees, dtype=np.intp)
        for k in range(self.n_outputs):
            trees = np.flatnonzero(tree_target == k)
            plan[k, 0] = n_trees + 1 + k
            plan[k, 1 : 1 + len(trees)] = trees
        self._plan = np.ascontiguousarray(plan.T)

    @classmethod
    def from_booster(cls, booster) -> "Forest":
        """Export an identity-link gbtree booster (``ValueError`` for anything this cannot replay exactly)."""
        model = json.loads(bytes(booster.save_raw("json")))
        return cls.from_json(model)

    @classmethod
    def from_json(cls, model: dict) -> "Forest":
        """As :meth:`from_booster`, from XGBoost's JSON model document."""
        learner = model["learner"]
        objective = learner["objective"]["name"]
        if objective not in _IDENTITY:
            raise ValueError(f"forest: needs an identity-link objective, got {objective!r}")
        gb = learner["gradient_booster"]
        if gb.get("name") != "gbtree":
            raise ValueError(f"forest: needs a gbtree booster, got {gb.get('name')!r}")
        params = learner["learner_model_param"]
        n_features = int(params["num_feature"])
        n_targets = max(int(params.get("num_target", 1)), int(params.get("num_class", 0)), 1)
        trees = gb["model"]["trees"]
        targets = np.asarray(gb["model"]["tree_info"], dtype=np.intp).reshape(len(trees))
        if len(trees) and (targets.min() < 0 or targets.max() >= n_targets):
            raise ValueError("forest: tree_info names an output the model does not have")
        depth = max((_depth(t["left_children"], t["right_children"]) for t in trees), default=0)
        if depth > _MAX_DEPTH:
            raise ValueError(f"forest: trees {depth} levels deep, at most {_MAX_DEPTH} supported")
        n_inner = 2**depth - 1
        feature = np.zeros((len(trees), n_inner), dtype=np.intp)
        threshold = np.zeros((len(trees), n_inner), dtype=np.float32)
        leaf = np.zeros((len(trees), n_inner + 1), dtype=np.float32)
        for t, tree in enumerate(trees):
            if int(tree["tree_param"].get("size_leaf_vector", "1")) > 1:
                raise ValueError("forest: vector-leaf (multi_output_tree) models are not supported")
            left, right = tree["left_children"], tree["right_children"]
            cond = np.asarray(tree["split_conditions"], dtype=np.float32)
            split, default_left, kind = tree["split_indices"], tree["default_left"], tree["split_type"]
            stack = [(0, 0, 0)]  # (node, padded slot, level)
            while stack:
                node, slot, level = stack.pop()
                if left[node] == -1 and level == depth:
                    leaf[t, slot - n_inner] = cond[node]
                    continue
                if left[node] == -1:  # a leaf above the bottom: both halves reach it
                    stack += [(node, 2 * slot + 1, level + 1), (node, 2 * slot + 2, level + 1)]
                    continue
                if int(kind[node]) != 0:
                    raise ValueError("forest: categorical splits are not supported")
                if not np.isfinite(cond[node]) or not 0 <= int(split[node]) < n_features:
                    raise ValueError(f"forest: tree {t} has a split it cannot replay (feature {split[node]}, "
                                     f"threshold {cond[node]})")
                feature[t, slot] = int(split[node]) + (0 if int(default_left[node]) else n_features)
                threshold[t, slot] = cond[node]
                stack += [(left[node], 2 * slot + 1, level + 1), (right[node], 2 * slot + 2, level + 1)]
        return cls(feature, threshold, leaf, targets, _base_scores(learner, n_targets), n_features)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Raw sums of shape (n, n_outputs), float32, for rows ``x`` (NaN = missing).

        Rows are walked one at a time (each costs tens of microseconds): for many rows at
        once XGBoost's own batch prediction is faster, and gives the same numbers.
        """
        x = np.asarray(x, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise ValueError(f"x: must have shape (n, {self.n_features}), got {x.shape}")
        out = np.empty((len(x), self.n_outputs), dtype=np.float32)
        for i, row in enumerate(x):
            out[i] = self._row(row)
        return out

    def _row(self, x: np.ndarray) -> np.ndarray:
        both = np.concatenate((x, x))
        both = np.where(np.isnan(both), self._fill, both)  # missing: -inf where it goes left, +inf where right
        nxt = self._child + (both.take(self._col) >= self._thr)  # NaN-free, so >= is "not x < threshold"
        pos = self._root
        for _ in range(self.depth):
            pos = nxt.take(pos)
        terms = self._leaves.take(pos).take(self._plan)  # (1 + trees per output, n_outputs)
        return np.add.accumulate(terms, axis=0)[-1]  # in order, in float32, as XGBoost adds them
