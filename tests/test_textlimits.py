"""Post length rules: X's conformance cases, Mastodon and Bluesky counts, and shortening."""

from __future__ import annotations

import json
import os
import re
import string
import unicodedata
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twitter_text import parse_tweet
from twitter_text.config import config as twitter_config
from uniseg.graphemecluster import grapheme_clusters

from ua_dispatch import textlimits
from ua_dispatch.textlimits import (
    BLUESKY,
    ELLIPSIS,
    MASTODON,
    MIN_BODY,
    Limit,
    Post,
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

# Under mutation testing (scripts/mutation.py) every surviving mutant runs these again: fewer
# examples there keep a run of the module within minutes.
EXAMPLES = 25 if os.environ.get("UA_DISPATCH_MUTATION") else 100
FAST = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])


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
    assert post.length == parsed.weightedLength
    if not post.shortened and not post.dropped:
        whole = (*mentions, textlimits.clean(body), hashtag, link)
        assert post.text == " ".join(p for p in whole if p)


@FAST
@given(mastodon_accounts, bodies, optional_hashtag, optional_link)
def test_mastodon_post_always_fits(
    accounts: list[str], body: str, hashtag: str | None, link: str | None
) -> None:
    post = compose(MASTODON, mentions=accounts, body=body, hashtag=hashtag, link=link)
    assert post.text.strip()
    assert post.length == mastodon_length(post.text) <= 500
    assert all(_whole(a, post.text) for a in accounts)
    if not post.shortened and not post.dropped:
        whole = (*accounts, textlimits.clean(body), hashtag, link)
        assert post.text == " ".join(p for p in whole if p)


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


# --- boundaries and cases pinned by hand ----------------------------------------------------

FAMILY = "\U0001f469\u200d\U0001f469\u200d\U0001f466"  # one grapheme, 18 UTF-8 bytes


@pytest.mark.parametrize(("extra", "fits"), [(11, True), (12, True), (13, False)])
def test_bluesky_byte_limit_at_2999_3000_3001(extra: int, fits: bool) -> None:
    text = FAMILY * 166 + "a" * extra  # 2988 bytes + extra; 166 + extra graphemes
    assert len(text.encode("utf-8")) == 2988 + extra
    assert graphemes(text) == 166 + extra < 300
    assert BLUESKY.fits(text) is fits


@pytest.mark.parametrize(
    ("raw", "cleaned"),
    [
        ("Free\nthem", "Free them"),
        ("Free\r\n\tthem  now ", "Free them now"),
        ("Free\u00a0them\u2003now", "Free them now"),  # no-break and em spaces
        ("a\x00b\x07c", "abc"),  # controls go
        ("a \u202e b\ufeff", "a b"),  # a bidi override and a byte-order mark go, blanks squeezed
        ("e\u0301", "\u00e9"),  # NFC
        ("\n\n", ""),
    ],
)
def test_clean(raw: str, cleaned: str) -> None:
    assert textlimits.clean(raw) == cleaned


@pytest.mark.parametrize(
    ("text", "length"),
    [
        ("@bob@mastodon.example https://example.org/" + "p" * 60, len("@bob ") + 23),
        ("https://example.org/ @bob@mastodon.example", 23 + len(" @bob")),
        ("@bob@mastodon.example @amy@x.social", len("@bob @amy")),
        # a mention-like piece inside a URL is part of the URL
        ("https://example.org/~@bob@server.social", 23),
        ("see https://example.org/~@bob@server.social ok", 4 + 23 + 3),
        ("https://example.org/~@bob@server.social @amy@x.social", 23 + len(" @amy")),
        ("user=@bob@server.social", len("user=@bob@server.social")),
        ("Привет, @Bob_1@Server.Social!", len("Привет, @Bob_1!")),
    ],
)
def test_mastodon_counts_by_hand(text: str, length: int) -> None:
    assert mastodon_length(text) == length


@pytest.mark.parametrize(
    ("text", "count"),
    [
        ("", 0),
        ("abc", 3),
        ("e\u0301", 1),
        ("\U0001f1fa\U0001f1f8\U0001f1fa", 2),  # a flag and a lone regional indicator
        (FAMILY, 1),
        ("\U0001f44d\U0001f3fd", 1),  # thumbs up with a skin tone
        ("\r\n", 1),
        ("क्षि", 1),  # Devanagari conjunct with a vowel sign
        ("한국어", 3),
        ("\u1100\u1161\u11a8", 1),  # conjoining jamo
    ],
)
def test_graphemes_by_hand(text: str, count: int) -> None:
    assert graphemes(text) == count
    assert len(list(grapheme_clusters(text))) == count  # a second implementation agrees


