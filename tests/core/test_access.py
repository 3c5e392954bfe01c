"""Sensor groups: which series a token's groups cover."""

from __future__ import annotations

import pytest

from atalaia.core.access import AccessGroups, SeriesScope, check_group_patterns
from atalaia.errors import PermissionDenied

GROUPS = {"porto": ["porto-*"], "press7": ["press7_radial", "press7_axial"]}


@pytest.fixture
def access() -> AccessGroups:
    return AccessGroups(GROUPS)


def scope(access: AccessGroups, *groups: str) -> SeriesScope:
    found = access.scope(frozenset(groups))
    assert found is not None
    return found


class TestCovers:
    def test_a_pattern_covers_series_by_their_id_or_their_sensors(
        self, access: AccessGroups
    ) -> None:
        porto = scope(access, "porto")

        assert porto.covers("porto-1_radial")
        assert porto.covers("porto-1")
        assert not porto.covers("lisbon-1_radial")
        assert not porto.covers("xporto-1_radial")

    def test_a_pattern_naming_one_series_covers_only_it(
        self, access: AccessGroups
    ) -> None:
        press = scope(access, "press7")

        assert press.covers("press7_radial")
        assert not press.covers("press7_vertical")
        assert not press.covers_sensor("press7")

    def test_groups_add_up(self, access: AccessGroups) -> None:
        both = scope(access, "porto", "press7")

        assert both.covers("porto-2_axial")
        assert both.covers("press7_axial")

    def test_matching_is_case_sensitive(self, access: AccessGroups) -> None:
        assert not scope(access, "porto").covers("PORTO-1_radial")

    def test_a_group_not_configured_covers_nothing(self, access: AccessGroups) -> None:
        ghost = scope(access, "ghost")

        assert not ghost.covers("porto-1_radial")
        assert ghost.unknown == {"ghost"}

    def test_no_groups_means_no_check(self, access: AccessGroups) -> None:
        assert access.scope(None) is None

    def test_a_scope_is_compiled_once_per_set_of_groups(
        self, access: AccessGroups
    ) -> None:
        assert access.scope(frozenset({"porto"})) is access.scope(frozenset({"porto"}))

    def test_a_scope_is_rebuilt_from_its_patterns(self, access: AccessGroups) -> None:
        porto = scope(access, "porto")

        again = SeriesScope.of(porto.groups, porto.patterns)

        assert again.covers("porto-9_radial")
        assert not again.covers("lisbon_radial")


class TestConfines:
    @pytest.mark.parametrize(
        ("prefix", "confined"),
        [("porto-", True), ("porto-1", True), ("porto-1_radial", True),
         ("porto", False), ("port", False), ("lisbon-", False), ("", False)],
    )  # fmt: skip
    def test_a_prefix_under_a_pattern_ending_in_a_star_is_confined(
        self, access: AccessGroups, prefix: str, confined: bool
    ) -> None:
        assert scope(access, "porto").confines(prefix) is confined

    def test_a_pattern_naming_one_series_confines_no_prefix(
        self, access: AccessGroups
    ) -> None:
        # press7_radial is covered, but a prefix of it reaches press7_radial2.
        assert not scope(access, "press7").confines("press7_radial")


class TestBatches:
    def test_outside_names_each_id_once_in_order(self, access: AccessGroups) -> None:
        ids = ["b_radial", "porto-1_radial", "a_radial", "b_radial"]

        assert scope(access, "porto").outside(ids) == ["b_radial", "a_radial"]

    def test_a_batch_with_a_series_outside_is_refused_naming_it(
        self, access: AccessGroups
    ) -> None:
        with pytest.raises(PermissionDenied) as refused:
            scope(access, "porto").require_all(["porto-1_radial", "lisbon_radial"])

        assert refused.value.rule == "series_access"
        assert "'lisbon_radial'" in refused.value.detail
        assert "porto-1_radial" not in refused.value.detail

    def test_sensors_are_checked_by_their_own_id(self, access: AccessGroups) -> None:
        porto = scope(access, "porto")

        porto.require_all(["porto-1"], sensors=True)
        with pytest.raises(PermissionDenied):
            porto.require_all(["press7"], sensors=True)


class TestConfiguration:
    @pytest.mark.parametrize(
        ("groups", "named"),
        [
            ({"bad name": ["x"]}, "'bad name'"),
            ({"empty": []}, "'empty' has no pattern"),
            ({"slash": ["a/b"]}, "'a/b'"),
        ],
    )
    def test_a_bad_group_is_named(
        self, groups: dict[str, list[str]], named: str
    ) -> None:
        with pytest.raises(ValueError, match=named):
            check_group_patterns(groups)
