"""The letter as PDF for fax and post, read back with real PDF tools (pypdf, PDFium)."""

from __future__ import annotations

import datetime as dt
import io
import re
from pathlib import Path

import pypdf
import pypdfium2 as pdfium
import pytest
from PIL import Image
from pypdf.generic import ContentStream

from tests.conftest import EXAMPLES, ROOT, SHIPPED_CAMPAIGN
from ua_dispatch.campaign import Campaign, load_campaign
from ua_dispatch.channels import get_channel
from ua_dispatch.delivery import BuildEnv
from ua_dispatch.documents import FaxCover, PdfDocument
from ua_dispatch.documents.fax import fax_cover
from ua_dispatch.documents.pdf import format_date, page_format, render_letter_pdf
from ua_dispatch.errors import InputError
from ua_dispatch.letter import Letter, Supporter, load_letter, make_supporter, render_letter
from ua_dispatch.plan import Appeal, Delivery
from ua_dispatch.settings import Settings

ARTIFACTS = ROOT / "artifacts"
DATE = dt.date(2019, 1, 20)
NOW = dt.datetime(2019, 1, 20, 12, 0, tzinfo=dt.UTC)
A4 = (595.28, 841.89)
LETTER = (612.0, 792.0)
MM = 72 / 25.4  # points per millimetre
RU_SENTENCE = (
    "За похищения и убийства 2017 года до сих пор никто не понёс ответственности, и эта "
    "безнаказанность сделала возможной новую волну преследований."
)
EN_SENTENCE = "Nobody has been held to account for the abductions and killings of 2017."


@pytest.fixture(scope="module")
def campaign() -> Campaign:
    return load_campaign(SHIPPED_CAMPAIGN)


@pytest.fixture(scope="module")
def supporter() -> Supporter:
    return make_supporter(
        name="Alex Example", email="alex@example.org", city="Leeds", country="United Kingdom"
    )


def letter(name: str, campaign: Campaign) -> Letter:
    return load_letter(EXAMPLES / name, max_chars=20_000, accepted=campaign.languages)


def letter_from_text(tmp_path: Path, text: str, campaign: Campaign) -> Letter:
    path = tmp_path / "letter.txt"
    path.write_text(text, encoding="utf-8")
    return load_letter(path, max_chars=200_000, accepted=campaign.languages)


def post_pdf(lt: Letter, supporter: Supporter, campaign: Campaign, slug: str) -> PdfDocument:
    target = campaign.target(slug)
    rendered = render_letter(lt, supporter, target)
    return render_letter_pdf(rendered, target, supporter, campaign, date=DATE, source=lt.source)


def fax_pdf(
    lt: Letter, supporter: Supporter, campaign: Campaign, slug: str, **settings: object
) -> PdfDocument:
    appeal = Appeal(campaign=campaign, letter=lt, supporter=supporter)
    target = campaign.target(slug)
    delivery = Delivery("fax", target, target.fax, f"key-{slug}")
    env = BuildEnv(settings=Settings(**settings), now=NOW)
    return get_channel("fax").build(appeal, delivery, env).document


def reader(doc: PdfDocument) -> pypdf.PdfReader:
    r = pypdf.PdfReader(io.BytesIO(doc.data))
    assert len(r.pages) == doc.pages
    return r


def page_texts(doc: PdfDocument) -> list[str]:
    """Each page's text with runs of whitespace as single spaces (line breaks included)."""
    return [" ".join(p.extract_text().split()) for p in reader(doc).pages]


def all_text(doc: PdfDocument) -> str:
    return " ".join(page_texts(doc))


def sizes(doc: PdfDocument) -> set[tuple[float, float]]:
    return {
        (round(float(p.mediabox.width), 2), round(float(p.mediabox.height), 2))
        for p in reader(doc).pages
    }


# --- content ------------------------------------------------------------------------------


def test_russian_letter_to_the_president_is_a4_with_every_part(
    campaign: Campaign, supporter: Supporter
) -> None:
    doc = post_pdf(letter("letter-ru.txt", campaign), supporter, campaign, "president")
    assert sizes(doc) == {A4}
    text = all_text(doc)
    for part in (
        "Vladimir Putin",
        "President of the Russian Federation",
        "Ul. Ilyinka, 23 103132 Moscow Russian Federation",  # the address block, in order
        "20 января 2019 г.",
        "Расследуйте задержания и пытки геев и лесбиянок в Чечне (UA 2/19)",
        "Уважаемый господин Президент,",
        RU_SENTENCE,
        "С уважением, Alex Example Leeds, United Kingdom",  # closing then signature
    ):
        assert part in text, part
    # The supporter's own salutation was replaced, not printed twice.
    assert text.count("Уважаемый господин Президент") == 1


