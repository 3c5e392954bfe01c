"""A backup's schema revision against the migrations this code ships."""

from __future__ import annotations

from atalaia.adapters.db.migrate import alembic_config
from atalaia.core.backup import BackupTooNew


def check_known_revision(revision: str | None, made_by: str) -> None:
    """Refuse a backup whose schema revision none of this code's migrations
    reach (made by a newer atalaia); an older one is migrated after restore."""
    from alembic.script import ScriptDirectory  # slow to import: only here

    scripts = ScriptDirectory.from_config(alembic_config("sqlite://"))
    known = {script.revision for script in scripts.walk_revisions()}
    if revision is None or revision in known:
        return
    raise BackupTooNew(
        f"the backup's schema revision {revision} is newer than this atalaia's "
        f"(head {scripts.get_current_head()}): restore it with atalaia {made_by}"
    )
