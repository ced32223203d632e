"""The social channel: the X post, its intent link, Mastodon and Bluesky drafts, and the CLI."""

from __future__ import annotations

import datetime as dt
import json
import tomllib
import urllib.parse
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from twitter_text import parse_tweet

from tests.conftest import EXAMPLES, SHIPPED_CAMPAIGN, SUPPORTER_ARGS
from ua_dispatch.campaign import Campaign
from ua_dispatch.channels import get_channel, lookup
from ua_dispatch.channels.social import SocialPayload
from ua_dispatch.delivery import BuildEnv
from ua_dispatch.errors import InputError
from ua_dispatch.letter import Letter, make_supporter
from ua_dispatch.plan import Appeal, plan_deliveries
from ua_dispatch.settings import load_settings
from ua_dispatch.textlimits import graphemes, mastodon_length

NOW = dt.datetime(2019, 3, 5, 15, 0, tzinfo=dt.UTC)
HANDLES = "@KremlinRussia @KremlinRussia_E @RusEmbUSA"


def campaign_data(**social: Any) -> dict[str, Any]:
    data = tomllib.loads(SHIPPED_CAMPAIGN.read_text(encoding="utf-8"))
    data["social"].update(social)
    return data


def appeal_for(data: dict[str, Any], language: str = "en") -> Appeal:
    return Appeal(
        campaign=Campaign.model_validate(data),
        letter=Letter(text="I urge you to act.", language=language),
        supporter=make_supporter(name="Alex Example", email="alex@example.org"),
    )


def build(appeal: Appeal) -> SocialPayload:
    (delivery,) = plan_deliveries(appeal, lookup(["social"]))
    payload: SocialPayload = get_channel("social").build(
        appeal, delivery, BuildEnv(settings=load_settings(), now=NOW)
    )
    return payload


def test_one_campaign_wide_delivery_tags_every_handle() -> None:
    appeal = appeal_for(campaign_data())
    (delivery,) = plan_deliveries(appeal, lookup(["social"]))
    assert delivery.target is None and delivery.slug == "campaign"
    assert delivery.to == HANDLES


@pytest.mark.parametrize(
    ("language", "start"),
    [("en", "Investigate the detention"), ("ru", "Расследуйте задержания"), ("de", "Расслед")],
)
def test_post_states_the_demand_in_the_letters_language(language: str, start: str) -> None:
    """German has no demand in the campaign: the first campaign language that has one (ru)."""
    payload = build(appeal_for(campaign_data(), language))
    assert payload.x is not None
    assert payload.x.text.startswith(f"{HANDLES} {start}")
    assert payload.x.text.endswith(" #Chechnya")
    assert parse_tweet(payload.x.text).valid


def test_post_carries_link_and_is_shortened_to_fit() -> None:
    link = "https://www.amnesty.org/en/documents/eur46/9686/2019/en/"
    long_demand = "Release everyone detained for who they are and stop the abuse now. " * 5
    payload = build(appeal_for(campaign_data(link=link, demand={"en": long_demand.strip()})))
    assert payload.x is not None
    text = payload.x.text
    assert payload.x.shortened
    assert text.startswith(HANDLES + " Release everyone")
    assert text.endswith(f"… #Chechnya {link}")
    assert parse_tweet(text).weightedLength <= 280
    intent = payload.x_intent
    assert intent is not None and intent.startswith("https://x.com/intent/post?text=")
    query = intent.split("?", 1)[1]
    assert urllib.parse.parse_qs(query)["text"] == [text]
    assert " " not in intent and "#" not in intent and "@" not in intent


def test_handles_that_cannot_fit_are_refused() -> None:
    data = campaign_data()
    data["targets"][0]["x_handles"] = [f"official_{i:06d}" for i in range(20)]
    with pytest.raises(InputError) as exc:
        build(appeal_for(data))
    message = str(exc.value)
    assert "targets[].x_handles" in message
    assert "handles alone" in message and "280" in message
    assert "\n" not in message


