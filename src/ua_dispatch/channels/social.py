"""Social posts the supporter publishes themselves: one per letter, tagging every official.

The X post tags every distinct X handle of the campaign, states the campaign's core demand in
the letter's language and carries the campaign's hashtag and link when they fit; it comes with a
web intent link that opens it ready to post. When targets list Mastodon or Bluesky accounts, a
post for each of those networks is drafted too (Bluesky with its rich-text facets). Lengths are
counted as each network counts them (see :mod:`ua_dispatch.textlimits`).

Drafts: ``social/x.txt``, ``social/x-intent.url``, ``social/mastodon.txt``,
``social/bluesky.txt`` and ``social/bluesky.json`` (the post record with facets).
"""

from __future__ import annotations

import json
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ua_dispatch import textlimits
from ua_dispatch.campaign import Campaign
from ua_dispatch.channels.base import ByHand, Channel
from ua_dispatch.delivery import BuildEnv
from ua_dispatch.errors import InputError
from ua_dispatch.plan import Appeal, Delivery
from ua_dispatch.textlimits import Limit, Post, PostTooLong

INTENT_URL = "https://x.com/intent/post?text="
#: share pages that open a composer with the text filled in
MASTODON_SHARE_URL = "https://toot.kytta.dev/?text="
BLUESKY_INTENT_URL = "https://bsky.app/intent/compose?text="

_FIELDS = {
    "X": "targets[].x_handles",
    "Mastodon": "targets[].mastodon",
    "Bluesky": "targets[].bluesky",
}


@dataclass(frozen=True)
class BlueskyDraft:
    post: Post
    #: an ``app.bsky.feed.post`` record: text, facets (UTF-8 byte offsets), langs, createdAt
    record: dict[str, Any]
    #: mentions whose DID the campaign does not give: handle and byte range
    unresolved_mentions: list[dict[str, Any]]

    def to_json(self) -> dict[str, Any]:
        return {"record": self.record, "unresolved_mentions": self.unresolved_mentions}


@dataclass(frozen=True)
class SocialPayload:
    language: str
    x: Post | None
    mastodon: Post | None
    bluesky: BlueskyDraft | None

    @property
    def x_intent(self) -> str | None:
        if self.x is None:
            return None
        return intent_url(self.x.text)


def intent_url(text: str) -> str:
    """A web link that opens X's composer with ``text`` filled in."""
    return INTENT_URL + urllib.parse.quote(text, safe="")


def share_links(payload: SocialPayload) -> dict[str, str]:
    """Links that open each drafted post ready to publish, by label."""
    links: dict[str, str] = {}
    if payload.x is not None:
        links["Post on X"] = intent_url(payload.x.text)
    if payload.mastodon is not None:
        links["Post on Mastodon"] = MASTODON_SHARE_URL + urllib.parse.quote(
            payload.mastodon.text, safe=""
        )
    if payload.bluesky is not None:
        links["Post on Bluesky"] = BLUESKY_INTENT_URL + urllib.parse.quote(
            payload.bluesky.post.text, safe=""
        )
    return links


def _compose(limit: Limit, mentions: list[str], appeal: Appeal, demand: str) -> Post:
    social = appeal.campaign.social
    try:
        return textlimits.compose(
            limit, mentions=mentions, body=demand, hashtag=social.hashtag, link=social.link
        )
    except PostTooLong as exc:
        raise InputError(
            f"cannot draft the {limit.network} post: {exc}",
            source=f"campaign {appeal.campaign.id}",
            field=_FIELDS[limit.network],
        ) from None


class SocialChannel(Channel[SocialPayload]):
    name = "social"
    address_word = "social media account"
    sends = False
    campaign_wide = True
    by_hand_verb = "published the post"

    def campaign_address(self, campaign: Campaign) -> str | None:
        handles = [f"@{h}" for h in campaign.x_handles]
        if not handles:  # no X account: the Mastodon and Bluesky posts are still worth drafting
            handles = list(campaign.mastodon_accounts)
            handles += [f"@{a.split(' ')[0]}" for a in campaign.bluesky_accounts]
        return " ".join(handles) or None

    def build(self, appeal: Appeal, delivery: Delivery, env: BuildEnv) -> SocialPayload:
        campaign = appeal.campaign
        demand, language = campaign.demand_for(appeal.letter.language)
        x = mastodon = None
        bluesky = None
        if campaign.x_handles:
            x = _compose(textlimits.X, [f"@{h}" for h in campaign.x_handles], appeal, demand)
        if campaign.mastodon_accounts:
            mastodon = _compose(textlimits.MASTODON, campaign.mastodon_accounts, appeal, demand)
        if campaign.bluesky_accounts:
            accounts: dict[str, str | None] = {}
            for entry in campaign.bluesky_accounts:
                handle, _, did = entry.partition(" ")
                accounts.setdefault(handle, did or None)
            post = _compose(textlimits.BLUESKY, [f"@{h}" for h in accounts], appeal, demand)
            facets, unresolved = textlimits.bluesky_facets(
                post.text, mentions=accounts, hashtag=campaign.social.hashtag
            )
            record: dict[str, Any] = {
                "$type": "app.bsky.feed.post",
                "text": post.text,
                "langs": [language],
                "createdAt": env.now.isoformat().replace("+00:00", "Z"),
            }
            if facets:
                record["facets"] = facets
            bluesky = BlueskyDraft(post, record, unresolved)
        if x is None and mastodon is None and bluesky is None:
            raise ValueError("cannot build a social post for a campaign without accounts")
        return SocialPayload(language=language, x=x, mastodon=mastodon, bluesky=bluesky)

    def write_draft(self, payload: SocialPayload, delivery: Delivery, out_dir: Path) -> Path:
        folder = out_dir / "social"
        folder.mkdir(parents=True, exist_ok=True)
        written: list[Path] = []

        def write(name: str, text: str) -> None:
            path = folder / name
            path.write_text(text, encoding="utf-8", newline="\n")
            written.append(path)

        if payload.x is not None:
            write("x.txt", payload.x.text + "\n")
            write("x-intent.url", intent_url(payload.x.text) + "\n")
        if payload.mastodon is not None:
            write("mastodon.txt", payload.mastodon.text + "\n")
        if payload.bluesky is not None:
            write("bluesky.txt", payload.bluesky.post.text + "\n")
            doc = json.dumps(payload.bluesky.to_json(), ensure_ascii=False, indent=2)
            write("bluesky.json", doc + "\n")
        return written[0]

    def draft_text(self, payload: SocialPayload) -> str | None:
        bluesky = payload.bluesky.post if payload.bluesky is not None else None
        for post in (payload.x, payload.mastodon, bluesky):
            if post is not None:
                return post.text
        return None

    def by_hand(self, payload: SocialPayload | None, delivery: Delivery) -> list[ByHand]:
        if payload is None:
            return []
        shown = next((t.text for t in (payload.x, payload.mastodon) if t is not None), None)
        return [
            ByHand(
                self.name,
                delivery.slug,
                "all officials",
                "Share a post",
                shown,
                share_links(payload),
            )
        ]
