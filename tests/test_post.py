"""The post channel: a printable letter per target, drafted for the supporter to send."""

from __future__ import annotations

import io
from pathlib import Path

import pypdf

from tests.conftest import EXAMPLES, SHIPPED_CAMPAIGN, SUPPORTER_ARGS
from ua_dispatch.campaign import load_campaign
from ua_dispatch.channels import CHANNELS, by_hand_channels, get_channel, sending_channels
from ua_dispatch.channels.post import PostChannel

A4 = (595.28, 841.89)
LETTER = (612.0, 792.0)


def read_pdf(path: Path) -> tuple[str, set[tuple[float, float]]]:
    r = pypdf.PdfReader(io.BytesIO(path.read_bytes()))
    text = " ".join(" ".join(p.extract_text().split()) for p in r.pages)
    size = {
        (round(float(p.mediabox.width), 2), round(float(p.mediabox.height), 2)) for p in r.pages
    }
    return text, size


def test_post_is_registered_and_completed_by_hand() -> None:
    channel = get_channel("post")
    assert isinstance(channel, PostChannel)
    assert "post" in CHANNELS
    assert channel.sends is False
    assert channel.campaign_wide is False


def test_post_address_is_the_printed_address() -> None:
    campaign = load_campaign(SHIPPED_CAMPAIGN)
    channel = get_channel("post")
    assert channel.address_of(campaign.target("president")) == (
        "Ul. Ilyinka, 23, 103132 Moscow, Russian Federation"
    )
    assert channel.address_of(campaign.target("ambassador-usa")) == (
        "Embassy of the Russian Federation, 2650 Wisconsin Ave. NW, Washington DC 20007, USA"
    )


def test_draft_writes_one_pdf_per_target(run_cli, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = run_cli(
        "draft",
        SHIPPED_CAMPAIGN,
        EXAMPLES / "letter-ru.txt",
        *SUPPORTER_ARGS,
        "--channels",
        "post",
        "--out",
        out,
        "--json",
    )
    assert result.code == 0, result.stderr
    deliveries = result.json()["deliveries"]
    assert [(d["channel"], d["target"], d["status"]) for d in deliveries] == [
        ("post", "president", "drafted"),
        ("post", "ambassador-usa", "drafted"),
    ]
    president = out / "post" / "president.pdf"
    ambassador = out / "post" / "ambassador-usa.pdf"
    assert [d["ref"] for d in deliveries] == [str(president), str(ambassador)]

    text, size = read_pdf(president)
    assert size == {A4}
    assert "Ul. Ilyinka, 23 103132 Moscow Russian Federation" in text
    assert "Уважаемый господин Президент," in text
    assert "Прошу вас обеспечить незамедлительное, тщательное и эффективное расследование" in text
    assert "С уважением, Alex Example Leeds, United Kingdom" in text

    text, size = read_pdf(ambassador)
    assert size == {LETTER}
    assert "2650 Wisconsin Ave. NW Washington DC 20007 USA" in text
    assert "Уважаемый господин Посол," in text


def test_send_drafts_the_letters_and_reports_their_paths(run_cli, open_campaign: Path) -> None:
    result = run_cli(
        "send",
        open_campaign,
        EXAMPLES / "letter-en.txt",
        *SUPPORTER_ARGS,
        "--channels",
        "post",
        "--yes",
        "--json",
    )
    assert result.code == 0, result.stderr
    deliveries = result.json()["deliveries"]
    assert {d["status"] for d in deliveries} == {"drafted"}
    for d in deliveries:
        path = Path(d["ref"])
        assert path.name == f"{d['target']}.pdf"
        assert path.parent.name == "post"
        text, _ = read_pdf(path)
        assert "Yours sincerely, Alex Example" in text


def test_unprintable_letter_leaves_out_only_the_post_naming_the_characters(
    run_cli, tmp_path: Path
) -> None:
    """A private-use character no font has: the post is left out, saying which character, and
    no PDF is written; the email draft of the same letter is written as usual."""
    letter = tmp_path / "letter.txt"
    letter.write_text("Dear President,\n\nPlease act now \ue000.\n", encoding="utf-8")
    out = tmp_path / "out"
    result = run_cli(
        "draft",
        SHIPPED_CAMPAIGN,
        letter,
        *SUPPORTER_ARGS,
        "--channels",
        "email,post",
        "--out",
        out,
        "--json",
    )
    assert result.code == 0, result.stderr
    deliveries = result.json()["deliveries"]
    posts = [d for d in deliveries if d["channel"] == "post"]
    emails = [d for d in deliveries if d["channel"] == "email"]
    assert posts and all(d["status"] == "skipped" for d in posts)
    for d in posts:
        assert "U+E000, a private-use character" in d["error"]
        assert d["error"].startswith(f"left out: {letter}: ")
    assert "drafted" in {d["status"] for d in emails}
    assert not (out / "post").exists()
    assert (out / "email").is_dir()


def test_by_hand_channels_come_from_the_registry() -> None:
    assert by_hand_channels() == [n for n, c in CHANNELS.items() if not c.sends]
    assert set(by_hand_channels()) == {"post", "social", "phone"}
    assert not set(by_hand_channels()) & set(sending_channels())
    for name in by_hand_channels():
        assert get_channel(name).by_hand_verb
