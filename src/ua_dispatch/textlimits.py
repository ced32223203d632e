"""How long a post is on X, Mastodon and Bluesky, and shortening a post until it fits.

Every count the social drafts rely on lives here:

- **X** counts with the twitter-text v3 rules: the text is NFC-normalised, code points in a few
  ranges (Latin, Cyrillic, general punctuation, ...) weigh 1 and all others 2, every URL
  (bare domains included) weighs 23 and an emoji sequence weighs 2; at most 280. The count comes
  from the ``twitter-text-parser`` package, checked against X's conformance cases in the tests.
- **Mastodon** counts grapheme clusters after every ``http(s)://`` URL is replaced by 23
  characters and every ``@user@server`` mention by ``@user`` (as the server's status length
  check does); at most 500.
- **Bluesky** counts grapheme clusters (at most 300) and UTF-8 bytes (at most 3000).

:func:`compose` builds a post from mentions, a body and optional tags and link, and shortens
the body at a word boundary with an ellipsis when the whole would not fit. Mentions, hashtags,
URLs and grapheme clusters are never cut, and a right-to-left run cut short keeps its ellipsis
at its own end; a hashtag or link is dropped before the body is cut to almost nothing.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import regex

X_MAX = 280
MASTODON_MAX = 500
BLUESKY_MAX_GRAPHEMES = 300
BLUESKY_MAX_BYTES = 3000
URL_LENGTH = 23
ELLIPSIS = "…"

# Characters X refuses in a post (twitter-text's invalid set) and other invisible troublemakers:
# controls, byte-order marks, bidi embedding/override marks, surrogates, noncharacters.
_INVALID_RE = regex.compile(r"[\p{Cc}\p{Cs}\uFEFF\uFFFE\uFFFF\u202A-\u202E]")
_SPACE_RE = regex.compile(r"[\s\p{Zs}]+")
# Scripts written without spaces between words: a cut may fall between any two characters.
_NO_SPACE_SCRIPT_RE = regex.compile(r"[\p{Han}\p{Hiragana}\p{Katakana}\u3000-\u303F\uFF00-\uFFEF]")
# Entities a cut must not split: mentions (X, Mastodon @user@server, Bluesky @a.b.c) and tags.
_MENTION_RE = regex.compile(r"(?<![\w@])@\w+(?:[.@-]+\w+)*")
_HASHTAG_RE = regex.compile(r"(?<![\w#&])[#＃]\w+")
# Mastodon's mention pattern: @user or @user@server, not preceded by a word character, = or /.
_MASTODON_MENTION_RE = re.compile(
    r"(?<![=/\w])@([a-z0-9_]+(?:[.-]+[a-z0-9_]+)*)(?:@\w+(?:[.-]+\w+)*)?", re.IGNORECASE
)
# Trailing characters that look wrong before an ellipsis.
_TRAILING_PUNCT = ",;:-–—(/«„“\"'،؛"


def clean(text: str) -> str:
    """NFC, without characters a network refuses, on one line with single spaces."""
    text = unicodedata.normalize("NFC", text)
    text = str(_SPACE_RE.sub(" ", text))
    text = str(_INVALID_RE.sub("", text))
    return str(_SPACE_RE.sub(" ", text)).strip()


RIGHT_TO_LEFT_MARK = "\u200f"


def ends_right_to_left(text: str) -> bool:
    """True when the last letter of ``text`` (its last strongly directional character) is
    written right to left (Arabic, Hebrew, ...)."""
    for char in reversed(text):
        kind = unicodedata.bidirectional(char)
        if kind in ("R", "AL"):
            return True
        if kind == "L":
            return False
    return False


def graphemes(text: str) -> int:
    """Number of user-perceived characters (extended grapheme clusters)."""
    return len(regex.findall(r"\X", text))


def _grapheme_ends(text: str) -> list[int]:
    return [m.end() for m in regex.finditer(r"\X", text)]


def urls(text: str, *, with_protocol: bool = False) -> list[tuple[int, int]]:
    """``(start, end)`` of each URL as twitter-text finds them (bare domains included unless
    ``with_protocol``)."""
    from twitter_text import extract_urls_with_indices  # imported on use: slow to load

    spans = []
    for entity in extract_urls_with_indices(text):
        start, end = entity["indices"]
        if with_protocol and not re.match(r"https?://", entity["url"], re.IGNORECASE):
            continue
        spans.append((start, end))
    return spans


def x_length(text: str) -> int:
    """The weighted length X gives ``text`` (twitter-text v3)."""
    from twitter_text import parse_tweet  # imported on use: slow to load

    return int(parse_tweet(text).weightedLength)


def x_valid(text: str) -> bool:
    """True when X would accept ``text``: not empty, at most 280, no invalid characters."""
    from twitter_text import parse_tweet  # imported on use: slow to load

    return bool(parse_tweet(text).valid)


def mastodon_length(text: str) -> int:
    """Mastodon's count: URLs as 23 characters, ``@user@server`` as ``@user``, graphemes."""
    entities: list[tuple[int, int, str]] = [
        (start, end, "x" * URL_LENGTH) for start, end in urls(text, with_protocol=True)
    ]
    entities += [
        (m.start(), m.end(), f"@{m.group(1)}") for m in _MASTODON_MENTION_RE.finditer(text)
    ]
    entities.sort()
    out: list[str] = []
    pos = 0
    for start, end, replacement in entities:
        if start < pos:  # overlaps an earlier entity: the earlier one wins
            continue
        out.append(text[pos:start])
        out.append(replacement)
        pos = end
    out.append(text[pos:])
    return graphemes("".join(out))


