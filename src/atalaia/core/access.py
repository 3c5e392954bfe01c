"""Sensor groups: which series a token limited to some groups may read and act on.

A group is a list of fnmatch patterns (`porto-*`, `press7_radial`) over series
ids and sensor ids: a series is covered when a pattern matches its id or its
sensor's (`core.series.sensor_of`). A token's groups are compiled once into
one regular expression (`AccessGroups.scope`, cached per set of groups); a
token with no groups (None) is not checked at all. A group a token names but
the platform does not configure covers nothing.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from atalaia.core.series import sensor_of
from atalaia.errors import PermissionDenied

GROUP_NAME = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
_PATTERN_TEXT = re.compile(r"[A-Za-z0-9_.:*?\[\]!-]{1,128}")
_NOTHING = re.compile(r"(?!)")  # matches no text
_CACHE_LIMIT = 4_096
SERIES_ACCESS = "series_access"  # the rule a request outside its groups breaks
SHOWN = 10  # ids named in a refusal


def check_group_patterns(groups: Mapping[str, Sequence[str]]) -> None:
    """Raise ValueError naming the first group name or pattern that breaks the
    rules (a name `[A-Za-z0-9_.:-]{1,64}`; at least one pattern per group,
    each of series-id characters and the glob's `* ? [ ] !`)."""
    for name, patterns in groups.items():
        if not GROUP_NAME.fullmatch(name):
            raise ValueError(f"group name {name!r} must match [A-Za-z0-9_.:-]{{1,64}}")
        if not patterns:
            raise ValueError(f"group {name!r} has no pattern")
        for pattern in patterns:
            if not _PATTERN_TEXT.fullmatch(pattern):
                raise ValueError(
                    f"group {name!r}: pattern {pattern!r} must be 1 to 128 of "
                    "the characters of series ids and * ? [ ] !"
                )


@dataclass(frozen=True, slots=True)
class SeriesScope:
    """The series a set of groups covers (their `patterns`); `unknown`: the
    groups of the set the platform does not configure (they cover nothing)."""

    groups: frozenset[str]
    patterns: tuple[str, ...]
    unknown: frozenset[str]
    _match: re.Pattern[str]

    @classmethod
    def of(
        cls,
        groups: Iterable[str],
        patterns: Iterable[str],
        unknown: Iterable[str] = (),
    ) -> SeriesScope:
        """The scope of these patterns, compiled into one regular expression."""
        kept = tuple(sorted(set(patterns)))
        regex = "|".join(fnmatch.translate(p) for p in kept)
        return cls(
            frozenset(groups),
            kept,
            frozenset(unknown),
            re.compile(regex) if kept else _NOTHING,
        )

    def covers(self, series_id: str) -> bool:
        """Whether a pattern matches the series' id or its sensor's id."""
        match = self._match.match
        return (
            match(series_id) is not None or match(sensor_of(series_id)[0]) is not None
        )

    def covers_sensor(self, sensor_id: str) -> bool:
        """Whether a pattern matches the sensor's id."""
        return self._match.match(sensor_id) is not None

    def confines(self, prefix: str) -> bool:
        """Whether every series id beginning with `prefix` is covered: a
        pattern ending in `*` matches the prefix (`porto-1` under `porto-*`)."""
        return any(
            p.endswith("*") and fnmatch.fnmatchcase(prefix, p) for p in self.patterns
        )

    def outside(self, ids: Iterable[str], *, sensors: bool = False) -> list[str]:
        """The series ids (`sensors`: sensor ids), each once and in order of
        first appearance, it does not cover."""
        covers = self.covers_sensor if sensors else self.covers
        return [i for i in dict.fromkeys(ids) if not covers(i)]

    def require_all(self, ids: Iterable[str], *, sensors: bool = False) -> None:
        """Raise PermissionDenied (`series_access`) naming the first ids outside."""
        outside = self.outside(ids, sensors=sensors)
        what = "sensors" if sensors else "series"
        if outside:
            named = ", ".join(map(repr, outside[:SHOWN]))
            more = f" and {len(outside) - SHOWN} more" if len(outside) > SHOWN else ""
            raise PermissionDenied(
                f"{len(outside)} {what} outside the token's sensor groups "
                f"({', '.join(sorted(self.groups)) or 'none'}): {named}{more}; "
                "nothing was done",
                rule=SERIES_ACCESS,
            )


class AccessGroups:
    """The configured groups; `scope(groups)` compiles a token's groups once."""

    def __init__(self, groups: Mapping[str, Sequence[str]]) -> None:
        check_group_patterns(groups)
        self._groups = {name: tuple(patterns) for name, patterns in groups.items()}
        self._scopes: dict[frozenset[str], SeriesScope] = {}

    @property
    def names(self) -> list[str]:
        return sorted(self._groups)

    def scope(self, groups: frozenset[str] | None) -> SeriesScope | None:
        """The series `groups` cover (None: every series, nothing to check)."""
        if groups is None:
            return None
        scope = self._scopes.get(groups)
        if scope is None:
            scope = self._compile(groups)
            if len(self._scopes) >= _CACHE_LIMIT:
                self._scopes.clear()
            self._scopes[groups] = scope
        return scope

    def _compile(self, groups: frozenset[str]) -> SeriesScope:
        patterns = (p for name in groups for p in self._groups.get(name, ()))
        unknown = (g for g in groups if g not in self._groups)
        return SeriesScope.of(groups, patterns, unknown)