def test_english_letter_to_the_ambassador_is_us_letter(
    campaign: Campaign, supporter: Supporter
) -> None:
    doc = post_pdf(letter("letter-en.txt", campaign), supporter, campaign, "ambassador-usa")
    assert sizes(doc) == {LETTER}
    text = all_text(doc)
    address = "Embassy of the Russian Federation 2650 Wisconsin Ave. NW Washington DC 20007 USA"
    for part in (
        "Ambassador Anatoly Antonov Ambassador of the Russian Federation to the USA " + address,
        "20 January 2019",
        "Dear Ambassador,",
        EN_SENTENCE,
        "Yours sincerely, Alex Example Leeds, United Kingdom",
    ):
        assert part in text, part
    # The organisation is already the first address line: printed once.
    assert text.count("Embassy of the Russian Federation") == 1


def test_russian_letter_to_the_ambassador_is_us_letter_on_every_page(
    campaign: Campaign, supporter: Supporter
) -> None:
    doc = post_pdf(letter("letter-ru.txt", campaign), supporter, campaign, "ambassador-usa")
    assert sizes(doc) == {LETTER}
    assert "Уважаемый господин Посол," in all_text(doc)
    assert RU_SENTENCE in all_text(doc)


def test_page_format_follows_the_country() -> None:
    assert page_format("US") == "Letter"
    assert page_format("ca") == "Letter"
    assert page_format("PH") == "Letter"
    assert page_format("MX") == "Letter"
    assert page_format("RU") == "A4"
    assert page_format("GB") == "A4"


def test_dates_in_the_letters_language() -> None:
    assert format_date(DATE, "en") == "20 January 2019"
    assert format_date(dt.date(2019, 3, 1), "ru") == "1 марта 2019\u00a0г."
    assert format_date(DATE, "de") == "20. Januar 2019"
    assert format_date(DATE, "es") == "20 de enero de 2019"
    assert format_date(DATE, "zh") == "2019年1月20日"
    assert format_date(DATE, "uk") == "20 січня 2019\u00a0р."
    assert "2019" in format_date(DATE, "ar") and "يناير" in format_date(DATE, "ar")
    assert format_date(DATE, "xx") == "2019-01-20"
    assert format_date(DATE, "not a language") == "2019-01-20"


def test_text_is_black_and_never_below_11_pt(campaign: Campaign, supporter: Supporter) -> None:
    doc = fax_pdf(letter("letter-ru.txt", campaign), supporter, campaign, "ambassador-usa")
    r = reader(doc)
    sizes_seen: set[float] = set()
    for page in r.pages:
        for operands, op in ContentStream(page.get_contents(), r).operations:
            if op == b"Tf":
                sizes_seen.add(float(operands[1]))
            if op in (b"g", b"rg", b"k", b"G", b"RG", b"K"):
                assert all(float(v) == 0 for v in operands), (op, operands)
    assert sizes_seen
    assert min(sizes_seen) >= 11


def test_fonts_are_embedded(campaign: Campaign, supporter: Supporter) -> None:
    doc = post_pdf(letter("letter-ru.txt", campaign), supporter, campaign, "president")
    fonts = reader(doc).pages[0]["/Resources"]["/Font"]
    assert len(fonts) == 2  # regular and bold
    for ref in fonts.values():
        font = ref.get_object()
        descendant = font["/DescendantFonts"][0].get_object()
        assert "/FontFile2" in descendant["/FontDescriptor"]
        assert "/ToUnicode" in font  # so readers can extract Cyrillic text


def test_same_inputs_give_the_same_bytes(campaign: Campaign, supporter: Supporter) -> None:
    lt = letter("letter-ru.txt", campaign)
    assert (
        post_pdf(lt, supporter, campaign, "president").data
        == post_pdf(lt, supporter, campaign, "president").data
    )


def test_supporter_text_is_printed_literally(
    tmp_path: Path, campaign: Campaign, supporter: Supporter
) -> None:
    body = (
        "Dear President,\n\nPlease {nb} act\u200b now: 50% of people — «everyone» — matter.\n"
        "A second line\tafter a tab.\n\nYours sincerely,\n"
    )
    doc = post_pdf(letter_from_text(tmp_path, body, campaign), supporter, campaign, "president")
    text = all_text(doc)
    assert "Please {nb} act now: 50% of people — «everyone» — matter." in text
    assert "A second line after a tab." in text


# --- fax ----------------------------------------------------------------------------------