def bluesky_bytes(text: str) -> int:
    return len(text.encode("utf-8"))


@dataclass(frozen=True)
class Limit:
    """One network's length rule."""

    network: str
    maximum: int
    unit: str
    measure: Callable[[str], int]
    #: the whole acceptance test when there is more to it than the length (invalid characters
    #: on X, UTF-8 bytes on Bluesky)
    accepts: Callable[[str], bool] | None = None

    def fits(self, text: str) -> bool:
        if self.accepts is not None:
            return self.accepts(text)
        return self.measure(text) <= self.maximum

    def describe(self) -> str:
        return f"{self.maximum} {self.unit}"


X = Limit("X", X_MAX, "characters as X counts them", x_length, accepts=x_valid)
MASTODON = Limit("Mastodon", MASTODON_MAX, "characters", mastodon_length)
BLUESKY = Limit(
    "Bluesky",
    BLUESKY_MAX_GRAPHEMES,
    "characters",
    graphemes,
    accepts=lambda t: (
        graphemes(t) <= BLUESKY_MAX_GRAPHEMES and bluesky_bytes(t) <= BLUESKY_MAX_BYTES
    ),
)


class PostTooLong(ValueError):
    """Even the mentions alone exceed the network's limit."""


@dataclass(frozen=True)
class Post:
    text: str
    length: int
    limit: Limit = field(repr=False)
    #: the body was shortened with an ellipsis
    shortened: bool = False
    #: optional parts left out to make room (hashtag, link)
    dropped: tuple[str, ...] = ()


def protected_spans(text: str) -> list[tuple[int, int]]:
    """Spans a cut must not fall inside: URLs, mentions and hashtags."""
    spans = urls(text)
    spans += [(m.start(), m.end()) for m in _MENTION_RE.finditer(text)]
    spans += [(m.start(), m.end()) for m in _HASHTAG_RE.finditer(text)]
    return sorted(spans)


class _Cuts:
    """The places a body may be shortened, shortest first, as ``body[:k] + ellipsis``.

    ``word`` holds cuts between words (at a space, or beside a character of a script written
    without spaces); ``anywhere`` adds every other grapheme boundary, for a body whose first
    word is already too long. No cut splits a URL, mention or hashtag, and punctuation left
    dangling before the ellipsis is dropped. Only cuts up to ``budget`` graphemes (not counting
    protected spans, which may count less) are listed: anything longer cannot fit.
    """

    def __init__(self, body: str, budget: int):
        self.body = body
        spans = protected_spans(body)
        covered = bytearray(len(body) + 1)
        for start, end in spans:
            covered[start:end] = b"\x01" * (end - start)
        self.span_ends = {end for _, end in spans}
        word: dict[int, None] = {}
        anywhere: dict[int, None] = {}
        units = 0
        previous = 0
        #: the whole body is over the budget by itself: no need to try it uncut
        self.over_budget = False
        for i in _grapheme_ends(body):
            if not covered[previous]:
                units += 1
            previous = i
            if units > budget:
                self.over_budget = True
                break
            if i == len(body):
                break
            if covered[i] and covered[i - 1]:
                continue  # inside a protected span
            k = i
            while k > 0 and not covered[k - 1] and body[k - 1] in _TRAILING_PUNCT + " ":
                k -= 1
            if k == 0:
                continue
            anywhere[k] = None
            at_word = body[i] == " " or bool(
                _NO_SPACE_SCRIPT_RE.match(body[i - 1]) or _NO_SPACE_SCRIPT_RE.match(body[i])
            )
            if at_word:
                word[k] = None
        self.word = sorted(word)
        self.anywhere = sorted(anywhere)

    def text(self, k: int) -> str:
        joiner = " " if k in self.span_ends else ""
        return f"{self.body[:k]}{joiner}{ELLIPSIS}"

    def post_text(self, k: int) -> str:
        """:meth:`text`, and a right-to-left run cut short keeps its ellipsis where its text
        stops (on the left), also inside a post that reads left to right (mentions first): the
        mark after the ellipsis makes it part of the run."""
        text = self.text(k)
        if ends_right_to_left(self.body[:k]) and k not in self.span_ends:
            return text + RIGHT_TO_LEFT_MARK
        return text


def _longest(candidates: Sequence[int], fits: Callable[[int], bool]) -> int | None:
    """The longest candidate that fits (candidates are ordered shortest first).

    A binary search that only ever keeps a candidate it has seen fit, so the result fits even
    where longer text happens to count shorter (a cut that turns text into a URL, say)."""
    lo, hi = -1, len(candidates)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if fits(candidates[mid]):
            lo = mid
        else:
            hi = mid
    return candidates[lo] if lo >= 0 else None


