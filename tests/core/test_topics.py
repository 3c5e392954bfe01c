from __future__ import annotations

import pytest

from atalaia.core.topics import TopicTemplate, broker_address
from atalaia.errors import InvalidInput


class TestSeriesOf:
    @pytest.mark.parametrize(
        ("template", "topic", "series"),
        [
            ("p/+/{sensor}/{axis}", "p/a/sensor_001/radial", "sensor_001_radial"),
            ("plant/{sensor}/{axis}/value", "plant/pump7/axial/value", "pump7_axial"),
            ("plant/{sensor}", "plant/pump7", "pump7"),
            ("fleet/{series}/#", "fleet/sensor_002_axial", "sensor_002_axial"),
            ("fleet/{series}/#", "fleet/sensor_002_axial/raw/v1", "sensor_002_axial"),
            ("{sensor}/{axis}", "s9/x", "s9_x"),
        ],
    )  # fmt: skip
    def test_names_the_series_of_a_matching_topic(
        self, template: str, topic: str, series: str
    ) -> None:
        assert TopicTemplate.parse(template).series_of(topic) == series

    @pytest.mark.parametrize(
        "topic",
        [
            "plant/a/sensor_001/radial",  # a level short
            "plant/a/b/sensor_001/radial/extra",  # a level more
            "other/a/b/sensor_001/radial",  # another root
            "plant/a/b//radial",  # an empty sensor
            "plant/a/b/sensor_001/",  # an empty axis
        ],
    )
    def test_names_none_when_the_topic_does_not_match(self, topic: str) -> None:
        template = TopicTemplate.parse("plant/+/+/{sensor}/{axis}")
        assert template.series_of(topic) is None

    def test_hash_needs_the_levels_before_it(self) -> None:
        assert TopicTemplate.parse("fleet/{series}/#").series_of("fleet") is None


class TestSubscription:
    @pytest.mark.parametrize(
        ("template", "subscription"),
        [
            ("plant/+/+/{sensor}/{axis}", "plant/+/+/+/+"),
            ("fleet/{series}/#", "fleet/+/#"),
        ],
    )
    def test_reads_placeholders_as_plus(self, template: str, subscription: str) -> None:
        assert TopicTemplate.parse(template).subscription == subscription


class TestParse:
    @pytest.mark.parametrize(
        ("template", "why"),
        [
            ("plant/{sensor}/{sensor}", "appears twice"),
            ("plant/{axis}", "needs {sensor}"),
            ("plant/+", "needs {sensor}"),
            ("plant/{sensor}/{series}", "needs {sensor}"),
            ("plant/{series}/{axis}", "goes with {sensor}"),
            ("plant/#/{sensor}", "last level"),
            ("plant/a+/{sensor}", "whole level"),
            ("plant/x{sensor}", "may only be one of"),
            ("plant/{unknown}/{sensor}", "may only be one of"),
        ],
    )
    def test_refuses_a_broken_template_saying_why(
        self, template: str, why: str
    ) -> None:
        with pytest.raises(InvalidInput) as caught:
            TopicTemplate.parse(template)
        assert caught.value.rule == "topic_template"
        assert why in caught.value.detail


class TestBrokerAddress:
    def test_reads_host_and_port(self) -> None:
        assert broker_address("mqtt://broker.plant:1884") == ("broker.plant", 1884)

    def test_defaults_to_port_1883(self) -> None:
        assert broker_address("mqtt://127.0.0.1") == ("127.0.0.1", 1883)

    @pytest.mark.parametrize(
        "url", ["http://broker:1883", "broker:1883", "mqtt://", "mqtt://h:99999"]
    )
    def test_refuses_anything_else(self, url: str) -> None:
        with pytest.raises(InvalidInput) as caught:
            broker_address(url)
        assert caught.value.rule == "broker_url"
