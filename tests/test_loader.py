"""``queue add``: reading the organizers' CSV of approved letters into the outbox, once per
letter, and refusing a bad file by row and field without queueing any of it; the times it
gives the deliveries (``--at``, ``--spread``) and faxes held until the recipient's office
opens. On SQLite and on the local PostgreSQL."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from tests.queue_support import (
    MOSCOW,
    WASHINGTON,
    db_url,
    pg_database,
    rows,
    write_letters,
)

__all__ = ["db_url", "pg_database"]


def test_add_twice_queues_once_and_skips_unapproved(
    run_cli: Any, db_url: str, open_campaign: Path, tmp_path: Path
) -> None:
    letters = write_letters(tmp_path / "letters.csv", 5)
    with letters.open("a", encoding="utf-8") as fh:
        fh.write('Not Yet,notyet@example.org,,,en,"Please act.",no\n')
    first = run_cli("queue", "add", open_campaign, letters, "--channels", "email")
    assert first.code == 0, first.stderr
    assert "5 delivery(ies) queued" in first.stdout
    assert "row 6: not approved" in first.stderr
    # the president has no email address in the campaign: said once, with the count
    assert "note: president has no email address in" in first.stderr
    assert "5 letter(s) not queued that way" in first.stderr
    again = run_cli("queue", "add", open_campaign, letters, "--channels", "email")
    assert "0 delivery(ies) queued, 5 already queued" in again.stdout
    got = rows(db_url)
    assert len(got) == 5
    assert {r.status for r in got} == {"queued"}
    assert {r.recipient for r in got} == {"rusembusa@mid.ru"}
    assert len({r.key for r in got}) == 5


def test_letter_from_a_file_next_to_the_csv(
    run_cli: Any, db_url: str, open_campaign: Path, tmp_path: Path
) -> None:
    (tmp_path / "letters").mkdir()
    (tmp_path / "letters" / "ann.txt").write_text("Please release him now.\n", encoding="utf-8")
    csv_path = tmp_path / "letters" / "list.csv"
    csv_path.write_text(
        "name,email,city,country,language,letter_file,approved\n"
        "Ann,ann@example.org,York,UK,en,ann.txt,yes\n",
        encoding="utf-8",
    )
    res = run_cli("queue", "add", open_campaign, csv_path, "--channels", "email")
    assert res.code == 0, res.stderr
    (row,) = rows(db_url)
    assert row.letter_text == "Please release him now."


@pytest.mark.parametrize(
    ("content", "where"),
    [
        (b"name,email,city,country,language,approved\nA,a@example.org,,,en,yes\n", "letter"),
        (None, "row 713: email"),
        (
            b"name,email,city,country,language,letter,approved\nA,a@example.org,,,en,ok\xff,yes\n",
            "row 1: letter",
        ),
    ],
    ids=["missing-column", "bad-address", "not-utf8"],
)
def test_bad_csv_names_row_and_field_and_queues_nothing(
    run_cli: Any,
    db_url: str,
    open_campaign: Path,
    tmp_path: Path,
    content: bytes | None,
    where: str,
) -> None:
    path = tmp_path / "letters.csv"
    if content is None:
        write_letters(path, 800)
        lines = path.read_text(encoding="utf-8").split("\n")
        text = path.read_text(encoding="utf-8").replace(
            "supporter712@example.org", "supporter712-at-example.org"
        )
        path.write_text(text, encoding="utf-8")
        assert lines
    else:
        path.write_bytes(content)
    res = run_cli("queue", "add", open_campaign, path, "--channels", "email")
    assert res.code == 2
    assert where in res.stderr
    assert str(path) in res.stderr
    assert rows(db_url) == []


def test_spread_spaces_letters_evenly(
    run_cli: Any, db_url: str, open_campaign: Path, tmp_path: Path
) -> None:
    letters = write_letters(tmp_path / "letters.csv", 4)
    at = "2030-01-01T09:00:00+00:00"
    res = run_cli(
        "queue", "add", open_campaign, letters, "--channels", "email", "--at", at, "--spread", "4h"
    )
    assert res.code == 0, res.stderr
    times = sorted(r.send_after for r in rows(db_url))
    assert [t.hour for t in times] == [9, 10, 11, 12]


def test_spread_counts_only_the_approved_letters(
    run_cli: Any, db_url: str, open_campaign: Path, tmp_path: Path
) -> None:
    """Rows left out take no place in the spread: four approved letters of eight still
    fill the four hours."""
    letters = write_letters(tmp_path / "letters.csv", 4)
    with letters.open("a", encoding="utf-8", newline="") as fh:
        fh.write(
            write_letters(tmp_path / "no.csv", 4, approved="no", start=10)
            .read_text()
            .split("\n", 1)[1]
        )
    at = "2031-01-01T09:00:00+00:00"
    res = run_cli(
        "queue", "add", open_campaign, letters, "--channels", "email", "--at", at, "--spread", "4h"
    )
    assert res.code == 0, res.stderr
    assert "4 not approved" in res.stdout
    times = sorted(r.send_after for r in rows(db_url))
    assert [t.hour for t in times] == [9, 10, 11, 12]


def test_queue_add_holds_faxes_until_the_recipients_office_opens(
    run_cli: Any, db_url: str, open_campaign: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    letters = write_letters(tmp_path / "letters.csv", 1)
    saturday_noon = "2030-01-05T12:00:00+00:00"
    res = run_cli("queue", "add", open_campaign, letters, "--at", saturday_noon)
    assert res.code == 0, res.stderr
    assert "2 fax(es) wait for the recipient's office hours" in res.stdout
    due = {(r.channel, r.recipient): r.send_after for r in rows(db_url)}
    assert due[("email", "rusembusa@mid.ru")] == dt.datetime(2030, 1, 5, 12, 0)
    # Monday 09:00 in Moscow (UTC+3) and in Washington (UTC-5 in January)
    assert due[("fax", MOSCOW)] == dt.datetime(2030, 1, 7, 6, 0)
    assert due[("fax", WASHINGTON)] == dt.datetime(2030, 1, 7, 14, 0)

    monkeypatch.setenv("UA_DISPATCH_FAX_OFFICE_HOURS_ONLY", "false")
    others = write_letters(tmp_path / "others.csv", 1, start=9)
    assert run_cli("queue", "add", open_campaign, others, "--at", saturday_noon).code == 0
    late = [r for r in rows(db_url) if r.supporter_email == "supporter9@example.org"]
    assert {r.send_after for r in late} == {dt.datetime(2030, 1, 5, 12, 0)}
