"""The asset hierarchy's rules: kinds under kinds, places, paths."""

from __future__ import annotations

import pytest

from atalaia.core.assets import Asset, AssetKind, Known, check_assets, paths

SITE = Asset("plant1", AssetKind.SITE, "Plant 1", latitude=41.15, longitude=-8.61)
LINE = Asset("line2", AssetKind.LINE, "Line 2", parent="plant1")
PRESS = Asset("press7", AssetKind.MACHINE, "Press 7", parent="line2", x=12.0, y=4.5)
SENSOR = Asset("sensor_001", AssetKind.SENSOR, "Bearing", parent="press7")


def rules(assets: list[Asset], known: dict[str, Known] | None = None) -> list[str]:
    return [e.rule for e in check_assets(assets, known or {})]


class TestCheck:
    def test_a_whole_tree_in_any_order(self) -> None:
        assert rules([SENSOR, PRESS, LINE, SITE]) == []

    @pytest.mark.parametrize(
        ("asset", "rule"),
        [
            (Asset("x", AssetKind.MACHINE, "X"), "asset_parent_kind"),
            (Asset("x", AssetKind.SITE, "X", parent="plant1"), "asset_parent_kind"),
            (Asset("x", AssetKind.LINE, "X", parent="press7"), "asset_parent_kind"),
            (
                Asset("x", AssetKind.SENSOR, "X", parent="nowhere"),
                "asset_parent_exists",
            ),
            (Asset("bad id", AssetKind.SITE, "X"), "asset_id_format"),
            (Asset("x", AssetKind.SITE, ""), "asset_name"),
            (Asset("x", AssetKind.SITE, "X", latitude=95, longitude=0), "asset_place"),
            (Asset("x", AssetKind.SITE, "X", latitude=10), "asset_place"),
            (Asset("x", AssetKind.SITE, "X", x=1, y=2), "asset_place"),
            (
                Asset("x", AssetKind.LINE, "X", parent="plant1", x=1, y=2),
                "asset_place",
            ),
            (
                Asset("x", AssetKind.SENSOR, "X", parent="press7", x=float("nan"), y=1),
                "asset_place",
            ),
        ],
    )
    def test_each_rule_named(self, asset: Asset, rule: str) -> None:
        assert rules([SITE, LINE, PRESS, asset]) == [rule]

    def test_an_id_twice(self) -> None:
        assert rules([SITE, SITE]) == ["asset_id_unique"]

    def test_against_the_stored_tree(self) -> None:
        stored = {
            "plant1": Known(AssetKind.SITE, None),
            "line2": Known(AssetKind.LINE, "plant1"),
            "press7": Known(AssetKind.MACHINE, "line2"),
        }

        assert rules([SENSOR], stored) == []
        # press7 stays under line2, which cannot become a sensor
        demoted = Asset("line2", AssetKind.SENSOR, "L", parent="plant1")
        assert [(e.id, e.rule) for e in check_assets([demoted], stored)] == [
            ("press7", "asset_parent_kind")
        ]

    def test_errors_carry_their_lines(self) -> None:
        orphan = Asset("x", AssetKind.MACHINE, "X", parent="nowhere")

        [error] = check_assets([SITE, orphan], {}, [2, 7])

        assert (error.id, error.line, error.rule) == ("x", 7, "asset_parent_exists")


def test_paths_follow_the_parents() -> None:
    found = paths([SENSOR, PRESS], {"line2": "/plant1/line2/"})

    assert found == {
        "press7": "/plant1/line2/press7/",
        "sensor_001": "/plant1/line2/press7/sensor_001/",
    }