def _tiny(maximum: int) -> Limit:
    """A limit in code points, small enough to check every cut by hand."""
    return Limit("Tiny", maximum, "characters", len)


def test_a_body_that_fits_is_kept_whole() -> None:
    post = compose(_tiny(20), mentions=["@a"], body="free them now")
    assert post == Post("@a free them now", 16, _tiny(20))


def test_the_longest_word_cut_that_fits_is_chosen() -> None:
    body = "one two three four five six"
    post = compose(_tiny(20), mentions=[], body=body)
    assert post.text == "one two three four…" and post.shortened and post.length == 19
    assert compose(_tiny(19), mentions=[], body=body).text == "one two three four…"
    assert compose(_tiny(18), mentions=[], body=body).text == "one two three…"


def test_punctuation_before_the_ellipsis_is_dropped() -> None:
    post = compose(_tiny(15), mentions=[], body="one, two; three: four")
    assert post.text == "one, two…"


def test_a_body_starting_with_punctuation_is_never_cut_to_nothing() -> None:
    post = compose(_tiny(12), mentions=[], body="— " + "x" * 30)
    assert post.text == "— " + "x" * 9 + "…"
    post = compose(_tiny(12), mentions=[], body="«" + "x" * 30 + " y")
    assert post.text == "«" + "x" * 10 + "…"


def test_a_word_longer_than_the_room_is_cut_inside() -> None:
    post = compose(_tiny(10), mentions=["@a"], body="abcdefghijklmnop qr")
    assert post.text == "@a abcdef…"


def test_no_space_scripts_cut_at_the_script_boundary() -> None:
    # between the last CJK character and the Latin word after it
    post = compose(_tiny(6), mentions=[], body="中国語abcdefghij klm")
    assert post.text == "中国語…"
    # and between a Latin word and the CJK after it
    post = compose(_tiny(6), mentions=[], body="abcd中国語文章です")
    assert post.text == "abcd中…"


def test_a_mention_in_the_body_is_kept_whole_with_a_space_before_the_ellipsis() -> None:
    post = compose(_tiny(16), mentions=[], body="write @official_x now and later")
    assert post.text == "write…"
    post = compose(_tiny(20), mentions=[], body="write @official_x now and later")
    assert post.text == "write @official_x …"


def test_nothing_fits_is_an_error() -> None:
    with pytest.raises(PostTooLong, match="nothing to post within Tiny's 1 characters"):
        compose(_tiny(1), mentions=[], body="hello")
    with pytest.raises(PostTooLong, match="nothing to post"):
        compose(_tiny(5), mentions=[], body="", hashtag="#toolong")
    with pytest.raises(PostTooLong, match=r"the handles alone \(@abcdef\) are 7 long; Tiny allows"):
        compose(_tiny(5), mentions=["@abcdef"], body="x")


def test_mentions_alone_when_not_one_word_fits() -> None:
    post = compose(_tiny(4), mentions=["@ab"], body="hello", hashtag="#t")
    assert post.text == "@ab" and post.shortened and post.dropped == ("#t",)
    post = compose(_tiny(6), mentions=["@ab"], body="", hashtag="#t")
    assert post.text == "@ab #t" and not post.shortened


def test_compose_never_cuts_a_url_in_the_body() -> None:
    url = "https://example.org/" + "long-path/" * 30
    body = "word " * 40 + url + " more words"
    post = compose(MASTODON, mentions=["@a@example.social"], body=body)
    # the URL counts 23 on Mastodon: the whole body fits
    assert post.text == "@a@example.social " + body and not post.shortened
    # with more after it the body is cut after the URL, which stays whole
    body = "word " * 40 + url + " more words" * 40
    post = compose(MASTODON, mentions=["@a@example.social"], body=body)
    assert post.shortened and url in post.text and post.text.endswith(" more…")
    assert 500 - len(" words") < post.length == mastodon_length(post.text) <= 500
    # on X with a cut falling where the URL is: before it, never inside
    body = "word " * 50 + url + " end"
    post = compose(X, mentions=["@abcdefghijkl"], body=body)
    assert post.shortened and "example.org" not in post.text
    assert post.text == "@abcdefghijkl " + ("word " * 50).strip() + "…"


# --- independent oracles ----------------------------------------------------------------------


