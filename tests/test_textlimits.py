"""Post length rules: X's conformance cases, Mastodon and Bluesky counts, and shortening."""

from __future__ import annotations

import json
import re
import string
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twitter_text import parse_tweet
from twitter_text.config import config as twitter_config

from ua_dispatch import textlimits
from ua_dispatch.textlimits import (
    BLUESKY,
    ELLIPSIS,
    MASTODON,
    PostTooLong,
    X,
    bluesky_facets,
    compose,
    graphemes,
    mastodon_length,
    x_length,
    x_valid,
)

CONFORMANCE = json.loads(
    (Path(__file__).parent / "data" / "twitter_text_weighted.json").read_text(encoding="ascii")
)
# The v2 section predates emoji counting; its config has no switch for it, so it is given here.
_CONFIGS = {
    "v2": dict(twitter_config["version2"], emoji_parsing_enabled=False),
    "v3": twitter_config["version3"],
}


def _cases(*sections: str) -> list[Any]:
    return [
        pytest.param(section, case, id=f"{section}: {case['description'][:60]}")
        for section in sections
        for case in CONFORMANCE["tests"][section]
    ]


ALL_SECTIONS = tuple(CONFORMANCE["tests"])
V3_SECTIONS = tuple(s for s in ALL_SECTIONS if CONFORMANCE["config"][s] == "v3")


def test_conformance_data_is_complete() -> None:
    counts = {s: len(c) for s, c in CONFORMANCE["tests"].items()}
    assert counts == {
        "WeightedTweetsCounterTest": 20,
        "WeightedTweetsWithDiscountedEmojiCounterTest": 22,
        "UnicodeDirectionalMarkerCounterTest": 2,
    }


@pytest.mark.parametrize(("section", "case"), _cases(*ALL_SECTIONS))
def test_library_passes_x_conformance(section: str, case: dict[str, Any]) -> None:
    """twitter-text-parser gives every field X's conformance cases expect."""
    options = _CONFIGS[CONFORMANCE["config"][section]]
    assert parse_tweet(case["text"], options).asdict() == case["expected"]


@pytest.mark.parametrize(("section", "case"), _cases(*V3_SECTIONS))
def test_our_x_count_is_v3(section: str, case: dict[str, Any]) -> None:
    """What the drafts use (the v3 defaults) agrees with the v3 cases."""
    assert x_length(case["text"]) == case["expected"]["weightedLength"]
    assert x_valid(case["text"]) is case["expected"]["valid"]
    assert X.fits(case["text"]) is case["expected"]["valid"]


def test_x_counts_examples() -> None:
    assert x_length("Привет") == 6  # Cyrillic weighs 1
    assert x_length("日本") == 4  # CJK weighs 2
    assert x_length("https://www.amnesty.org/en/documents/eur46/9686/2019/en/") == 23
    assert x_length("\U0001f469\u200d\U0001f469\u200d\U0001f466") == 2
    assert x_length("A\u0301") == 1  # NFC first
    assert not x_valid("")


def test_mastodon_count() -> None:
    assert mastodon_length("@alice@example.social hello") == len("@alice hello")
    assert mastodon_length("see https://example.org/" + "a" * 100) == 4 + 23
    assert mastodon_length("see http://x.io") == 4 + 23  # short URLs count 23 too
    assert mastodon_length("example.org") == 11  # no protocol: not a link on Mastodon
    assert mastodon_length("\U0001f469\u200d\U0001f469\u200d\U0001f466 ok") == 4
    assert mastodon_length("mail me: a@b.example") == len("mail me: a@b.example")
    assert MASTODON.fits("x" * 500) and not MASTODON.fits("x" * 501)


def test_bluesky_limits_graphemes_and_bytes() -> None:
    assert graphemes("e\u0301\U0001f1fa\U0001f1f8") == 2
    assert BLUESKY.fits("я" * 300) and not BLUESKY.fits("я" * 301)
    family = "\U0001f469\u200d\U0001f469\u200d\U0001f466"  # 1 grapheme, 18 bytes
    assert BLUESKY.fits(family * 160)
    assert not BLUESKY.fits(family * 170)  # 170 graphemes, but 3060 bytes


DEMAND = (
    "Investigate the detention, torture and killing of people believed to be gay or lesbian "
    "in Chechnya, bring those responsible to justice and protect everyone at risk."
)
HANDLES = ["@KremlinRussia", "@KremlinRussia_E", "@RusEmbUSA"]
LINK = "https://www.amnesty.org/en/documents/eur46/9686/2019/en/"


