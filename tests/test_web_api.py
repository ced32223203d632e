"""The supporters' page's HTTP API against the real server: campaigns, appeals (idempotent,
validated field by field), status, cancel, "I did this" reports and the report command, and
the page's safety (headers, CSRF, size caps, limits, honeypot, escaping)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.web_support import CAMPAIGN_ID, LETTER_EN, Running, serving, web_settings
from ua_dispatch.service import organizing

APPEALS = f"/api/v1/campaigns/{CAMPAIGN_ID}/appeals"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    root = tmp_path_factory.mktemp("web-api")
    # queued at once, due after a long undo window: nothing goes out unless a test says so
    settings = web_settings(root, web_confirm="none", web_max_body=64 * 1024)
    with serving(settings, root / "dry-run") as running:
        yield running


@pytest.fixture(scope="module")
def client(server: Running) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=10) as c:
        yield c


def appeal(n: int, **extra: Any) -> dict[str, Any]:
    body = {
        "name": "Alex Example",
        "email": f"alex{n}@example.org",
        "city": "Leeds",
        "country": "United Kingdom",
        "letter": LETTER_EN,
        "channels": ["email"],
    }
    body.update(extra)
    return body


def test_campaigns_are_listed_with_their_officials(client: httpx.Client) -> None:
    listed = client.get("/api/v1/campaigns").json()
    assert [c["id"] for c in listed] == [CAMPAIGN_ID]
    one = client.get(f"/api/v1/campaigns/{CAMPAIGN_ID}").json()
    assert one["ua_number"] == "UA 99/26" and one["closed"] is False
    assert {t["slug"]: t["channels"] for t in one["targets"]} == {
        "prosecutor": ["email", "post"],
        "ambassador": ["email", "post", "phone"],
    }
    assert one["sample_letter"].startswith("I am writing")
    assert client.get("/api/v1/campaigns/nope").status_code == 404


def test_an_appeal_is_accepted_once_and_queued_with_its_delivery_keys(
    client: httpx.Client, server: Running
) -> None:
    r = client.post(APPEALS, json=appeal(1))
    assert r.status_code == 202
    doc = r.json()
    assert set(doc) == {"appeal_id", "status_url", "api_url", "confirm", "deliveries"}
    assert doc["confirm"] == "none"
    assert doc["api_url"] == f"/api/v1/appeals/{doc['appeal_id']}/" + doc["api_url"].rsplit("/")[-1]
    assert [(d["channel"], d["target"], d["to"], d["status"]) for d in doc["deliveries"]] == [
        ("email", "prosecutor", "prosecutor@example.org", "waiting"),
        ("email", "ambassador", "ambassador@example.org", "waiting"),
    ]
    # the same appeal again, and with an Idempotency-Key twice: the first each time (the
    # same key with another request is refused: it is not a retry)
    assert client.post(APPEALS, json=appeal(1)).json()["appeal_id"] == doc["appeal_id"]
    headers = {"Idempotency-Key": "k-1"}
    first = client.post(APPEALS, json=appeal(2), headers=headers).json()["appeal_id"]
    again = client.post(APPEALS, json=appeal(2), headers=headers).json()
    assert again["appeal_id"] == first
    other = client.post(APPEALS, json=appeal(2, city="York"), headers=headers)
    assert other.status_code == 422
    assert other.json() == {"detail": "Idempotency-Key reused with a different request"}
    status = client.get(doc["api_url"]).json()
    assert status["state"] == "confirmed" and status["cancellable"] is True
    assert 590 < status["undo_seconds_left"] <= 600
    found = server.call(server.desk.outbox.deliveries_by_key, _keys(server, doc["appeal_id"]))
    assert len(found) == 2 and {r.status for r in found} == {"queued"}
    assert client.get(doc["status_url"]).status_code == 200


def _keys(server: Running, appeal_id: str) -> list[str]:
    record = server.call(server.desk.outbox.appeal, appeal_id)
    return record.keys


def test_every_bad_field_is_named_with_the_command_lines_message(client: httpx.Client) -> None:
    r = client.post(
        APPEALS,
        json=appeal(
            3,
            name="",
            email="not an address",
            city="Leeds\r\nBcc: x@example.org",
            language="xx",
            letter="Dear Sir,\nYours sincerely,",
            channels=["pigeon"],
        ),
    )
    assert r.status_code == 422
    detail = r.json()["detail"]
    assert [d["loc"] for d in detail] == [
        ["body", "name"],
        ["body", "email"],
        ["body", "city"],
        ["body", "language"],
        ["body", "channels"],
    ]
    messages = {d["loc"][1]: d["msg"] for d in detail}
    assert messages["email"] == ("not a valid email address: An email address must have an @-sign.")
    assert messages["language"] == "'xx' is not an ISO 639-1 language code such as 'en' or 'ru'"
    assert messages["channels"] == "unknown channel 'pigeon'; choose from email, fax"
    # a letter of nothing but a salutation and a closing, once the rest is right
    r = client.post(APPEALS, json=appeal(3, letter="Dear Sir,\n\nYours sincerely,"))
    assert r.status_code == 422
    assert r.json()["detail"] == [
        {
            "loc": ["body", "letter"],
            "msg": "letter has no text besides a salutation and a closing",
            "type": "value_error",
        }
    ]
    assert client.post(APPEALS, json={"name": "x"}).status_code == 422


def test_cancel_within_the_undo_window_leaves_nothing_to_send(
    client: httpx.Client, server: Running
) -> None:
    doc = client.post(APPEALS, json=appeal(4)).json()
    r = client.post(doc["api_url"] + "/cancel")
    assert r.status_code == 200
    assert [d["status"] for d in r.json()["deliveries"]] == ["cancelled", "cancelled"]
    rows = server.call(server.desk.outbox.deliveries_by_key, _keys(server, doc["appeal_id"]))
    assert {row.status for row in rows} == {"cancelled"}
    # a forged or unknown token finds nothing
    forged = doc["api_url"][:-4] + "0000"
    assert client.get(forged).status_code == 404
    assert client.post(forged + "/cancel").status_code == 404


def test_reported_actions_count_in_the_report_beside_deliveries(
    client: httpx.Client, server: Running
) -> None:
    doc = client.post(APPEALS, json=appeal(5)).json()
    url = doc["api_url"] + "/actions"
    assert client.post(url, json={"kind": "phone", "target": "ambassador"}).status_code == 201
    assert client.post(url, json={"kind": "phone", "target": "ambassador"}).status_code == 200
    assert client.post(url, json={"kind": "post", "target": "prosecutor"}).status_code == 201
    assert client.post(url, json={"kind": "social", "target": "campaign"}).status_code == 201
    assert client.post(url, json={"kind": "post", "target": "nobody"}).status_code == 422
    assert client.post(url, json={"kind": "fly", "target": "campaign"}).status_code == 422
    found = organizing.report(server.desk.settings, CAMPAIGN_ID)
    assert found.reported == [
        ("phone", "ambassador", 1),
        ("post", "prosecutor", 1),
        ("social", "campaign", 1),
    ]
    assert found.as_json()["reported_by_supporters"][0] == {
        "channel": "phone",
        "target": "ambassador",
        "count": 1,
    }


def test_security_headers_csrf_size_cap_and_escaping(server: Running) -> None:
    client = httpx.Client(base_url=server.url, timeout=10)  # a browser's first visit
    page = client.get(f"/act/{CAMPAIGN_ID}")
    assert page.status_code == 200
    csp = page.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert "httponly" in page.headers["set-cookie"].lower()
    # a form posted without the browser's token is refused
    r = client.post(f"/act/{CAMPAIGN_ID}", data={"name": "x", "csrf": "forged"})
    assert r.status_code == 403
    assert "This form has expired. Go back, reload the page and try again." in r.text
    # bodies over the cap are refused before they are read
    big = client.post(APPEALS, json=appeal(6, letter="x" * 70_000))
    assert big.status_code == 413
    # JSON only: a form of another site (text/plain) cannot post an appeal
    plain = client.post(
        APPEALS, content=json.dumps(appeal(6)), headers={"content-type": "text/plain"}
    )
    assert plain.status_code == 422
    # what a supporter typed is shown escaped
    token = _csrf(page.text)
    r = client.post(
        f"/act/{CAMPAIGN_ID}",
        data={
            "csrf": token,
            "step": "preview",
            "name": "<script>alert(1)</script>",
            "email": "x@example.org",
            "letter": LETTER_EN + "<b>bold</b>",
            "channels": "email",
        },
    )
    assert r.status_code == 200, r.text
    assert "<script>alert(1)</script>" not in r.text and "&lt;script&gt;" in r.text
    assert "<b>bold</b>" not in r.text


def test_the_honeypot_queues_nothing(client: httpx.Client, server: Running) -> None:
    page = client.get(f"/act/{CAMPAIGN_ID}")
    before = server.call(server.desk.outbox.count)
    r = client.post(
        f"/act/{CAMPAIGN_ID}",
        data={
            "csrf": _csrf(page.text),
            "step": "send",
            "name": "Robot",
            "email": "robot@example.org",
            "letter": LETTER_EN,
            "channels": "email",
            "website": "http://spam.example",
        },
    )
    assert r.status_code == 200 and "check your email" in r.text
    assert server.call(server.desk.outbox.count) == before


def _csrf(html: str) -> str:
    import re

    found = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert found is not None
    return found.group(1)


def test_limits_answer_429_with_retry_after(tmp_path: Path) -> None:
    settings = web_settings(
        tmp_path, web_confirm="none", web_limit_per_ip="3/h", web_limit_per_address="2/h"
    )
    with (
        serving(settings, tmp_path / "dry-run", worker_poll=None) as running,
        httpx.Client(base_url=running.url, timeout=10) as c,
    ):
        assert c.post(APPEALS, json=appeal(7)).status_code == 202
        assert c.post(APPEALS, json=appeal(7, city="York")).status_code == 202
        r = c.post(APPEALS, json=appeal(7, city="Hull"))
        assert r.status_code == 429 and 3500 < int(r.headers["retry-after"]) <= 3600
        assert "email address" in r.json()["detail"]
        assert c.post(APPEALS, json=appeal(8)).status_code == 202
        r = c.post(APPEALS, json=appeal(9))
        assert r.status_code == 429 and "network address" in r.json()["detail"]


def test_a_letter_queued_goes_out_through_the_worker(tmp_path: Path) -> None:
    settings = web_settings(tmp_path, web_confirm="none", web_undo_seconds=0)
    with (
        serving(settings, tmp_path / "dry-run", worker_poll=0.05) as running,
        httpx.Client(base_url=running.url, timeout=10) as c,
    ):
        doc = c.post(APPEALS, json=appeal(10)).json()
        deadline = time.monotonic() + 15
        while True:
            states = [d["status"] for d in c.get(doc["api_url"]).json()["deliveries"]]
            if states == ["sent", "sent"] or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert states == ["sent", "sent"]
        assert c.post(doc["api_url"] + "/cancel").status_code == 409


def test_an_appeal_to_a_paused_official_waits_while_the_others_go(tmp_path: Path) -> None:
    """The organizers paused one official before the appeal came: its letter to them is held
    in the outbox, the page says so, and the letter to the other official goes."""
    settings = web_settings(tmp_path, web_confirm="none", web_undo_seconds=0)
    with (
        serving(settings, tmp_path / "dry-run", worker_poll=0.05) as running,
        httpx.Client(base_url=running.url, timeout=10) as c,
    ):
        running.call(running.desk.outbox.hold_target, "prosecutor", CAMPAIGN_ID)
        doc = c.post(APPEALS, json=appeal(12)).json()
        deadline = time.monotonic() + 15
        while True:
            states = {d["target"]: d["status"] for d in c.get(doc["api_url"]).json()["deliveries"]}
            if states.get("ambassador") == "sent" or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert states == {"prosecutor": "held", "ambassador": "sent"}
        assert "held by the organisers" in c.get(doc["status_url"]).text


def test_text_that_is_not_unicode_is_refused_not_a_failure(client: httpx.Client) -> None:
    # JSON can carry a lone surrogate, which no letter or header can hold
    raw = (
        '{"name": "A\\ud800", "email": "x@example.org", "letter": "Hello \\udfff there, '
        'please act.", "channels": ["email"]}'
    )
    r = client.post(APPEALS, content=raw, headers={"content-type": "application/json"})
    assert r.status_code == 422
    assert {d["loc"][1] for d in r.json()["detail"]} == {"name", "letter"}


def test_purge_erases_the_supporters_data_from_appeals_too(tmp_path: Path) -> None:
    settings = web_settings(tmp_path, web_confirm="none")
    with (
        serving(settings, tmp_path / "dry-run", worker_poll=None) as running,
        httpx.Client(base_url=running.url, timeout=10) as c,
    ):
        doc = c.post(APPEALS, json=appeal(11)).json()
        outbox = running.desk.outbox
        running.call(outbox.purge, 0)
        record = running.call(outbox.appeal, doc["appeal_id"])
        assert record.purged_at is not None
        assert (record.supporter_name, record.supporter_email, record.letter_text) == (
            None,
            None,
            None,
        )
        # the status still answers, from what the rows keep
        states = c.get(doc["api_url"]).json()["deliveries"]
        assert [(d["target"], d["status"]) for d in states] == [
            ("prosecutor", "waiting"),
            ("ambassador", "waiting"),
        ]


def test_a_letter_nearly_the_sample_earns_a_nudge_not_a_block(server: Running) -> None:
    from tests.web_support import SAMPLE

    client = httpx.Client(base_url=server.url, timeout=10)
    page = client.get(f"/act/{CAMPAIGN_ID}")
    assert SAMPLE.strip() in page.text  # the form starts from the sample letter
    form = {
        "csrf": _csrf(page.text),
        "step": "preview",
        "name": "Alex Example",
        "email": "alex@example.org",
        "channels": "email",
    }
    r = client.post(f"/act/{CAMPAIGN_ID}", data={**form, "letter": SAMPLE})
    assert r.status_code == 200
    assert "100% the same as the sample letter" in r.text
    assert "Send my letter" in r.text
    r = client.post(f"/act/{CAMPAIGN_ID}", data={**form, "letter": LETTER_EN})
    assert "the same as the sample letter" not in r.text
    # "Change it" goes back to the form as it was filled in
    r = client.post(f"/act/{CAMPAIGN_ID}/edit", data={**form, "letter": LETTER_EN})
    assert r.status_code == 200 and 'value="alex@example.org"' in r.text
    assert LETTER_EN.splitlines()[0] in r.text
