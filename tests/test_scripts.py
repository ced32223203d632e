"""A letter in any script reaches every channel: its language is detected, the PDFs print every
character (shaped, in its direction), and the email carries the text as written.

Each script's post PDF is read back with PDFium, its glyphs are compared against the letter (no
character drawn as an empty box), and its first page is kept as a PNG under
``artifacts/scripts/`` for a person to look at.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import io
import os
import re
import unicodedata
from pathlib import Path

import pypdf
import pypdfium2 as pdfium
import pytest
from fpdf import FPDF

from tests.conftest import ROOT, SHIPPED_CAMPAIGN, SUPPORTER_ARGS
from ua_dispatch import textlimits
from ua_dispatch.campaign import Campaign, load_campaign
from ua_dispatch.documents.fonts import cjk_installed, font_files, ignorable
from ua_dispatch.engine import Prepared, prepare, write_drafts
from ua_dispatch.letter import detect_language, make_supporter, parse_letter
from ua_dispatch.outcome import Outcome
from ua_dispatch.plan import Appeal, Status
from ua_dispatch.settings import Settings
from ua_dispatch.textlimits import Limit

ARTIFACTS = ROOT / "artifacts" / "scripts"
NOW = dt.datetime(2019, 1, 20, 12, 0, tzinfo=dt.UTC)
CJK = {"chinese-simplified", "chinese-traditional", "japanese", "korean"}
# scripts whose text PDF readers get back word for word (shaped Arabic and Indic clusters come
# back as their letters, not always in order: those are compared letter by letter)
WORD_FOR_WORD = {
    "vietnamese",
    "greek",
    "cyrillic",
    "hebrew",
    "emoji",
    *CJK,
}

SAMPLES: dict[str, tuple[str, str]] = {
    "vietnamese": (
        "vi",
        "Tôi viết thư này để yêu cầu trả tự do ngay lập tức cho nhà báo Oyub Titiev. "
        "Ông ấy đang bị giam giữ một cách bất công.",
    ),
    "greek": (
        "el",
        "Σας γράφω για να ζητήσω την άμεση απελευθέρωση του δημοσιογράφου Oyub Titiev. "
        "Κρατείται άδικα.",
    ),
    "cyrillic": (
        "ru",
        "Я пишу вам, чтобы потребовать немедленного освобождения журналиста Оюба Титиева. "
        "Его держат под стражей несправедливо.",
    ),
    "arabic": (
        "ar",
        "أكتب إليكم للمطالبة بالإفراج الفوري عن الصحفي أويوب تيتييف. إنه محتجز ظلماً منذ عام 2018.",
    ),
    "persian": (
        "fa",
        "من به شما نامه می\u200cنویسم تا آزادی فوری روزنامه\u200cنگار اویوب تیتیف را درخواست کنم.",
    ),
    "hebrew": (
        "he",
        "אני כותב אליך כדי לבקש את שחרורו המיידי של העיתונאי אויוב טיטייב. הוא עצור שלא כדין.",
    ),
    "devanagari": (
        "hi",
        "मैं आपको पत्रकार ओयुब तितिएव की तत्काल रिहाई की मांग करने के लिए लिख रहा हूँ। "
        "उन्हें अन्यायपूर्ण तरीके से हिरासत में रखा गया है।",
    ),
    "bengali": (
        "bn",
        "আমি সাংবাদিক ওয়ুব তিতিয়েভের অবিলম্বে মুক্তির দাবিতে আপনাকে লিখছি। তাঁকে অন্যায়ভাবে আটক রাখা হয়েছে।",
    ),
    "thai": (
        "th",
        "ข้าพเจ้าเขียนจดหมายนี้เพื่อเรียกร้องให้ปล่อยตัวนักข่าวโอยุบ ติติเยฟโดยทันที เขาถูกควบคุมตัวอย่างไม่เป็นธรรม",
    ),
    "chinese-simplified": (
        "zh",
        "我写信要求立即释放记者奥尤布·季季耶夫。他被无理拘留，这是不公正的。",
    ),
    "chinese-traditional": (
        "zh",
        "我寫信要求立即釋放記者奧尤布·季季耶夫。他被無理拘留，這是不公正的。",
    ),
    "japanese": (
        "ja",
        "ジャーナリストのオユブ・ティティエフ氏の即時釈放を求めて、この手紙を書いています。",
    ),
    "korean": (
        "ko",
        "저는 언론인 오유브 티티예프의 즉각적인 석방을 요구하기 위해 이 편지를 씁니다.",
    ),
    "emoji": ("en", "Please free the journalist Oyub Titiev now ✊ 🕊️ ❤️ 🙏🏽 👩\u200d⚖️ ☮"),
}

MIXED = """Dear Ambassador,