def test_compose_keeps_everything_that_fits() -> None:
    post = compose(X, mentions=HANDLES, body=DEMAND, hashtag="#Chechnya", link=LINK)
    assert post.text == " ".join([*HANDLES, DEMAND, "#Chechnya", LINK])
    assert not post.shortened and post.dropped == ()
    assert post.length == x_length(post.text) <= 280


def test_compose_shortens_at_a_word_boundary() -> None:
    body = DEMAND + " " + DEMAND
    post = compose(X, mentions=HANDLES, body=body, hashtag="#Chechnya", link=LINK)
    assert post.shortened
    assert x_length(post.text) <= 280
    assert post.text.endswith(f"{ELLIPSIS} #Chechnya {LINK}")
    kept = post.text.removeprefix(" ".join(HANDLES) + " ").split(ELLIPSIS)[0]
    assert body.startswith(kept)
    assert body[len(kept)] in " ,"  # cut between words, the comma dropped
    assert not kept.endswith(",")


def test_compose_cuts_text_without_spaces() -> None:
    body = "中国語の文章" * 100
    post = compose(X, mentions=HANDLES, body=body)
    assert post.shortened and x_length(post.text) <= 280
    assert len(post.text) > 100  # cut near the limit, not after the first word


def test_compose_never_cuts_a_url_in_the_body() -> None:
    url = "https://example.org/" + "long-path/" * 30
    body = "word " * 40 + url + " more words"
    post = compose(MASTODON, mentions=["@a@example.social"], body=body)
    assert url in post.text or "example.org" not in post.text
    assert mastodon_length(post.text) <= 500


def test_compose_drops_optional_parts_before_the_demand() -> None:
    handles = [f"@handle_{i:07d}" for i in range(15)]  # 15 x 16 = 240 of X's 280
    post = compose(X, mentions=handles, body=DEMAND, hashtag="#Chechnya", link=LINK)
    assert x_length(post.text) <= 280
    assert LINK in post.dropped
    assert all(h in post.text for h in handles)


def test_handles_alone_too_long_raise() -> None:
    handles = [f"@handle_{i:07d}" for i in range(20)]  # 20 x 16 - 1 = 319
    with pytest.raises(PostTooLong, match="handles alone"):
        compose(X, mentions=handles, body=DEMAND)


def test_bluesky_facets_use_utf8_byte_offsets() -> None:
    text = "@ünï.example.com Привет 😷 #Чечня https://example.org/путь"
    facets, unresolved = bluesky_facets(text, mentions={"ünï.example.com": None}, hashtag="#Чечня")
    raw = text.encode("utf-8")
    assert unresolved == [{"handle": "ünï.example.com", "index": {"byteStart": 0, "byteEnd": 18}}]
    spans = {
        f["features"][0]["$type"].rsplit("#", 1)[1]: raw[
            f["index"]["byteStart"] : f["index"]["byteEnd"]
        ].decode("utf-8")
        for f in facets
    }
    assert spans == {"tag": "#Чечня", "link": "https://example.org/путь"}
    with_did, unresolved = bluesky_facets(text, mentions={"ünï.example.com": "did:plc:abc"})
    assert unresolved == []
    assert with_did[0]["features"] == [
        {"$type": "app.bsky.richtext.facet#mention", "did": "did:plc:abc"}
    ]


# --- properties -----------------------------------------------------------------------------

LOWER = string.ascii_lowercase + string.digits
HANDLE_CHARS = string.ascii_letters + string.digits + "_"
x_handles = st.lists(
    st.text(HANDLE_CHARS, min_size=1, max_size=15), min_size=1, max_size=6, unique_by=str.lower
)
mastodon_accounts = st.lists(
    st.builds(
        "@{}@{}.{}".format,
        st.text(LOWER + "_", min_size=1, max_size=30),
        st.text(string.ascii_lowercase, min_size=1, max_size=20),
        st.sampled_from(["social", "org", "example"]),
    ),
    min_size=1,
    max_size=6,
    unique_by=lambda a: a.split("@")[1].lower(),
)
bluesky_handles = st.lists(
    st.builds(
        "{}.{}".format,
        st.text(LOWER, min_size=1, max_size=20),
        st.sampled_from(["bsky.social", "example.org", "mid.ru"]),
    ),
    min_size=1,
    max_size=6,
    unique_by=str.lower,
)

