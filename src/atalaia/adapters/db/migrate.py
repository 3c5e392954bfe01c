"""Run the Alembic migrations from code (at start and from `atalaia db upgrade`).

Alembic is imported when used: most processes never migrate (the inference
service among them), and importing it costs a few tenths of a second.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).with_name("migrations")


def alembic_config(url: str) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade_database(url: str, revision: str = "head") -> None:
    """Bring the schema at `url` up to `revision`."""
    from alembic import command

    command.upgrade(alembic_config(url), revision)