def test_no_accounts_means_no_social_delivery() -> None:
    data = campaign_data()
    for target in data["targets"]:
        target.pop("x_handles", None)
    appeal = appeal_for(data)
    (delivery,) = plan_deliveries(appeal, lookup(["social"]))
    assert delivery.to is None
    assert delivery.skip_reason == "no target has a social media account"


def _with_fediverse(data: dict[str, Any]) -> dict[str, Any]:
    data["targets"][0]["mastodon"] = ["@kremlin@mastodon.example"]
    data["targets"][1]["mastodon"] = ["rusembusa@mastodon.example"]
    data["targets"][0]["bluesky"] = ["@kremlin.example.ru"]
    data["targets"][1]["bluesky"] = ["rusembusa.bsky.social did:plc:abcdefghijklmnop"]
    return data


def test_mastodon_and_bluesky_drafts() -> None:
    payload = build(appeal_for(_with_fediverse(campaign_data(link="https://example.org/ua"))))
    assert payload.mastodon is not None and payload.bluesky is not None
    m = payload.mastodon.text
    assert m.startswith("@kremlin@mastodon.example @rusembusa@mastodon.example Investigate")
    assert mastodon_length(m) <= 500
    b = payload.bluesky.post.text
    assert b.startswith("@kremlin.example.ru @rusembusa.bsky.social Investigate")
    assert graphemes(b) <= 300
    record = payload.bluesky.record
    assert record["text"] == b and record["langs"] == ["en"]
    assert record["createdAt"] == "2019-03-05T15:00:00Z"
    raw = b.encode("utf-8")

    def piece(index: dict[str, int]) -> str:
        return raw[index["byteStart"] : index["byteEnd"]].decode("utf-8")

    kinds = {f["features"][0]["$type"].rsplit("#")[1]: f for f in record["facets"]}
    assert piece(kinds["mention"]["index"]) == "@rusembusa.bsky.social"
    assert kinds["mention"]["features"][0]["did"] == "did:plc:abcdefghijklmnop"
    assert piece(kinds["link"]["index"]) == "https://example.org/ua"
    assert piece(kinds["tag"]["index"]) == "#Chechnya"
    (unresolved,) = payload.bluesky.unresolved_mentions
    assert unresolved["handle"] == "kremlin.example.ru"
    assert piece(unresolved["index"]) == "@kremlin.example.ru"


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.text(
            "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_",
            min_size=1,
            max_size=15,
        ),
        min_size=1,
        max_size=6,
        unique_by=str.lower,
    ),
    st.text(min_size=1, max_size=400).filter(lambda t: t.strip() and "\n" not in t),
)
def test_channel_post_fits_for_any_campaign(handles: list[str], demand: str) -> None:
    data = campaign_data(demand={"en": demand}, link="https://example.org/ua")
    data["targets"][0]["x_handles"] = handles
    data["targets"][1]["x_handles"] = []
    try:
        appeal = appeal_for(data)
    except ValueError:  # the demand is not a valid single line for the campaign file
        return
    payload = build(appeal)
    assert payload.x is not None
    parsed = parse_tweet(payload.x.text)
    assert parsed.valid and parsed.weightedLength <= 280
    for handle in handles:
        assert f"@{handle} " in payload.x.text + " "


# --- command line ---------------------------------------------------------------------------


