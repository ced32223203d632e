"""Campaign validation of the accounts and post fields the social channel relies on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SHIPPED_CAMPAIGN


def _campaign_with(tmp_path: Path, old: str, new: str) -> Path:
    text = SHIPPED_CAMPAIGN.read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / "bad.toml"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("old", "new", "field", "reason"),
    [
        (
            '"@KremlinRussia_E"',
            '"@Kremlin-Russia"',
            "targets[0:president].x_handles[1]",
            "is not an X handle",
        ),
        (
            '"@RusEmbUSA"',
            '"@RussianEmbassyUSA"',  # 17 characters: X allows 15
            "targets[1:ambassador-usa].x_handles[0]",
            "is not an X handle",
        ),
        (
            'x_handles = ["@RusEmbUSA"]',
            'x_handles = ["@RusEmbUSA"]\nmastodon = ["rusembusa"]',
            "targets[1:ambassador-usa].mastodon[0]",
            "is not a Mastodon account",
        ),
        (
            'x_handles = ["@RusEmbUSA"]',
            'x_handles = ["@RusEmbUSA"]\nbluesky = ["rus emb"]',
            "targets[1:ambassador-usa].bluesky[0]",
            "is not a Bluesky handle",
        ),
        ('hashtag = "#Chechnya"', 'hashtag = "#Chechnya now"', "social.hashtag", "hashtag"),
        (
            'hashtag = "#Chechnya"',
            'hashtag = "#Chechnya"\nlink = "amnesty"',
            "social.link",
            "http(s) link",
        ),
    ],
)
def test_bad_account_is_one_line_exit_2(
    run_cli: Any, tmp_path: Path, old: str, new: str, field: str, reason: str
) -> None:
    path = _campaign_with(tmp_path, old, new)
    result = run_cli("campaign", "check", path)
    assert result.code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"ua-dispatch: error: {path}: {field}: ")
    assert reason in lines[0]
    assert result.stdout == ""


def test_accounts_are_normalised(run_cli: Any, tmp_path: Path) -> None:
    path = _campaign_with(
        tmp_path,
        'x_handles = ["@RusEmbUSA"]',
        'x_handles = ["RusEmbUSA"]\nmastodon = ["RusEmb@Mastodon.Example"]\n'
        'bluesky = ["@RusEmb.BSKY.social did:plc:abc123"]',
    )
    result = run_cli("campaign", "check", path, "--json")
    assert result.code == 0, result.stderr
    target = result.json()["targets"][1]
    assert target["x_handles"] == ["RusEmbUSA"]
    assert target["mastodon"] == ["@RusEmb@mastodon.example"]
    assert target["bluesky"] == ["rusemb.bsky.social did:plc:abc123"]
