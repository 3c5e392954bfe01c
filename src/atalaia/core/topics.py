"""Topic templates: which MQTT topics carry which series' readings; the broker's
address.

A template is a topic filter whose levels may be placeholders: `{sensor}` and
`{axis}` (the series is `<sensor>_<axis>`, the platform's naming, or
`<sensor>` alone without an axis level), or `{series}` (the whole id). `+`
and a final `#` match as in MQTT; the subscription is the template with every
placeholder read as `+`.

>>> template = TopicTemplate.parse("plant/+/+/{sensor}/{axis}")
>>> template.subscription
'plant/+/+/+/+'
>>> template.series_of("plant/lisbon/line2/sensor_001/radial")
'sensor_001_radial'
>>> template.series_of("plant/lisbon/sensor_001/radial") is None
True
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from atalaia.errors import InvalidInput

DEFAULT_PORT = 1883
PLACEHOLDERS = ("{sensor}", "{axis}", "{series}")
_RULE = "topic_template"


@dataclass(frozen=True, slots=True)
class TopicTemplate:
    """A parsed template: its levels, and where each placeholder sits."""

    levels: tuple[str, ...]
    places: dict[str, int]

    @classmethod
    def parse(cls, template: str) -> TopicTemplate:
        """The template, or InvalidInput (`topic_template`) naming what is wrong."""
        levels = tuple(template.split("/"))
        places: dict[str, int] = {}
        for at, level in enumerate(levels):
            if level in PLACEHOLDERS:
                if level in places:
                    raise _refused(template, f"{level} appears twice")
                places[level] = at
            elif "{" in level or "}" in level:
                raise _refused(template, f"a level may only be one of {PLACEHOLDERS}")
            elif level == "#" and at != len(levels) - 1:
                raise _refused(template, "`#` may only be the last level")
            elif level not in ("+", "#") and ("+" in level or "#" in level):
                raise _refused(template, "`+` and `#` must fill a whole level")
        if ("{series}" in places) == ("{sensor}" in places):
            raise _refused(template, "it needs {sensor} (and maybe {axis}) or {series}")
        if "{axis}" in places and "{series}" in places:
            raise _refused(template, "{axis} goes with {sensor}, not {series}")
        return cls(levels, places)

    @property
    def subscription(self) -> str:
        """The MQTT topic filter to subscribe to."""
        return "/".join("+" if lvl in PLACEHOLDERS else lvl for lvl in self.levels)

    def series_of(self, topic: str) -> str | None:
        """The series id `topic` names, None when the template does not match."""
        parts = topic.split("/")
        if not self._matches(parts):
            return None
        if (at := self.places.get("{series}")) is not None:
            return parts[at]
        sensor = parts[self.places["{sensor}"]]
        axis_at = self.places.get("{axis}")
        return sensor if axis_at is None else f"{sensor}_{parts[axis_at]}"

    def _matches(self, parts: list[str]) -> bool:
        levels = self.levels
        if levels[-1] == "#":
            levels = levels[:-1]
            if len(parts) < len(levels):
                return False
        elif len(parts) != len(levels):
            return False
        for level, part in zip(levels, parts, strict=False):
            if level in PLACEHOLDERS:
                if not part:
                    return False
            elif level != "+" and level != part:
                return False
        return True


def broker_address(url: str) -> tuple[str, int]:
    """(host, port) of `mqtt://host[:port]`; InvalidInput (`broker_url`) else."""
    parts = urlsplit(url)
    try:
        port = parts.port or DEFAULT_PORT
    except ValueError:  # not a number, or beyond 65535
        port = 0
    if parts.scheme != "mqtt" or not parts.hostname or not port:
        raise InvalidInput(
            f"broker URL {url!r} must be mqtt://host[:port]", rule="broker_url"
        )
    return parts.hostname, port


def _refused(template: str, why: str) -> InvalidInput:
    return InvalidInput(f"topic template {template!r}: {why}", rule=_RULE)
