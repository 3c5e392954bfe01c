"""An isolation forest as plain arrays: grown by scikit-learn, scored by a
vectorised numpy traversal, stored without pickle.

Every tree's nodes are copied into flat arrays, one tree after the other; a
leaf is its own child, so every reading walks the same number of levels. Each
node keeps the path length of a reading that ends there (its depth plus the
expected depth of the training readings it still holds), so scoring is a few
gathers per level and a sum over the trees, scikit-learn's arithmetic in its
order: `scores(features, beyond=False)` is its `score_samples`, negated, to the
bit.

A tree grown without a reading cannot isolate it any faster than the training
readings nearest to it: far beyond the training range, a reading scores like
the most extreme training readings, however far out it is. Each node therefore
also keeps the range [low, high] its training readings spanned on its split
feature, over which the split was drawn uniformly. A reading outside that range by
`gap` would have been isolated there, had it been among them, with probability
gap / (high − low + gap); `scores` (beyond=True) counts those chances, so the
score keeps growing beyond the training range, and is scikit-learn's for a
reading inside every range on its path.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn.ensemble import IsolationForest

FloatArray = npt.NDArray[np.float64]
Float32Array = npt.NDArray[np.float32]
Int8Array = npt.NDArray[np.int8]
Int16Array = npt.NDArray[np.int16]
IntArray = npt.NDArray[np.intp]
BoolArray = npt.NDArray[np.bool_]

# The nodes' arrays and their types.
NODE_TYPES = {
    "feature": np.int8,
    "threshold": np.float32,
    "bounds": np.float32,
    "children": np.int16,
    "path_length": np.float64,
}
# Readings times trees traversed at once: bounds the traversal's memory.
CHUNK_CELLS = 1 << 20
MAX_SAMPLES = 1 << 14  # node ids (< 2 × samples) fit int16


@dataclass(frozen=True, slots=True)
class Trees:
    """The nodes of every tree, one tree after the other."""

    root: IntArray  # each tree's first node
    feature: Int8Array
    threshold: Float32Array  # a reading goes left when its feature is ≤ it
    # (nodes × 2) the range [low, high] of the node's training readings on its
    # feature as (−low, high), +inf at leaves: the bound on the side a reading
    # goes to is one gather, as its child is, and ±value − bound its gap.
    bounds: Float32Array
    children: Int16Array  # (nodes × 2) left and right, counted from the root
    path_length: FloatArray  # of a reading that ends at the node
    levels: int  # below the root, at most: how far every reading walks
    denominator: float  # trees × the expected path length of a tree's sample

    @classmethod
    def grow(
        cls, features: Float32Array, *, trees: int, samples: int, seed: int
    ) -> Trees:
        """Grow an isolation forest on `features` (readings × features)."""
        forest = IsolationForest(
            n_estimators=trees,
            max_samples=min(samples, features.shape[0]),
            random_state=seed,
        ).fit(features)
        return cls.of(forest, features)

    @classmethod
    def of(cls, forest: IsolationForest, features: Float32Array) -> Trees:
        """The arrays of a scikit-learn forest fitted on `features`."""
        grown = [e.tree_ for e in forest.estimators_]
        inner = np.concatenate([t.children_left >= 0 for t in grown])
        # Inner nodes' ranges start empty, leaves' span everything.
        empty = np.where(inner, -np.inf, np.inf).astype(np.float32)
        sizes = [t.node_count for t in grown]
        trees = cls(
            root=np.cumsum([0, *sizes[:-1]]).astype(np.intp),
            feature=np.concatenate([np.maximum(t.feature, 0) for t in grown]).astype(
                np.int8
            ),
            threshold=np.concatenate([round_down(t.threshold) for t in grown]),
            bounds=np.stack([empty, empty], axis=1),
            children=np.concatenate([_children(t) for t in grown]),
            path_length=np.concatenate([_path_lengths(t) for t in grown]),
            levels=max(int(t.max_depth) for t in grown),
            denominator=len(grown) * float(average_path_length(forest.max_samples_)),
        )
        trees._span(features, np.array(forest.estimators_samples_), inner)
        return trees

    def _span(self, features: Float32Array, drawn: IntArray, inner: BoolArray) -> None:
        """Fold into each `inner` node's range its training readings' values:
        every tree's sample (`drawn`, trees × readings) walked down it."""
        for value, _, turn in self._walk(features, drawn):
            at = turn >> 1
            at, value = at[inner[at]], value[inner[at]]
            np.maximum.at(self.bounds[:, 0], at, -value)
            np.maximum.at(self.bounds[:, 1], at, value)

    @property
    def nbytes(self) -> int:
        """The bytes the arrays hold."""
        return sum(array.nbytes for array in self.arrays().values())

    def arrays(self) -> dict[str, npt.NDArray[Any]]:
        """Every field as an array (the numbers 0-d), to store."""
        return {f.name: np.asarray(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, npt.NDArray[Any]]) -> Trees:
        """The trees `arrays` stored; ValueError unless the nodes fit together."""
        nodes = {name: arrays[name] for name in NODE_TYPES}
        size = nodes["feature"].shape[0]
        root = arrays["root"]
        if (
            any(
                a.dtype != NODE_TYPES[n] or a.shape[0] != size for n, a in nodes.items()
            )
            or not ((0 <= root) & (root < size)).all()
        ):
            raise ValueError("the nodes' arrays do not fit together")
        return cls(
            root=root.astype(np.intp),
            feature=nodes["feature"],
            threshold=nodes["threshold"],
            bounds=nodes["bounds"],
            children=nodes["children"],
            path_length=nodes["path_length"],
            levels=int(arrays["levels"]),
            denominator=float(arrays["denominator"]),
        )

    def scores(self, features: Float32Array, *, beyond: bool = True) -> FloatArray:
        """The anomaly score in (0, 1] of each row of `features`,
        2^(−mean path length / expected path length); `beyond`: counting the
        chances of isolation outside the nodes' training ranges."""
        n = features.shape[0]
        lengths = np.empty(n)
        step = max(CHUNK_CELLS // self.root.size, 1)
        for start in range(0, n, step):
            chunk = slice(start, min(start + step, n))
            lengths[chunk] = self._path_lengths(features[chunk], beyond)
        scores: FloatArray = 2.0 ** (-(lengths / self.denominator))
        return scores

    def _path_lengths(self, features: Float32Array, beyond: bool) -> FloatArray:
        readings = np.arange(features.shape[0])
        every = np.broadcast_to(readings, (self.root.size, readings.size))
        length = np.zeros(every.shape)
        remaining = np.ones(every.shape)  # not isolated beyond a range yet
        bounds = self.bounds.ravel()
        turn = 2 * self.root[:, None] + np.zeros_like(every)  # a lone root's
        steps = enumerate(self._walk(features, every), start=1)
        for depth, (value, right, turn) in steps:
            if beyond:  # (leaves span everything: nothing is beyond them)
                sign = right * np.float32(2) - np.float32(1)
                gap = (value * sign - bounds[turn]).ravel()
                out = np.flatnonzero(gap > 0)  # few: only those are computed
                near = turn.ravel()[out] ^ 1  # the bound on the other side
                gap = gap[out]
                isolated = gap / (bounds[turn.ravel()[out]] + bounds[near] + gap)
                length.ravel()[out] += remaining.ravel()[out] * isolated * depth
                remaining.ravel()[out] *= 1.0 - isolated
        leaf = self.root[:, None] + self.children.ravel()[turn]
        length += remaining * self.path_length[leaf]
        # Summed tree after tree, as scikit-learn does: numpy's sum may pair
        # them up (it does for one reading), which rounds differently; a
        # cumulative sum adds in order.
        lengths: FloatArray = np.cumsum(length, axis=0)[-1]
        return lengths

    def _walk(
        self, features: Float32Array, readings: IntArray
    ) -> Iterator[tuple[Float32Array, BoolArray, IntArray]]:
        """Level by level down to the last above the leaves, for each (tree,
        reading): its value of its node's feature, whether it goes right, and
        its turn (2 × node, + 1 to the right: where its child and its bound
        are)."""
        root = self.root[:, None]
        flat = features.ravel()
        start = readings * features.shape[1]  # of each reading in `flat`
        children = self.children.ravel()
        at = np.broadcast_to(root, readings.shape)
        for _ in range(self.levels):
            value = flat[start + self.feature[at]]
            right = value > self.threshold[at]
            turn = 2 * at + right
            yield value, right, turn
            at = root + children[turn]


def _children(tree: Any) -> Int16Array:
    """Each node's left and right child; a leaf's are itself."""
    ids = np.arange(tree.node_count)
    leaf = tree.children_left < 0
    pair = np.stack(
        [
            np.where(leaf, ids, tree.children_left),
            np.where(leaf, ids, tree.children_right),
        ],
        axis=1,
    )
    return pair.astype(np.int16)


def _path_lengths(tree: Any) -> FloatArray:
    """The path length of a reading ending at each node, as scikit-learn
    counts it: the depth (the root's is 1) plus the expected depth of the
    node's training readings, minus 1."""
    left, right = tree.children_left, tree.children_right
    depth = np.ones(tree.node_count)
    for node in np.flatnonzero(left >= 0):  # parents come before their children
        depth[left[node]] = depth[right[node]] = depth[node] + 1
    lengths: FloatArray = depth + average_path_length(tree.n_node_samples) - 1.0
    return lengths


def average_path_length(samples: npt.ArrayLike) -> FloatArray:
    """The expected depth at which a tree of `samples` readings isolates one
    (0 for one reading, 1 for two), scikit-learn's arithmetic.

    >>> average_path_length([1, 2, 256]).round(3).tolist()
    [0.0, 1.0, 10.245]
    """
    n = np.asarray(samples, dtype=np.float64)
    many = np.maximum(n, 3.0)
    length = 2.0 * (np.log(many - 1.0) + np.euler_gamma) - 2.0 * (many - 1.0) / many
    result: FloatArray = np.where(n <= 1, 0.0, np.where(n == 2, 1.0, length))
    return result


def round_down(threshold: FloatArray) -> Float32Array:
    """The largest float32 at most each float64: for a float32 x, x ≤ t exactly
    when x ≤ round_down(t), so thresholds are stored in half the bytes.

    >>> float(round_down(np.array([0.1]))[0]) <= 0.1
    True
    """
    rounded = threshold.astype(np.float32)
    over = rounded.astype(np.float64) > threshold
    rounded[over] = np.nextafter(rounded[over], np.float32(-np.inf))
    return rounded