def _cut_by_brute_force(head: str, body: str, maximum: int) -> str:
    """What compose must give for a body of words of letters joined by single spaces, under a
    limit counting code points: every cut tried, the longest that fits kept."""

    def whole(text: str) -> str:
        return " ".join(p for p in (head, text) if p)

    if body and len(whole(body)) <= maximum:
        return whole(body)
    at_words = [k for k in range(1, len(body)) if body[k] == " "]
    anywhere = [k for k in range(1, len(body)) if body[k - 1] != " "]
    for cuts in (at_words, anywhere):
        fitting = [k for k in cuts if len(whole(body[:k] + ELLIPSIS)) <= maximum]
        if fitting:
            return whole(body[: max(fitting)] + ELLIPSIS)
    if head:
        return head
    raise PostTooLong("nothing fits")


@settings(max_examples=EXAMPLES * 2, deadline=None)
@given(
    st.sampled_from(["", "@m", "@someone"]),
    st.lists(st.text("abcdefg", min_size=1, max_size=9), max_size=9).map(" ".join),
    st.integers(min_value=1, max_value=45),
)
def test_the_chosen_post_is_the_longest_that_fits(head: str, body: str, maximum: int) -> None:
    limit = _tiny(maximum)
    if head and len(head) > maximum:
        with pytest.raises(PostTooLong, match="handles alone"):
            compose(limit, mentions=[head] if head else [], body=body)
        return
    try:
        expected = _cut_by_brute_force(head, body, maximum)
    except PostTooLong:
        with pytest.raises(PostTooLong, match="nothing to post"):
            compose(limit, mentions=[head] if head else [], body=body)
        return
    post = compose(limit, mentions=[head] if head else [], body=body)
    assert post.text == expected
    assert post.length == len(expected)
    assert post.shortened is (expected != " ".join(p for p in (head, body) if p))


# X's weights, from its documented v3 configuration rather than the library: code points in
# these ranges weigh 1, all others 2, after NFC. (URLs and emoji, which weigh 23 and 2 whatever
# their length, are kept out of the alphabet below.)
_X_LIGHT = ((0x0000, 0x10FF), (0x2000, 0x200D), (0x2010, 0x201F), (0x2032, 0x2037))
_X_ALPHABET = (
    string.ascii_letters
    + string.digits
    + " ,;:!?'\"()-"
    + "éüßøñ"
    + "Привет Чечня"
    + "αβγδ"
    + "שלום"
    + "مرحبا"
    + "日本語中文"
    + "한국어"
    + "‐–—‘’“”′″"  # inside the light ranges
    + "…‰€™"  # outside them
    + "\u0301"  # a combining accent: NFC may fold it into the letter before
)


def _x_weight_by_hand(text: str) -> int:
    text = unicodedata.normalize("NFC", text)
    return sum(1 if any(lo <= ord(c) <= hi for lo, hi in _X_LIGHT) else 2 for c in text)


@pytest.mark.parametrize(
    ("text", "weight"),
    [("abc", 3), ("日本", 4), ("—…", 3), ("e\u0301", 1), ("Привет", 6), ("€", 2), ("′", 1)],
)
def test_x_weights_by_hand(text: str, weight: int) -> None:
    assert _x_weight_by_hand(text) == weight == x_length(text)


@FAST
@given(st.text(_X_ALPHABET, max_size=200))
def test_x_length_agrees_with_the_documented_weights(text: str) -> None:
    assert x_length(text) == _x_weight_by_hand(text)


_GRAPHEME_PIECES = st.lists(
    st.sampled_from(
        [
            "a",
            "я",
            " ",
            "e\u0301",
            "中",
            "한",
            "\u1100\u1161\u11a8",
            "😷",
            FAMILY,
            "\U0001f44d\U0001f3fd",
            "\U0001f1fa\U0001f1f8",
            "\U0001f3f4\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067\U000e007f",
            "क्षि",
            "\u0301",
        ]
    ),
    max_size=400,
).map("".join)


@FAST
@given(_GRAPHEME_PIECES)
def test_grapheme_count_agrees_with_a_second_implementation(text: str) -> None:
    assert graphemes(text) == len(list(grapheme_clusters(text)))


@FAST
@given(bluesky_handles, _GRAPHEME_PIECES, optional_hashtag)
def test_bluesky_post_fits_by_a_second_count(
    handles: list[str], body: str, hashtag: str | None
) -> None:
    mentions = [f"@{h}" for h in handles]
    post = compose(BLUESKY, mentions=mentions, body=body, hashtag=hashtag)
    assert len(list(grapheme_clusters(post.text))) == post.length <= 300
    assert len(post.text.encode("utf-8")) <= 3000
    if not post.shortened and not post.dropped:
        cleaned = textlimits.clean(body)
        assert post.text == " ".join(p for p in (*mentions, cleaned, hashtag) if p)