_url = st.builds(
    "{}{}.{}/{}".format,
    st.sampled_from(["https://", "http://", "", "https://www."]),
    st.text(LOWER + "-", min_size=1, max_size=30),
    st.sampled_from(["org", "com", "ru", "co.jp"]),
    st.text(HANDLE_CHARS + "/.?=&-", max_size=60),
)
_piece = st.one_of(
    st.text(max_size=15),
    st.sampled_from(
        [
            "Расследуйте",
            "задержания,",
            "пытки",
            "Чечне.",
            "中国語の文章です",
            "日本語",
            "한국어",
            "😷",
            "\U0001f469\u200d\U0001f469\u200d\U0001f466",
            "\U0001f3f4\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067\U000e007f",
            "e\u0301",
            "@someone",
            "#tag",
            "justice",
            "—",
        ]
    ),
    _url,
)
# Short and long bodies alike: most of the long ones need shortening.
bodies = st.one_of(
    st.text(max_size=300),
    st.text(min_size=200, max_size=600),
    st.lists(_piece, max_size=30).map(" ".join),
    st.lists(_piece, min_size=40, max_size=100).map(" ".join),
    st.lists(_piece, min_size=40, max_size=100).map("".join),
)
optional_hashtag = st.one_of(st.none(), st.sampled_from(["#Chechnya", "#Чечня", "#UA2_19"]))
optional_link = st.one_of(st.none(), st.just(LINK), _url.map(lambda u: "https://" + u))

FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _whole(mention: str, text: str) -> bool:
    return re.search(rf"(?<![\w@.]){re.escape(mention)}(?![\w@])", text) is not None


@FAST
@given(x_handles, bodies, optional_hashtag, optional_link)
def test_x_post_always_fits(
    handles: list[str], body: str, hashtag: str | None, link: str | None
) -> None:
    mentions = [f"@{h}" for h in handles]
    post = compose(X, mentions=mentions, body=body, hashtag=hashtag, link=link)
    parsed = parse_tweet(post.text)
    assert post.text.strip()
    assert parsed.valid and parsed.weightedLength <= 280
    assert all(_whole(m, post.text) for m in mentions)
    if not post.shortened and not post.dropped:
        assert textlimits.clean(body) in post.text


@FAST
@given(mastodon_accounts, bodies, optional_hashtag, optional_link)
def test_mastodon_post_always_fits(
    accounts: list[str], body: str, hashtag: str | None, link: str | None
) -> None:
    post = compose(MASTODON, mentions=accounts, body=body, hashtag=hashtag, link=link)
    assert post.text.strip()
    assert mastodon_length(post.text) <= 500
    assert all(_whole(a, post.text) for a in accounts)


@FAST
@given(bluesky_handles, bodies, optional_hashtag, optional_link)
def test_bluesky_post_always_fits(
    handles: list[str], body: str, hashtag: str | None, link: str | None
) -> None:
    mentions = [f"@{h}" for h in handles]
    post = compose(BLUESKY, mentions=mentions, body=body, hashtag=hashtag, link=link)
    assert post.text.strip()
    assert graphemes(post.text) <= 300
    assert len(post.text.encode("utf-8")) <= 3000
    assert all(_whole(m, post.text) for m in mentions)
    facets, unresolved = bluesky_facets(post.text, mentions=dict.fromkeys(handles), hashtag=hashtag)
    raw = post.text.encode("utf-8")
    assert sorted(
        raw[u["index"]["byteStart"] : u["index"]["byteEnd"]].decode() for u in unresolved
    ) == sorted(mentions)
    for facet in facets:
        piece = raw[facet["index"]["byteStart"] : facet["index"]["byteEnd"]].decode("utf-8")
        feature = facet["features"][0]
        if feature["$type"].endswith("#link"):
            assert piece == feature["uri"]
        else:
            assert piece == f"#{feature['tag']}"


@FAST
@given(bodies)
def test_cuts_never_split_a_protected_span(body: str) -> None:
    body = textlimits.clean(body)
    spans = textlimits.protected_spans(body)
    cuts = textlimits._Cuts(body, budget=10_000)
    assert set(cuts.word) <= set(cuts.anywhere)
    for k in cuts.anywhere:
        text = cuts.text(k)
        assert text.endswith(ELLIPSIS) and text.startswith(body[:k])
        assert 0 < k < len(body)
        assert not any(start < k < end for start, end in spans)
        assert body[k - 1] != " "


@settings(max_examples=25, deadline=None)
@given(st.lists(st.text(HANDLE_CHARS, min_size=15, max_size=15), min_size=18, max_size=25), bodies)
def test_x_refuses_when_handles_alone_do_not_fit(handles: list[str], body: str) -> None:
    with pytest.raises(PostTooLong):
        compose(X, mentions=[f"@{h}" for h in handles], body=body)