I am writing from Leeds about Oyub Titiev. As a Russian colleague of his put it: «Правозащитники \
не преступники, их место не в тюрьме.» My friend 王小明 (Wang Xiaoming) signs this letter too ✊.

لا ينبغي أن يُسجن المدافعون عن حقوق الإنسان بسبب عملهم. أطلقوا سراح أويوب تيتييف فوراً.

请立即无条件释放奥尤布·季季耶夫。人权捍卫者不是罪犯。

Please read https://www.amnesty.org/en/documents/eur46/9686/2019/en/ and \
https://www.memo.ru/en-us/ for the details of his case. 🕊️

Yours sincerely,
"""


def needs_cjk(script: str) -> None:
    """Chinese, Japanese and Korean need Debian's fonts-noto-cjk. On a developer's machine
    without it these cases are skipped with that reason; under CI (which installs it) a missing
    font is a failure, never a skip."""
    if script in CJK and not cjk_installed():
        message = "Debian's fonts-noto-cjk is not installed (make fonts installs it)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(scope="module")
def one_target() -> Campaign:
    """The shipped campaign with only the ambassador (email, fax and post address)."""
    campaign = load_campaign(SHIPPED_CAMPAIGN)
    return campaign.model_copy(update={"targets": [campaign.target("ambassador-usa")]})


def appeal_for(text: str, campaign: Campaign) -> Appeal:
    letter = parse_letter(
        text.encode(), source="letter.txt", max_chars=20_000, language=None, accepted=["ru", "en"]
    )
    supporter = make_supporter(name="Alex Example", email="alex@example.org", city="Leeds")
    return Appeal(campaign=campaign, letter=letter, supporter=supporter)


@pytest.fixture(scope="module")
def drafted(
    one_target: Campaign, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, tuple[Appeal, list[Prepared], list[Outcome], Path]]:
    """Every script's letter drafted once (email and post), shared by the tests below."""
    out: dict[str, tuple[Appeal, list[Prepared], list[Outcome], Path]] = {}
    for script, (_, sample) in SAMPLES.items():
        if script in CJK and not cjk_installed():
            continue
        appeal = appeal_for(sample, one_target)
        prepared = prepare(appeal, ["email", "post"], Settings(), NOW)
        folder = tmp_path_factory.mktemp(script)
        out[script] = (appeal, prepared, write_drafts(prepared, folder), folder)
    return out


def pdf_text(data: bytes) -> str:
    doc = pdfium.PdfDocument(data)
    try:
        return "\n".join(page.get_textpage().get_text_range() for page in doc)
    finally:
        doc.close()


def glyphs(data: bytes) -> tuple[set[str], list[str]]:
    """The characters the PDF's glyphs stand for (from each font's ToUnicode map), and those
    drawn with glyph 0 (.notdef, the empty box)."""
    drawn: set[str] = set()
    boxes: list[str] = []
    for page in pypdf.PdfReader(io.BytesIO(data)).pages:
        for font in page["/Resources"]["/Font"].values():
            font = font.get_object()
            cid_font = font["/DescendantFonts"][0].get_object()
            # TrueType outlines map CIDs to glyphs; CFF ones (Noto Sans CJK) are indexed by CID
            mapping = cid_font.get("/CIDToGIDMap")
            cid_to_gid = mapping.get_object().get_data() if mapping is not None else None
            to_unicode = font["/ToUnicode"].get_object().get_data().decode("latin-1")
            for cid_hex, text_hex in re.findall(r"<([0-9A-F]{4})> <([0-9A-F]+)>", to_unicode):
                cid = int(cid_hex, 16)
                text = bytes.fromhex(text_hex).decode("utf-16-be")
                if cid == 0:
                    if text not in ("\x00", "\uffff"):  # .notdef itself
                        boxes.append(text)
                    continue
                gid = cid
                if cid_to_gid is not None:
                    gid = int.from_bytes(cid_to_gid[2 * cid : 2 * cid + 2], "big")
                if gid == 0:
                    boxes.append(text)
                else:
                    drawn.update(text)
    return drawn, boxes