def test_fax_opens_with_a_cover_page(campaign: Campaign, supporter: Supporter) -> None:
    doc = fax_pdf(letter("letter-ru.txt", campaign), supporter, campaign, "president")
    assert doc.pages == 2
    assert sizes(doc) == {A4}
    cover, first = page_texts(doc)
    for part in (
        "ФАКС",
        "Кому Vladimir Putin President of the Russian Federation",
        "Факс +7 495 910-21-34",
        "От Alex Example, Leeds, United Kingdom",
        "Дата 20 января 2019 г.",
        "Страниц 2, включая эту",
        "UA 2/19 (EUR 46/9686/2019)",
        "Страница 1 из 2",
    ):
        assert part in cover, part
    assert "Факс отправителя" not in cover  # no sender fax configured
    assert "Уважаемый господин Президент," in first
    assert "Страница 2 из 2" in first


def test_fax_cover_in_english_with_a_sender_fax(campaign: Campaign, supporter: Supporter) -> None:
    lt = letter("letter-en.txt", campaign)
    target = campaign.target("ambassador-usa")
    assert target.fax is not None
    cover = fax_cover(
        target,
        supporter,
        campaign,
        to_fax=target.fax,
        date=DATE,
        language=lt.language,
        from_fax="+442079460000",
    )
    rendered = render_letter(lt, supporter, target)
    doc = render_letter_pdf(rendered, target, supporter, campaign, date=DATE, cover=cover)
    assert sizes(doc) == {LETTER}
    first = page_texts(doc)[0]
    assert "FAX" in first
    assert "Fax +1 202-298-5735" in first
    assert "Sender's fax +44 20 7946 0000" in first
    assert f"Pages {doc.pages}, this page included" in first


def test_fax_cover_prints_a_given_page_count(campaign: Campaign, supporter: Supporter) -> None:
    lt = letter("letter-en.txt", campaign)
    target = campaign.target("president")
    cover = FaxCover(
        to_name=target.name,
        to_fax="+74959102134",
        from_name=supporter.name,
        from_fax=None,
        reference="UA 2/19 (EUR 46/9686/2019)",
        date=DATE,
        pages=7,
    )
    rendered = render_letter(lt, supporter, target)
    doc = render_letter_pdf(rendered, target, supporter, campaign, date=DATE, cover=cover)
    assert "Pages 7, this page included" in page_texts(doc)[0]


def test_fax_without_cover_page(campaign: Campaign, supporter: Supporter) -> None:
    doc = fax_pdf(
        letter("letter-ru.txt", campaign), supporter, campaign, "president", fax_cover_page=False
    )
    assert doc.pages == 1
    text = all_text(doc)
    assert "ФАКС" not in text
    assert "Страница" not in text  # one page: no page numbers
    assert text.startswith("Alex Example Leeds, United Kingdom Vladimir Putin")


def long_letter(paragraphs: int) -> str:
    para = " ".join(
        f"Sentence {i} asks again for a prompt, thorough and effective investigation."
        for i in range(12)
    )
    return "Dear President,\n\n" + "\n\n".join([para] * paragraphs) + "\n\nYours sincerely,\n"


def test_fax_longer_than_the_limit_is_refused_naming_the_letter(
    tmp_path: Path, campaign: Campaign, supporter: Supporter
) -> None:
    lt = letter_from_text(tmp_path, long_letter(40), campaign)  # about 14 pages
    with pytest.raises(InputError) as exc:
        fax_pdf(lt, supporter, campaign, "president")
    message = str(exc.value)
    assert "\n" not in message
    assert message.startswith(f"{tmp_path / 'letter.txt'}: too long to fax: ")
    assert re.search(r"\b(1[1-9]|[2-9]\d) pages to president, cover page included", message)
    assert "the limit is 10 (UA_DISPATCH_FAX_MAX_PAGES)" in message


def test_fax_page_limit_counts_the_cover(
    tmp_path: Path, campaign: Campaign, supporter: Supporter
) -> None:
    lt = letter_from_text(tmp_path, long_letter(4), campaign)
    plain = fax_pdf(lt, supporter, campaign, "president", fax_cover_page=False)
    with_cover = fax_pdf(lt, supporter, campaign, "president", fax_max_pages=plain.pages + 1)
    assert with_cover.pages == plain.pages + 1
    with pytest.raises(InputError, match=rf"limit is {plain.pages}\b"):
        fax_pdf(lt, supporter, campaign, "president", fax_max_pages=plain.pages)


# --- refusing what cannot be printed --------------------------------------------------------


def test_characters_no_font_has_are_refused_naming_the_letter(
    tmp_path: Path, campaign: Campaign, supporter: Supporter
) -> None:
    lt = letter_from_text(tmp_path, "Dear President,\n\nPlease act \ue000\ue001 now.\n", campaign)
    with pytest.raises(InputError) as exc:
        post_pdf(lt, supporter, campaign, "president")
    message = str(exc.value)
    assert message.startswith(str(tmp_path / "letter.txt"))
    assert "U+E000" in message and "U+E001" in message