# A body is worth dropping the hashtag or link for when less than this much of it would remain.
MIN_BODY = 60


def compose(
    limit: Limit,
    *,
    mentions: Sequence[str],
    body: str,
    hashtag: str | None = None,
    link: str | None = None,
) -> Post:
    """``mentions body hashtag link``, shortened to fit ``limit``.

    Raises :class:`PostTooLong` when the mentions alone do not fit. The result always contains
    every mention whole and is never empty when there is a mention or a body.
    """
    head = " ".join(mentions)
    if head and not limit.fits(head):
        raise PostTooLong(
            f"the handles alone ({head}) are {limit.measure(head)} long; "
            f"{limit.network} allows {limit.describe()}"
        )
    body = clean(body)
    tails: list[tuple[str, ...]] = []
    for option in ((hashtag, link), (link,), (hashtag,), ()):
        parts = tuple(p for p in option if p)
        if parts not in tails:
            tails.append(parts)
    optional = [p for p in (hashtag, link) if p]

    def assemble(text: str, tail: tuple[str, ...]) -> str:
        return " ".join(p for p in (head, text, *tail) if p)

    def post(text: str, tail: tuple[str, ...], *, shortened: bool) -> Post:
        full = assemble(text, tail)
        return Post(
            full,
            limit.measure(full),
            limit,
            shortened=shortened,
            dropped=tuple(p for p in optional if p not in tail),
        )

    cuts = _Cuts(body, limit.maximum)
    best: tuple[int, int, str, tuple[str, ...]] | None = None  # (kept, -rank, body, tail)
    for rank, tail in enumerate(tails):
        if body and not cuts.over_budget and limit.fits(assemble(body, tail)):
            return post(body, tail, shortened=False)

        def fits(k: int, tail: tuple[str, ...] = tail) -> bool:
            return limit.fits(assemble(cuts.post_text(k), tail))

        kept = _longest(cuts.word, fits) or _longest(cuts.anywhere, fits)
        if kept is None:
            continue
        if kept >= min(len(body), MIN_BODY):
            return post(cuts.post_text(kept), tail, shortened=True)
        if best is None or (kept, -rank) > best[:2]:
            best = (kept, -rank, cuts.post_text(kept), tail)
    if best is not None:
        return post(best[2], best[3], shortened=True)
    # Not one word of the body fits: the mentions, with whatever else still fits.
    for tail in tails:
        if limit.fits(assemble("", tail)) and assemble("", tail):
            return post("", tail, shortened=bool(body))
    raise PostTooLong(f"nothing to post within {limit.network}'s {limit.describe()}")


def utf8_span(text: str, start: int, end: int) -> tuple[int, int]:
    """Character offsets ``[start, end)`` as UTF-8 byte offsets."""
    byte_start = len(text[:start].encode("utf-8"))
    return byte_start, byte_start + len(text[start:end].encode("utf-8"))


def bluesky_facets(
    text: str, *, mentions: dict[str, str | None], hashtag: str | None = None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Rich-text facets for a Bluesky post, on UTF-8 byte offsets.

    ``mentions`` maps each handle (without ``@``) to its DID when known. A mention facet needs
    the DID, so mentions without one come back in the second list (handle and byte range) for
    whoever posts through the API to resolve; the app resolves them itself when the text is
    pasted there. Links are the ``http(s)`` URLs in the text; the hashtag becomes a tag facet.
    """
    facets: list[tuple[int, dict[str, Any]]] = []
    unresolved: list[dict[str, Any]] = []

    def facet(start: int, end: int, feature: dict[str, Any]) -> None:
        index = {"byteStart": start, "byteEnd": end}
        facets.append((start, {"index": index, "features": [feature]}))

    for handle, did in mentions.items():
        for m in re.finditer(rf"(?<![\w@.])@{re.escape(handle)}(?![\w.-]*\w)", text):
            start, end = utf8_span(text, m.start(), m.end())
            if did:
                facet(start, end, {"$type": "app.bsky.richtext.facet#mention", "did": did})
            else:
                unresolved.append({"handle": handle, "index": {"byteStart": start, "byteEnd": end}})
    for start_c, end_c in urls(text, with_protocol=True):
        start, end = utf8_span(text, start_c, end_c)
        feature = {"$type": "app.bsky.richtext.facet#link", "uri": text[start_c:end_c]}
        facets.append(
            (start, {"index": {"byteStart": start, "byteEnd": end}, "features": [feature]})
        )
    if hashtag:
        tag = hashtag.removeprefix("#")
        for m in re.finditer(rf"(?<![\w#])#{re.escape(tag)}(?!\w)", text):
            start, end = utf8_span(text, m.start(), m.end())
            feature = {"$type": "app.bsky.richtext.facet#tag", "tag": tag}
            facets.append(
                (start, {"index": {"byteStart": start, "byteEnd": end}, "features": [feature]})
            )
    facets.sort(key=lambda f: f[0])
    return [f for _, f in facets], unresolved