def test_draft_writes_social_and_phone_files(
    run_cli: Any, open_campaign: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    result = run_cli(
        "draft", open_campaign, EXAMPLES / "letter-en.txt", *SUPPORTER_ARGS,
        "--channels", "social,phone", "--out", out, "--json",
    )  # fmt: skip
    assert result.code == 0, result.stderr
    x_text = (out / "social" / "x.txt").read_text(encoding="utf-8").rstrip("\n")
    intent = (out / "social" / "x-intent.url").read_text(encoding="utf-8").strip()
    assert x_text.startswith(HANDLES + " Investigate")
    assert urllib.parse.parse_qs(urllib.parse.urlsplit(intent).query)["text"] == [x_text]
    assert (out / "phone" / "ambassador-usa.txt").is_file()
    assert not (out / "phone" / "president.txt").exists()  # no phone number
    assert not (out / "social" / "mastodon.txt").exists()
    doc = result.json()
    by_channel = {(d["channel"], d["target"]): d for d in doc["deliveries"]}
    social = by_channel[("social", "campaign")]
    assert social["status"] == "drafted"
    assert social["text"] == x_text
    assert social["ref"] == str(out / "social" / "x.txt")
    assert by_channel[("phone", "ambassador-usa")]["status"] == "drafted"
    assert by_channel[("phone", "president")]["status"] == "skipped"


def test_draft_writes_mastodon_and_bluesky_when_listed(
    run_cli: Any, open_campaign: Path, tmp_path: Path
) -> None:
    text = open_campaign.read_text(encoding="utf-8").replace(
        'x_handles = ["@RusEmbUSA"]',
        'x_handles = ["@RusEmbUSA"]\nmastodon = ["@rusembusa@mastodon.example"]\n'
        'bluesky = ["rusembusa.bsky.social"]',
    )
    open_campaign.write_text(text, encoding="utf-8")
    out = tmp_path / "out"
    result = run_cli(
        "draft", open_campaign, EXAMPLES / "letter-ru.txt", *SUPPORTER_ARGS,
        "--channels", "social", "--out", out,
    )  # fmt: skip
    assert result.code == 0, result.stderr
    names = sorted(p.name for p in (out / "social").iterdir())
    assert names == ["bluesky.json", "bluesky.txt", "mastodon.txt", "x-intent.url", "x.txt"]
    mastodon = (out / "social" / "mastodon.txt").read_text(encoding="utf-8")
    assert mastodon.startswith("@rusembusa@mastodon.example Расследуйте")
    doc = json.loads((out / "social" / "bluesky.json").read_text(encoding="utf-8"))
    bluesky = (out / "social" / "bluesky.txt").read_text(encoding="utf-8").rstrip("\n")
    assert doc["record"]["text"] == bluesky
    assert doc["record"]["langs"] == ["ru"]
    (mention,) = doc["unresolved_mentions"]
    index = mention["index"]
    assert bluesky.encode()[index["byteStart"] : index["byteEnd"]] == b"@rusembusa.bsky.social"


def test_send_reports_social_and_phone_as_drafted(
    run_cli: Any, open_campaign: Path, tmp_path: Path
) -> None:
    result = run_cli(
        "send", open_campaign, EXAMPLES / "letter-en.txt", *SUPPORTER_ARGS,
        "--channels", "social,phone", "--yes", "--json",
    )  # fmt: skip
    assert result.code == 0, result.stderr
    deliveries = {(d["channel"], d["target"]): d for d in result.json()["deliveries"]}
    social = deliveries[("social", "campaign")]
    assert social["status"] == "drafted"
    assert Path(social["ref"]).read_text(encoding="utf-8").rstrip("\n") == social["text"]
    phone = deliveries[("phone", "ambassador-usa")]
    assert phone["status"] == "drafted"
    assert "+1 202-298-5700" in Path(phone["ref"]).read_text(encoding="utf-8")
    assert "text" not in phone


def test_by_hand_offers_a_link_for_each_network_with_its_post() -> None:
    appeal = appeal_for(_with_fediverse(campaign_data()))
    (delivery,) = plan_deliveries(appeal, lookup(["social"]))
    payload = build(appeal)
    (step,) = get_channel("social").by_hand(payload, delivery)
    assert payload.x is not None and payload.mastodon is not None
    assert (step.kind, step.target, step.text) == ("social", delivery.slug, payload.x.text)
    assert list(step.links) == ["Post on X", "Post on Mastodon", "Post on Bluesky"]
    mastodon = urllib.parse.quote(payload.mastodon.text, safe="")
    assert step.links["Post on Mastodon"] == f"https://toot.kytta.dev/?text={mastodon}"
    assert step.links["Post on Bluesky"].startswith("https://bsky.app/intent/compose?text=")