def test_characters_no_font_has_in_the_signature_name_the_option(
    campaign: Campaign,
) -> None:
    odd = make_supporter(name="Alex \U000f0001 Example", email="alex@example.org")
    with pytest.raises(InputError, match=r"^supporter: --name/--city/--country: .*U\+F0001"):
        post_pdf(letter("letter-en.txt", campaign), odd, campaign, "president")


# --- pagination -----------------------------------------------------------------------------


@pytest.mark.parametrize("paragraphs", range(1, 13))
def test_closing_and_signature_never_stand_alone(
    paragraphs: int, tmp_path: Path, campaign: Campaign, supporter: Supporter
) -> None:
    """Whatever the length, the last page holds body text as well as the signature."""
    words = "Please investigate the detentions and protect everyone at risk now."
    body = "\n\n".join(
        " ".join([f"{words} ({p}.{s})" for s in range(1 + (p * 7) % 9)]) for p in range(paragraphs)
    )
    lt = letter_from_text(tmp_path, f"Dear President,\n\n{body}\n", campaign)
    for slug in ("president", "ambassador-usa"):
        doc = post_pdf(lt, supporter, campaign, slug)
        pages = page_texts(doc)
        last = pages[-1]
        assert "Yours sincerely, Alex Example" in last
        assert f"({paragraphs - 1}." in last, (slug, doc.pages)
        if doc.pages > 1:
            assert "Page 1 of" in pages[0]


# --- as a person sees it --------------------------------------------------------------------


def render_png(doc: PdfDocument, index: int, name: str, dpi: int = 100) -> Image.Image:
    pdf = pdfium.PdfDocument(doc.data)
    try:
        image = pdf[index].render(scale=dpi / 72).to_pil().convert("L")
    finally:
        pdf.close()
    ARTIFACTS.mkdir(exist_ok=True)
    image.save(ARTIFACTS / name)
    return image


def check_page_image(image: Image.Image, dpi: int = 100) -> None:
    px = dpi / 25.4  # pixels per millimetre
    w, h = image.size
    m = int(20 * px)  # every margin is at least 20 mm
    for box in ((0, 0, w, m), (0, h - m, w, h), (0, 0, m, h), (w - m, 0, w, h)):
        low, _ = image.crop(box).getextrema()
        assert low >= 250, f"ink in the margin {box}"
    body = image.crop((m, m, w - m, h - m))
    histogram = body.histogram()
    dark = sum(histogram[:96])
    assert dark > 0.005 * body.width * body.height, "no text on the page"
    # Black on white: almost every pixel is either paper or ink.
    grey = sum(histogram[96:224])
    assert grey < dark * 2


@pytest.mark.parametrize(
    ("language", "slug"),
    [("ru", "president"), ("en", "ambassador-usa"), ("ru", "ambassador-usa")],
)
def test_pages_render_with_clear_margins_and_dark_text(
    language: str, slug: str, campaign: Campaign, supporter: Supporter
) -> None:
    lt = letter(f"letter-{language}.txt", campaign)
    post = post_pdf(lt, supporter, campaign, slug)
    for i in range(post.pages):
        check_page_image(render_png(post, i, f"post-{language}-{slug}-p{i + 1}.png"))
    fax = fax_pdf(lt, supporter, campaign, slug)
    for i in range(fax.pages):
        check_page_image(render_png(fax, i, f"fax-{language}-{slug}-p{i + 1}.png"))


def test_lines_stay_inside_the_text_column(campaign: Campaign, supporter: Supporter) -> None:
    """No word runs into the right margin, even an address that will not break."""
    url = "https://example.org/" + "a" * 150
    lt = Letter(text=f"Please read {url} today.\n\nThank you.", language="en", source="t.txt")
    doc = post_pdf(lt, supporter, campaign, "ambassador-usa")
    assert "a" * 40 in all_text(doc).replace(" ", "")
    check_page_image(render_png(doc, 0, "post-long-word-p1.png"))


def test_fax_cover_in_french(tmp_path: Path, campaign: Campaign, supporter: Supporter) -> None:
    text = (
        "Monsieur le Président,\n\nJe vous écris au sujet d'un homme détenu sans avocat depuis "
        "des semaines. Je vous demande de le libérer et de permettre à sa famille de le voir.\n"
    )
    doc = fax_pdf(letter_from_text(tmp_path, text, campaign), supporter, campaign, "president")
    cover = page_texts(doc)[0]
    for part in ("TÉLÉCOPIE", "Date 20 janvier 2019", "Pages 2, celle-ci comprise", "Objet"):
        assert part in cover, part