def visible(text: str) -> set[str]:
    return {c for c in text if not c.isspace() and not ignorable(c)}


def save_png(data: bytes, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    doc = pdfium.PdfDocument(data)
    try:
        path = ARTIFACTS / f"{name}.png"
        doc[0].render(scale=1.5).to_pil().save(path)
        return path
    finally:
        doc.close()


@pytest.mark.parametrize("script", list(SAMPLES))
def test_the_language_of_each_script_is_detected(script: str) -> None:
    language, sample = SAMPLES[script]
    assert detect_language(sample, ["ru", "en"]) == language


def test_an_unsure_guess_falls_back_to_the_campaigns_first_language() -> None:
    assert detect_language("12345 67 !!", ["ru", "en"]) == "ru"


@pytest.mark.parametrize("script", list(SAMPLES))
def test_each_script_is_drafted_on_paper_and_by_email(
    script: str, drafted: dict[str, tuple[Appeal, list[Prepared], list[Outcome], Path]]
) -> None:
    needs_cjk(script)
    language, sample = SAMPLES[script]
    _, prepared, outcomes, _ = drafted[script]
    assert [o.status for o in outcomes] == [Status.DRAFTED, Status.DRAFTED]
    by_channel = {p.delivery.channel: p for p in prepared}

    # the PDF: every character drawn with a real glyph, the words read back, a page to look at
    data = by_channel["post"].payload.document.data
    drawn, boxes = glyphs(data)
    assert boxes == []
    assert visible(sample) <= drawn, visible(sample) - drawn
    text = pdf_text(data)
    if script in WORD_FOR_WORD:
        flat = re.sub(r"\s+", "", text)
        for word in sample.split():
            word = "".join(c for c in word if not ignorable(c))
            assert word in flat, word
    else:
        assert visible(sample) - {"\u200c"} <= set(text) | drawn
    assert "Alex Example" in text
    save_png(data, script)

    # the email: the text as written, in its language
    msg = email.message_from_bytes(by_channel["email"].payload.data, policy=email.policy.default)
    assert msg["Content-Language"] == language
    body = msg.get_content()
    assert unicodedata.normalize("NFC", sample) in body


def test_right_to_left_paragraphs_are_set_from_the_right_margin(
    drafted: dict[str, tuple[Appeal, list[Prepared], list[Outcome], Path]],
) -> None:
    """The Hebrew paragraph ends near the right margin; the Greek one starts at the left."""

    def body_edges(script: str) -> tuple[float, float]:
        (post,) = [p for p in drafted[script][1] if p.delivery.channel == "post"]
        doc = pdfium.PdfDocument(post.payload.document.data)
        try:
            page = doc[0]
            textpage = page.get_textpage()
            sample = SAMPLES[script][1]
            first = sample.split()[0]
            text = textpage.get_text_range()
            at = text.find(first)
            left, _, right, _ = textpage.get_charbox(at)
            return left, page.get_width() - right
        finally:
            doc.close()

    greek_left, _ = body_edges("greek")
    _, hebrew_right = body_edges("hebrew")
    assert greek_left < 80  # 25 mm margin = 71 pt
    assert hebrew_right < 80


def test_the_mixed_letter_is_sent_on_every_channel(
    run_cli, open_campaign: Path, tmp_path: Path
) -> None:
    """English, Russian, Arabic, Chinese, emoji and links: email and fax sent (to the local
    fakes), post and social drafted, nothing left out."""
    needs_cjk("chinese-simplified")
    letter = tmp_path / "mixed.txt"
    letter.write_text(MIXED, encoding="utf-8")
    store = tmp_path / "dry"
    result = run_cli(
        "send",
        open_campaign,
        letter,
        *SUPPORTER_ARGS,
        "--language",
        "en",
        "--dry-run",
        "--yes",
        "--json",
        "--store",
        store,
    )
    assert result.code == 0, result.stderr
    deliveries = result.json()["deliveries"]
    by_channel: dict[str, set[str]] = {}
    for d in deliveries:
        by_channel.setdefault(d["channel"], set()).add(d["status"])
        assert d["status"] != "failed", d
        if d["status"] == "skipped":
            assert "left out" not in (d["error"] or ""), d
    assert "sent" in by_channel["email"] and "sent" in by_channel["fax"]
    assert by_channel["post"] == {"drafted"}
    posts = list(store.rglob("post/*.pdf"))
    assert posts
    data = posts[0].read_bytes()
    drawn, boxes = glyphs(data)
    assert boxes == []
    assert visible(MIXED) <= drawn, visible(MIXED) - drawn
    save_png(data, "mixed")


def test_text_no_font_has_leaves_out_only_the_documents(one_target: Campaign) -> None:
    """A private-use character: email goes, post and fax are left out naming it."""
    appeal = appeal_for("Please free Oyub Titiev \ue000 now.", one_target)
    prepared = prepare(appeal, ["email", "fax", "post"], Settings(), NOW)
    built = {p.delivery.channel: p for p in prepared}
    assert built["email"].payload is not None
    for channel in ("fax", "post"):
        p = built[channel]
        assert p.payload is None
        reason = p.delivery.skip_reason or ""
        assert reason.startswith("left out: letter.txt: the PDF fonts cannot print '\\ue000'")
        assert "U+E000, a private-use character" in reason


# --- text limits across scripts --------------------------------------------------------------


def test_x_weighs_chinese_japanese_and_korean_twice() -> None:
    assert textlimits.x_length("free him") == 8
    assert textlimits.x_length("释放他") == 6
    assert textlimits.x_length("釈放して") == 8
    assert textlimits.x_length("석방") == 4
    assert textlimits.x_length("أطلقوا") == 6  # Arabic weighs 1, as Latin does


def test_a_cut_never_splits_a_grapheme_cluster() -> None:
    """Devanagari conjuncts and an emoji family are clusters of several code points."""
    body = "क्षत्रिय " * 3 + "👩\u200d👩\u200d👧\u200d👦" * 6
    ends = set(textlimits._grapheme_ends(body))
    for maximum in range(8, 30):
        limit = Limit("Tiny", maximum, "graphemes", textlimits.graphemes)
        post = textlimits.compose(limit, mentions=["@a"], body=body)
        kept = post.text.removeprefix("@a ").removesuffix(textlimits.ELLIPSIS)
        assert body.startswith(kept)
        assert len(kept) in ends or kept == body


def test_a_right_to_left_run_cut_short_keeps_its_ellipsis_at_its_end() -> None:
    """Mentions first make the post read left to right; the cut Arabic demand keeps the
    ellipsis on its own (left) end, so it is not read as the start of the text."""
    body = "أطلقوا سراح الصحفي أويوب تيتييف فوراً ودون قيد أو شرط، فهو محتجز ظلماً منذ سنوات"
    post = textlimits.compose(
        textlimits.X, mentions=["@KremlinRussia"], body=body * 6, hashtag="#FreeTitiev"
    )
    assert post.shortened
    assert textlimits.ELLIPSIS + textlimits.RIGHT_TO_LEFT_MARK in post.text
    assert textlimits.x_valid(post.text)
    # a Latin body cut short needs no mark
    latin = textlimits.compose(textlimits.X, mentions=["@a"], body="free them now " * 40)
    assert latin.text.endswith(textlimits.ELLIPSIS)


def test_every_script_drafts_its_social_posts_within_the_limits(one_target: Campaign) -> None:
    for script, (_, sample) in SAMPLES.items():
        appeal = appeal_for(sample, one_target)
        (social,) = prepare(appeal, ["social"], Settings(), NOW)
        payload = social.payload
        assert payload is not None, script
        for post in (payload.x, payload.mastodon):
            if post is not None:
                assert post.limit.fits(post.text), (script, post.text)


def test_the_glyph_check_sees_a_character_drawn_without_a_glyph() -> None:
    """The check above is not hollow: PT Sans alone, without fallback, cannot draw 中."""
    pdf = FPDF()
    pdf.add_font("body", "", str(font_files().regular))
    pdf.add_page()
    pdf.set_font("body", "", 12)
    pdf.cell(text="free 中 him")
    drawn, _ = glyphs(bytes(pdf.output()))
    assert visible("free him") <= drawn
    assert "中" not in drawn
