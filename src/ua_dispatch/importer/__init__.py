"""Importing a campaign from the Urgent Action document itself (text, Word or PDF).

``read``  the document's text, by content; ``clean`` conversion artefacts; ``labels`` the
words of each language (tables in ``labels/*.toml``); ``parse`` the campaign's facts and the
officials; ``write`` the campaign file; ``app`` the whole import, as the command line runs it.
"""

from __future__ import annotations

from ua_dispatch.importer.app import (
    ImportedDocument,
    ImportReport,
    OfficialSummary,
    import_campaign,
    read_campaign,
)
from ua_dispatch.importer.parse import Note

__all__ = [
    "ImportReport",
    "ImportedDocument",
    "Note",
    "OfficialSummary",
    "import_campaign",
    "read_campaign",
]
