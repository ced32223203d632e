"""Where a fake fax gateway keeps what it receives: ``DIR/faxes/<seq>-<id>.pdf`` and one JSON
line per fax in ``DIR/index.jsonl``."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import math
import threading
from pathlib import Path
from typing import Any

from ua_dispatch.fakes.faxline import OUTCOMES, FaxRecord, Timing, iso_utc, known_outcome


class FaxStore:
    """The received faxes, on disk and in memory; also what tests read back.

    Faxes already in the index (an earlier run on the same folder) are known again, as
    finished, so that a gateway restarted on its folder remembers what it was sent.
    """

    def __init__(self, root: Path):
        self.root = root
        self.faxes_dir = root / "faxes"
        self.index_path = root / "index.jsonl"
        self.faxes_dir.mkdir(parents=True, exist_ok=True)
        self._records: dict[str, FaxRecord] = {}
        entries = self.index()
        for entry in entries:
            record = self._restore(entry)
            if record is not None:
                self._records[record.id] = record
        self._seq = itertools.count(len(entries) + 1)
        self._lock = threading.Lock()

    def _restore(self, entry: dict[str, Any]) -> FaxRecord | None:
        try:
            outcome = known_outcome(entry["outcome"], entry.get("error_code")) or OUTCOMES["ok"]
            return FaxRecord(
                seq=int(entry["seq"]),
                id=str(entry["id"]),
                project_id=str(entry["project_id"]),
                to=str(entry["to"]),
                from_number=entry.get("from"),
                labels=dict(entry.get("labels") or {}),
                header_text=str(entry.get("header_text") or ""),
                max_retries=int(entry.get("max_retries", 0)),
                retry_delay_seconds=int(entry.get("retry_delay_seconds", 60)),
                callback_url=None,
                callback_content_type="multipart/form-data",
                content_urls=[],
                outcome=outcome,
                pages=entry.get("pages"),
                files=[self.root / f for f in entry.get("files") or []],
                size=int(entry.get("size", 0)),
                content_type=str(entry.get("content_type") or ""),
                peer=str(entry.get("peer") or ""),
                created_wall=dt.datetime.fromisoformat(entry["received_at"]),
                created_mono=-math.inf,  # long finished
                timing=Timing(),
                extra={str(k): str(v) for k, v in (entry.get("extra") or {}).items()},
            )
        except (KeyError, TypeError, ValueError):
            return None

    def next_seq(self) -> int:
        with self._lock:
            return next(self._seq)

    def add(self, record: FaxRecord, documents: list[bytes]) -> FaxRecord:
        """Write the documents and the index line, and keep the record."""
        paths = []
        for n, data in enumerate(documents):
            suffix = "" if len(documents) == 1 else f"-{n + 1}"
            path = self.faxes_dir / f"{record.seq:06d}-{record.id}{suffix}.pdf"
            path.write_bytes(data)
            paths.append(path)
        record.files = paths
        entry = {
            "seq": record.seq,
            "id": record.id,
            "project_id": record.project_id,
            "to": record.to,
            "from": record.from_number,
            "labels": record.labels,
            "header_text": record.header_text,
            "max_retries": record.max_retries,
            "retry_delay_seconds": record.retry_delay_seconds,
            "files": [str(p.relative_to(self.root)) for p in paths],
            "size": record.size,
            "pages": record.pages,
            "content_type": record.content_type,
            "outcome": record.outcome.name,
            "error_code": record.outcome.error_code,
            "peer": record.peer,
            "received_at": iso_utc(record.created_wall),
        }
        if record.extra:
            entry["extra"] = record.extra
        with self._lock:
            self._records[record.id] = record
            with self.index_path.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(entry, ensure_ascii=False) + "\n")
        return record

    def get(self, fax_id: str) -> FaxRecord | None:
        with self._lock:
            return self._records.get(fax_id)

    def records(self) -> list[FaxRecord]:
        with self._lock:
            return sorted(self._records.values(), key=lambda r: r.seq)

    def index(self) -> list[dict[str, Any]]:
        """The index file's entries, oldest first."""
        if not self.index_path.exists():
            return []
        with self.index_path.open(encoding="utf-8") as fh:
            return [json.loads(line) for line in fh if line.strip()]
