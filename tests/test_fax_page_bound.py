"""The page bound ``queue add`` uses to keep a fax within UA_DISPATCH_FAX_MAX_PAGES without
laying it out: never fewer pages than the real document has."""

from __future__ import annotations

import datetime as dt

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import SHIPPED_CAMPAIGN
from ua_dispatch.campaign import load_campaign
from ua_dispatch.channels import get_channel, lookup
from ua_dispatch.delivery import BuildEnv
from ua_dispatch.documents.pdf import pages_at_most
from ua_dispatch.letter import make_supporter, parse_letter, render_letter
from ua_dispatch.plan import Appeal, plan_deliveries
from ua_dispatch.settings import Settings

# words as letters have them, with the widest characters the font has among them
_WORDS = ["the", "release", "Ахмед", "Шщ", "‰‰", "@", "№5", "W", "mm", "international", "—"]
paragraph = st.lists(st.sampled_from(_WORDS), min_size=1, max_size=120).map(" ".join)
letter_text = st.lists(paragraph, min_size=1, max_size=25).map("\n\n".join)
CAMPAIGN = load_campaign(SHIPPED_CAMPAIGN)


@settings(max_examples=25, deadline=None)
@given(text=letter_text, cover=st.booleans(), name=st.sampled_from(["Ann", "Анна " * 8]))
def test_the_bound_is_never_below_the_real_page_count(text: str, cover: bool, name: str) -> None:
    campaign = CAMPAIGN
    letter = parse_letter(
        text.encode(), source="letter", max_chars=100_000, language="en", accepted=["en"]
    )
    supporter = make_supporter(name=name, email="ann@example.org", city="York", country="UK")
    appeal = Appeal(campaign=campaign, letter=letter, supporter=supporter)
    env = BuildEnv(
        settings=Settings(_env_file=None, fax_max_pages=100, fax_cover_page=cover),
        now=dt.datetime(2026, 11, 27, 12, tzinfo=dt.UTC),
    )
    for d in plan_deliveries(appeal, lookup(["fax"])):
        if d.to is None:
            continue
        real = get_channel("fax").build(appeal, d, env).document.pages
        rendered = render_letter(letter, supporter, d.the_target)
        bound = pages_at_most(rendered, d.the_target, supporter, campaign, cover=cover)
        assert bound >= real