def test_an_optional_part_is_dropped_when_no_cut_fits_with_it() -> None:
    link = "https://x.org/a"  # 15 characters: no cut fits beside it
    post = compose(_tiny(12), mentions=[], body="hello world again", hashtag="#t", link=link)
    assert post.text == "hello world…" and post.dropped == ("#t", link)


def test_a_cut_keeping_min_body_characters_keeps_the_hashtag() -> None:
    body = "x" * MIN_BODY + " yy"
    post = compose(_tiny(MIN_BODY + 4), mentions=[], body=body, hashtag="#t")
    assert post.text == "x" * MIN_BODY + "… #t" and post.shortened and post.dropped == ()
    # keeping less than that, the hashtag goes and the whole body stays
    post = compose(_tiny(MIN_BODY + 3), mentions=[], body=body, hashtag="#t")
    assert post.text == body and not post.shortened and post.dropped == ("#t",)


def test_bluesky_facets_in_full() -> None:
    """Byte offsets by hand: "#Чечня " is 1 + 10 + 1 bytes, "@ann.bsky.social " 17."""
    text = "#Чечня @ann.bsky.social see https://a.org/x and a.org"
    facets, unresolved = bluesky_facets(
        text, mentions={"ann.bsky.social": "did:plc:ann"}, hashtag="Чечня"
    )
    assert unresolved == []
    assert facets == [
        {
            "index": {"byteStart": 0, "byteEnd": 11},
            "features": [{"$type": "app.bsky.richtext.facet#tag", "tag": "Чечня"}],
        },
        {
            "index": {"byteStart": 12, "byteEnd": 28},
            "features": [{"$type": "app.bsky.richtext.facet#mention", "did": "did:plc:ann"}],
        },
        {  # the bare domain at the end is no link
            "index": {"byteStart": 33, "byteEnd": 48},
            "features": [{"$type": "app.bsky.richtext.facet#link", "uri": "https://a.org/x"}],
        },
    ]


@pytest.mark.parametrize(
    ("body", "budget", "over", "word", "anywhere"),
    [
        # a b ␠ c d: the fifth grapheme is over a budget of four; the cut before it is listed
        ("ab cd ef", 4, True, [2], [1, 2, 4]),
        ("ab cd ef", 100, False, [2, 5], [1, 2, 4, 5, 7]),
        # a mention counts nothing against the budget ("(" does, and is never left dangling)
        ("@abc de f", 2, True, [4], [4, 6]),
        ("(@bc de f", 2, True, [4], [4]),
        ("x@abc de", 2, True, [], [1, 2]),  # not a mention: "@" after a letter
        # punctuation dropped before the ellipsis, at the start and the end too
        ("(ab cd, ef,", 100, False, [3, 6], [2, 3, 5, 6, 9, 10]),
    ],
)
def test_cuts_are_listed_up_to_the_budget(
    body: str, budget: int, over: bool, word: list[int], anywhere: list[int]
) -> None:
    cuts = textlimits._Cuts(body, budget)
    assert cuts.over_budget is over
    assert (cuts.word, cuts.anywhere) == (word, anywhere)


def test_a_long_url_counts_23_against_the_budget_not_its_length() -> None:
    body = "see https://example.org/" + "a" * 600
    post = compose(MASTODON, mentions=[], body=body)
    assert post.text == body and not post.shortened and post.length == 4 + 23


def test_between_equal_cuts_the_one_keeping_more_optional_parts_wins() -> None:
    post = compose(_tiny(10), mentions=[], body="hello world again", hashtag="#t")
    assert post.text == "hello… #t" and post.dropped == ()


def test_only_punctuation_is_dropped_before_the_ellipsis() -> None:
    assert compose(_tiny(6), mentions=[], body="TAX CUTS NOW").text == "TAX…"


def test_urls_with_and_without_a_protocol() -> None:
    assert textlimits.urls("a example.org b") == [(2, 13)]  # a bare domain, as X sees it
    assert textlimits.urls("a example.org b", with_protocol=True) == []
    assert textlimits.urls("a HTTPS://EXAMPLE.ORG/x b", with_protocol=True) == [(2, 23)]
    assert mastodon_length("HTTPS://EXAMPLE.ORG/" + "A" * 50) == 23
