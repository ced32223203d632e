"""Importing a campaign from an Urgent Action document (text, Word, PDF).

The seed document imports to the shipped campaign; invented documents in both layouts and in
English, Spanish and French import to their expected campaigns; unreadable documents are
refused in one line naming the file, with nothing written.
"""

from __future__ import annotations

import datetime as dt
import io
import tomllib
import zipfile
from pathlib import Path
from typing import Any

import pytest
from docx import Document
from fpdf import FPDF
from PIL import Image

from tests.conftest import SHIPPED_CAMPAIGN
from ua_dispatch.campaign import Campaign, load_campaign
from ua_dispatch.channels import lookup
from ua_dispatch.documents.fonts import font_files
from ua_dispatch.errors import InputError
from ua_dispatch.importer import import_campaign, read_campaign
from ua_dispatch.importer.clean import clean, clean_text
from ua_dispatch.importer.parse import Parsed, parse_lines
from ua_dispatch.importer.read import Extracted
from ua_dispatch.letter import make_supporter, parse_letter, render_letter
from ua_dispatch.plan import Appeal, plan_deliveries
from ua_dispatch.service.campaigns import check_campaign

DATA = Path(__file__).parent / "data" / "urgent_actions"
SEED = DATA / "seed_chechnya_2019.txt"
TODAY = dt.date(2026, 1, 1)

#: what the shipped campaign has that the document does not say: the id and the email
#: subjects, the Russian salutations and the social post were written by hand
NOT_IN_DOCUMENT = {"id", "subject", "subjects", "social"}
TARGET_NOT_IN_DOCUMENT = {"salutations"}
#: what the document has that the shipped campaign was typed without
NOT_IN_SHIPPED = {"sample_letter", "background"}


def _import(source: Path, tmp_path: Path, name: str = "imported", **kw: Any) -> Campaign:
    report = import_campaign(
        source, out=tmp_path / "out" / f"{name}.toml", today=TODAY, force=True, **kw
    )
    return report.campaign


def _comparable(c: Campaign) -> dict[str, Any]:
    data = c.model_dump()
    for key in NOT_IN_DOCUMENT | NOT_IN_SHIPPED:
        data.pop(key)
    for target in data["targets"]:
        for key in TARGET_NOT_IN_DOCUMENT:
            target.pop(key)
    return data


# --- the seed -------------------------------------------------------------------------------------


def test_seed_imports_to_the_shipped_campaign(tmp_path: Path) -> None:
    imported = _import(SEED, tmp_path)
    shipped = load_campaign(SHIPPED_CAMPAIGN)
    got, want = _comparable(imported), _comparable(shipped)
    for key in want:
        if key != "targets":
            assert got[key] == want[key], key
    assert len(got["targets"]) == len(want["targets"])
    for g, w in zip(got["targets"], want["targets"], strict=True):
        for key in w:
            assert g[key] == w[key], (w["slug"], key)
    assert got == want
    assert imported.subject == "Homophobic crackdown in Chechnya resumes (UA 2/19)"
    assert imported.background is not None
    assert imported.background.startswith("On 1 April 2017, the Russian independent daily")
    assert imported.background.endswith("LGBTI people in Chechnya.")
    assert imported.background.count("\n\n") == 1


def test_seed_sample_letter_is_saved_beside_the_campaign(tmp_path: Path) -> None:
    out = tmp_path / "chechnya.toml"
    report = import_campaign(SEED, out=out, campaign_id="ua-2-19-chechnya", today=TODAY)
    assert report.campaign.id == "ua-2-19-chechnya"
    assert report.sample == tmp_path / "chechnya.sample.txt"
    assert report.campaign.sample_letter == "chechnya.sample.txt"
    assert report.campaign.sample_letter_path(out) == report.sample
    letter = report.sample.read_text(encoding="utf-8")
    assert letter.startswith("Dear President,\n\nI am deeply concerned")
    assert letter.endswith("sexual orientation.\n\nYours sincerely,\n")
    assert "[bookmark" not in letter
    assert "\n\n\n" not in letter


def test_seed_report_lists_what_to_check_with_lines(tmp_path: Path) -> None:
    report = import_campaign(SEED, out=tmp_path / "c.toml", today=TODAY)
    check = {(n.field, n.status): n.line for n in report.document.notes}
    assert check[("id", "guessed")] is None
    assert check[("subject", "guessed")] == 3  # the headline
    assert check[("targets[0:president].email", "missing")] == 17
    assert check[("targets[0:president].phone", "missing")] == 17
    # the president's salutation is the sample letter's, on line 34
    assert check[("targets[0:president].salutation", "guessed")] == 34
    assert check[("targets[1:ambassador-usa].title", "guessed")] == 25
    assert check[("targets[1:ambassador-usa].address", "guessed")] == 25
    # Russian is a preferred language the document gives no subject or salutation in
    assert ("subjects.ru", "missing") in check
    summary = {o.slug: o for o in report.document.officials}
    assert summary["president"].found == ("fax", "x_handles")
    assert summary["ambassador-usa"].found == ("email", "fax", "phone", "salutation", "x_handles")
    doc = report.to_json()
    assert doc["id"] == "ua-2-19-homophobic-crackdown-chechnya"
    assert doc["format"] == "text"
    assert [o["slug"] for o in doc["officials"]] == ["president", "ambassador-usa"]
    first = doc["check"][0]
    assert (first["field"], first["status"], first["line"]) == ("id", "guessed", None)
    # the campaign file lists the same, for whoever opens it
    text = report.out.read_text(encoding="utf-8")
    assert "#   line 25: targets[1:ambassador-usa].title (guessed)" in text


def _seed_lines() -> list[str]:
    return SEED.read_text(encoding="utf-8").splitlines()


def _seed_docx(path: Path) -> Path:
    doc = Document()
    for line in _seed_lines():
        if line.startswith("First UA:"):
            ref, _, date = line.partition("\t")
            table = doc.add_table(rows=1, cols=2)
            table.rows[0].cells[0].text = ref
            table.rows[0].cells[1].text = date
        elif line.startswith("[image:"):
            continue  # a picture in the real document, not text
        else:
            doc.add_paragraph(line.replace("[bookmark: _GoBack]", ""))
    doc.sections[0].header.paragraphs[0].text = "URGENT ACTION"
    doc.save(str(path))
    return path


class _UaPdf(FPDF):
    """A PDF laid out as these documents are: a running header and a page number footer."""

    def header(self) -> None:
        self.set_font("ua", size=8)
        self.cell(0, 5, "Amnesty International, Urgent Action")
        self.ln(8)
        self.set_font("ua", size=10)

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font("ua", size=8)
        self.cell(0, 5, f"Page {self.page_no()}")


def _pdf(lines: list[str], path: Path) -> Path:
    pdf = _UaPdf(format="A4")
    pdf.add_font("ua", "", str(font_files().regular))
    pdf.set_font("ua", size=10)
    pdf.add_page()
    for line in lines:
        text = line.replace("\t", "    ").strip()
        if text:
            pdf.multi_cell(0, 5, text, new_x="LMARGIN", new_y="NEXT")
        else:
            pdf.ln(5)
    pdf.output(str(path))
    return path


def test_seed_as_word_gives_the_same_campaign(tmp_path: Path) -> None:
    from_text = _import(SEED, tmp_path, "text")
    from_word = _import(_seed_docx(tmp_path / "ua.docx"), tmp_path, "text")
    assert from_word == from_text
    assert read_campaign(tmp_path / "ua.docx").kind == "docx"


def test_seed_as_pdf_gives_the_same_campaign(tmp_path: Path) -> None:
    from_text = import_campaign(SEED, out=tmp_path / "a" / "c.toml", today=TODAY)
    pdf = _pdf(_seed_lines(), tmp_path / "ua.pdf")
    from_pdf = import_campaign(pdf, out=tmp_path / "b" / "c.toml", today=TODAY)
    assert from_pdf.document.kind == "pdf"
    assert from_pdf.campaign == from_text.campaign
    assert from_pdf.sample is not None and from_text.sample is not None
    assert from_pdf.sample.read_text() == from_text.sample.read_text()


def test_kind_is_found_by_content_not_extension(tmp_path: Path) -> None:
    misnamed = tmp_path / "ua.txt"
    misnamed.write_bytes(_seed_docx(tmp_path / "x.docx").read_bytes())
    assert read_campaign(misnamed).kind == "docx"
    pdf_named_docx = tmp_path / "ua2.docx"
    pdf_named_docx.write_bytes(
        _pdf(["URGENT ACTION", "", "Nothing here"], tmp_path / "p.pdf").read_bytes()
    )
    with pytest.raises(InputError, match="no official found"):
        read_campaign(pdf_named_docx)


# --- invented documents ---------------------------------------------------------------------------

INVENTED = [
    "en_current_one_official",
    "en_older_copies",
    "es_current",
    "es_older_copies",
    "fr_current",
    "fr_older_copies",
]


@pytest.mark.parametrize("name", INVENTED)
def test_invented_document_imports_to_its_expected_campaign(name: str, tmp_path: Path) -> None:
    report = import_campaign(
        DATA / f"{name}.txt",
        out=tmp_path / f"{name}.toml",
        campaign_id=name.replace("_", "-"),
        today=TODAY,
    )
    expected = Campaign.model_validate(
        tomllib.loads((DATA / f"{name}.expected.toml").read_text(encoding="utf-8"))
    )
    got, want = report.campaign.model_dump(), expected.model_dump()
    assert got.keys() == want.keys()
    for key in want:
        if key != "targets":
            assert got[key] == want[key], key
    assert [t["slug"] for t in got["targets"]] == [t["slug"] for t in want["targets"]]
    for g, w in zip(got["targets"], want["targets"], strict=True):
        assert g == w, w["slug"]
    assert report.campaign == expected


def _checks(name: str) -> dict[str, str]:
    imported = read_campaign(DATA / f"{name}.txt", campaign_id="x", today=TODAY)
    return {n.field: n.status for n in imported.notes}


def test_one_official_without_email_or_handle_is_listed_as_missing() -> None:
    checks = _checks("en_current_one_official")
    assert checks["targets[0:attorney-general].email"] == "missing"
    assert checks["targets[0:attorney-general].x_handles"] == "missing"
    assert "targets[0:attorney-general].fax" not in checks


def test_older_layout_keeps_copies_and_the_title_line_before_the_name() -> None:
    imported = read_campaign(DATA / "en_older_copies.txt", campaign_id="x", today=TODAY)
    officials = imported.officials
    assert len(officials) == 4
    assert [o.copy for o in officials] == [False, False, False, True]
    assert officials[0].name == "Joko Hartanto"
    assert officials[0].title == "President"
    assert officials[2].name == "Inspector General Agus Wibowo"
    checks = {n.field: n.status for n in imported.notes}
    assert checks["sample_letter"] == "missing"
    assert checks["targets[1:attorney-general].email"] == "missing"


def test_languages_are_detected_from_the_labels() -> None:
    langs = {
        name: read_campaign(DATA / f"{name}.txt", campaign_id="x", today=TODAY).parsed.language
        for name in INVENTED
    }
    assert langs == {name: name[:2] for name in INVENTED}


def test_an_office_without_a_person_gets_the_generic_salutation() -> None:
    imported = read_campaign(DATA / "es_older_copies.txt", campaign_id="x", today=TODAY)
    office = imported.data["targets"][2]
    assert office["name"] == "Comisión Nacional de los Derechos Humanos"
    assert office["salutation"] == "Estimados señores"
    assert office["copy"] is True


# --- cleaning -------------------------------------------------------------------------------------


def test_conversion_artefacts_are_cleaned() -> None:
    assert clean_text("[bookmark: _GoBack]I urge you") == "I urge you"
    assert clean_text("Ul.\u00a0Ilyinka,\t23\u00ad") == "Ul. Ilyinka, 23"
    assert (
        clean_text("the individuals\u2019 \u201cpassports\u201d") == 'the individuals\' "passports"'
    )
    assert clean_text("[image: logo]") == ""


def test_labels_on_one_line_with_odd_separators(tmp_path: Path) -> None:
    text = (
        (SEED.read_text(encoding="utf-8"))
        .replace(
            "Phone: 1 202 298 5700  I  Fax: 1 202 298 5735",
            "Tel.: 1 202 298 5700 | Fax: 1 202 298 5735 / Email: rusembusa@mid.ru",
        )
        .replace("Email: rusembusa@mid.ru \n", "")
    )
    path = tmp_path / "ua.txt"
    path.write_text(text, encoding="utf-8")
    ambassador = read_campaign(path, today=TODAY).data["targets"][1]
    assert (ambassador["phone"], ambassador["fax"], ambassador["email"]) == (
        "+12022985700",
        "+12022985735",
        "rusembusa@mid.ru",
    )


# --- bad documents --------------------------------------------------------------------------------


def _image_only_pdf(path: Path) -> Path:
    pdf = FPDF()
    pdf.add_page()
    pdf.image(Image.new("RGB", (40, 20), (200, 30, 30)), x=10, y=10, w=80)
    pdf.output(str(path))
    return path


def _encrypted_pdf(path: Path) -> Path:
    pdf = FPDF()
    pdf.set_encryption(owner_password="owner", user_password="secret")
    pdf.add_page()
    pdf.set_font("helvetica", size=12)
    pdf.cell(0, 10, "URGENT ACTION")
    pdf.output(str(path))
    return path


def _other_zip(path: Path) -> Path:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("photos/readme.txt", "holiday pictures")
    path.write_bytes(buffer.getvalue())
    return path


def _huge(path: Path) -> Path:
    with path.open("wb") as fh:
        fh.truncate(50 * 1024 * 1024)  # sparse: costs no disk and no time
    return path


def _latin1(path: Path) -> Path:
    path.write_bytes("URGENT ACTION\nCafé, Señor Fiscal\n".encode("latin-1"))
    return path


def _empty(path: Path) -> Path:
    path.write_bytes(b"")
    return path


def _no_official(path: Path) -> Path:
    path.write_text("URGENT ACTION\n\nSomething happened.\n", encoding="utf-8")
    return path


BAD = [
    ("empty.txt", _empty, "the document is empty"),
    ("scan.pdf", _image_only_pdf, "the PDF has no text"),
    ("locked.pdf", _encrypted_pdf, "protected by a password"),
    ("other.docx", _other_zip, "a zip archive but not a Word document"),
    ("huge.pdf", _huge, "too large"),
    ("latin1.txt", _latin1, "not UTF-8 text"),
    ("nobody.txt", _no_official, "no official found"),
]


@pytest.mark.parametrize(("name", "make", "why"), BAD, ids=[b[0] for b in BAD])
def test_bad_document_is_one_line_naming_the_file(
    name: str, make: Any, why: str, tmp_path: Path
) -> None:
    source = make(tmp_path / name)
    out = tmp_path / "out" / "c.toml"
    with pytest.raises(InputError) as info:
        import_campaign(source, out=out, today=TODAY)
    message = str(info.value)
    assert message.startswith(f"{source}: ")
    assert why in message
    assert "\n" not in message
    assert not (tmp_path / "out").exists()


# --- writing --------------------------------------------------------------------------------------


def test_existing_files_are_not_overwritten_without_force(tmp_path: Path) -> None:
    out = tmp_path / "c.toml"
    out.write_text("mine\n")
    with pytest.raises(InputError, match="already exists; --force replaces it") as info:
        import_campaign(SEED, out=out, today=TODAY)
    assert str(info.value).startswith(str(out))
    assert out.read_text() == "mine\n"
    assert not (tmp_path / "c.sample.txt").exists()
    import_campaign(SEED, out=out, today=TODAY, force=True)
    assert load_campaign(out).reference == "EUR 46/9686/2019"


def test_existing_sample_letter_is_not_overwritten_either(tmp_path: Path) -> None:
    (tmp_path / "c.sample.txt").write_text("my own sample\n")
    with pytest.raises(InputError, match=r"c\.sample\.txt: already exists"):
        import_campaign(SEED, out=tmp_path / "c.toml", today=TODAY)
    assert not (tmp_path / "c.toml").exists()
    assert (tmp_path / "c.sample.txt").read_text() == "my own sample\n"


def test_a_bad_id_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="--id: 'Not An Id' is not an id"):
        import_campaign(SEED, out=tmp_path / "c.toml", campaign_id="Not An Id", today=TODAY)
    assert list(tmp_path.iterdir()) == []


def test_default_output_is_beside_the_document(tmp_path: Path) -> None:
    source = tmp_path / "ua.txt"
    source.write_bytes(SEED.read_bytes())
    report = import_campaign(source, campaign_id="chechnya", today=TODAY)
    assert report.out == tmp_path / "chechnya.toml"
    assert report.sample == tmp_path / "chechnya.sample.txt"


# --- the imported campaign is usable as it is -----------------------------------------------------


@pytest.mark.parametrize("name", ["seed_chechnya_2019", *INVENTED])
def test_imported_campaign_loads_and_plans_deliveries(name: str, tmp_path: Path) -> None:
    report = import_campaign(DATA / f"{name}.txt", out=tmp_path / "c.toml", today=TODAY)
    campaign = load_campaign(report.out)
    supporter = make_supporter(name="Alex Doe", email="alex@example.org", city="Leeds")
    letter = parse_letter(
        b"Dear official,\n\nPlease act now.\n",
        source="letter.txt",
        max_chars=20000,
        language=campaign.languages[0],
        accepted=campaign.languages,
    )
    deliveries = plan_deliveries(
        Appeal(campaign, letter, supporter), lookup(["email", "fax", "post", "social", "phone"])
    )
    posts = [d for d in deliveries if d.channel == "post"]
    assert len(posts) == len(campaign.targets)
    assert all(d.to for d in posts)  # every official has a postal address
    for target in campaign.targets:
        rendered = render_letter(letter, supporter, target)
        assert rendered.salutation == target.salutation
    emails = {d.slug: d.to for d in deliveries if d.channel == "email"}
    assert emails == {t.slug: t.email for t in campaign.targets}


# --- the campaign file's new fields ---------------------------------------------------------------


def _campaign_text(**top: str) -> str:
    text = SHIPPED_CAMPAIGN.read_text(encoding="utf-8")
    extra = "".join(f"{k} = {v}\n" for k, v in top.items())
    return text.replace('languages = ["ru", "en"]\n', f'languages = ["ru", "en"]\n{extra}', 1)


def test_sample_letter_must_exist_beside_the_campaign(tmp_path: Path) -> None:
    """Checked by `campaign check` (the page shows it; sending does not need it)."""
    path = tmp_path / "c.toml"
    path.write_text(_campaign_text(sample_letter='"c.sample.txt"'), encoding="utf-8")
    with pytest.raises(
        InputError, match=r"c\.sample\.txt: sample letter \(sample_letter\) not found"
    ):
        check_campaign(path)
    (tmp_path / "c.sample.txt").write_text("Dear President,\n")
    assert check_campaign(path).campaign.sample_letter == "c.sample.txt"


@pytest.mark.parametrize("value", ['"../c.sample.txt"', '"/etc/passwd"', '"C:\\\\x.txt"'])
def test_sample_letter_must_be_beside_the_campaign(value: str, tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(_campaign_text(sample_letter=value), encoding="utf-8")
    with pytest.raises(InputError, match=r"sample_letter: .* relative to the campaign file"):
        load_campaign(path)


def test_background_is_text_and_copy_is_a_flag(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(_campaign_text(background='"a\\u0007b"'), encoding="utf-8")
    with pytest.raises(InputError, match="background: must be text without control characters"):
        load_campaign(path)
    path.write_text(
        _campaign_text(background='"""\nOne.\n\nTwo."""') + "copy = true\n", encoding="utf-8"
    )
    campaign = load_campaign(path)
    assert campaign.background == "One.\n\nTwo."
    assert [t.is_copy for t in campaign.targets] == [False, True]
    assert load_campaign(SHIPPED_CAMPAIGN).targets[0].is_copy is False


def test_a_campaign_with_copies_survives_its_json_round_trip(tmp_path: Path) -> None:
    """The queue keeps campaigns as JSON dumps and reads them back."""
    campaign = _import(DATA / "en_older_copies.txt", tmp_path)
    dumped = campaign.model_dump_json()
    assert '"copy":true' in dumped.replace(" ", "")
    assert Campaign.model_validate_json(dumped) == campaign


def test_a_value_the_campaign_cannot_hold_names_the_field_and_line(tmp_path: Path) -> None:
    source = tmp_path / "ua.txt"
    text = SEED.read_text(encoding="utf-8").replace(
        "Ambassador Anatoly Antonov", "Anatoly =?Antonov"
    )
    source.write_text(text, encoding="utf-8")
    with pytest.raises(InputError) as info:
        import_campaign(source, out=tmp_path / "c.toml", today=TODAY)
    assert str(info.value).startswith(f"{source}: targets[1:")
    assert ".name: contains '=?'" in str(info.value)
    assert str(info.value).endswith("(the official on line 25)")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ua.txt"]


def test_control_characters_and_split_blocks_are_tolerated(tmp_path: Path) -> None:
    source = tmp_path / "ua.txt"
    text = SEED.read_text(encoding="utf-8")
    text = text.replace("Vladimir Putin", "Vladimir\x01 Putin").replace(
        "Email: rusembusa@mid.ru", "\nEmail: rusembusa@mid.ru"
    )
    source.write_text(text, encoding="utf-8")
    campaign = _import(source, tmp_path)
    assert campaign.targets[0].name == "Vladimir Putin"
    assert campaign.targets[1].email == "rusembusa@mid.ru"
    assert [t.slug for t in campaign.targets] == ["president", "ambassador-usa"]


# --- the facts, as the documents write them ----------------------------------------------------


def _parsed(text: str) -> Parsed:
    return parse_lines(clean(Extracted("text", (tuple(text.splitlines()),))), today=TODAY)


SEED_TEXT = SEED.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("line", "number"),
    [
        ("First UA: 2 /19 EUR 46/9686/2019", "UA 2/19"),
        ("UA: 12/23 Index: EUR 46/9686/2019", "UA 12/23"),
        ("Further information on UA 12/23 EUR 46/9686/2019", "UA 12/23"),
        ("FURTHER INFORMATION ON URGENT ACTION 12/23 EUR 46/9686/2019", "UA 12/23"),
        ("UA 7/2023 EUR 46/9686/2019", "UA 7/23"),
        ("AU 35/22 Índice: EUR 46/9686/2019", "AU 35/22"),
    ],
)
def test_ua_number_forms(line: str, number: str) -> None:
    text = SEED_TEXT.replace("First UA: 2 /19 EUR 46/9686/2019", line).replace(
        "Urgent Action 2.19", "this action"
    )
    parsed = _parsed(text)
    assert parsed.data["ua_number"] == number
    assert parsed.data["reference"] == "EUR 46/9686/2019"


@pytest.mark.parametrize(
    ("line", "date"),
    [
        ("PLEASE TAKE ACTION AS SOON AS POSSIBLE UNTIL: 17 May 2019.", dt.date(2019, 5, 17)),
        ("PLEASE SEND APPEALS BEFORE 3 APRIL 2019", dt.date(2019, 4, 3)),
        ("PLEASE TAKE ACTION BEFORE: May 17, 2019", dt.date(2019, 5, 17)),
        ("ACTÚEN LO ANTES POSIBLE Y NO MÁS TARDE DEL: 16 de junio de 2019.", dt.date(2019, 6, 16)),
        ("MERCI D'AGIR AVANT LE 1er août 2019", dt.date(2019, 8, 1)),
        ("PLEASE TAKE ACTION BEFORE: 2019-06-30", dt.date(2019, 6, 30)),
    ],
)
def test_act_until_forms(line: str, date: dt.date) -> None:
    text = SEED_TEXT.replace("PLEASE TAKE ACTION AS SOON AS POSSIBLE UNTIL: 17 May 2019. ", line)
    assert _parsed(text).data["act_until"] == date


@pytest.mark.parametrize(
    ("line", "codes"),
    [
        ("PREFERRED LANGUAGE TO ADDRESS TARGET: RUSSIAN, ENGLISH", ["ru", "en"]),
        ("PREFERRED LANGUAGE TO ADDRESS TARGET: Russian or English", ["ru", "en"]),
        ("Write in English or your own language.", ["en"]),
        ("IDIOMA PREFERIDO PARA ESCRIBIR AL DESTINATARIO: ruso, inglés", ["ru", "en"]),
        ("LANGUE À PRIVILÉGIER : russe, anglais", ["ru", "en"]),
    ],
)
def test_language_forms(line: str, codes: list[str]) -> None:
    text = SEED_TEXT.replace("PREFERRED LANGUAGE TO ADDRESS TARGET: RUSSIAN, ENGLISH", line)
    if "own language" in line:
        text = text.replace("You can also write in your own language.\n", "")
    assert _parsed(text).data["languages"] == codes


def test_missing_dates_are_guessed_and_listed() -> None:
    text = SEED_TEXT.replace("\tDate: 15 January 2019", "").replace(
        "PLEASE TAKE ACTION AS SOON AS POSSIBLE UNTIL: 17 May 2019. ", ""
    )
    parsed = _parsed(text)
    assert parsed.data["issued"] == TODAY
    assert parsed.data["act_until"] == TODAY + dt.timedelta(days=42)
    statuses = {n.field: n.status for n in parsed.notes}
    assert statuses["issued"] == "missing"
    assert statuses["act_until"] == "missing"


def test_an_honorific_line_is_the_name_not_the_address() -> None:
    text = SEED_TEXT.replace("Vladimir Putin\n", "President\nVladimir Putin\n").replace(
        "President of the Russian Federation\n", ""
    )
    president = next(o for o in _parsed(text).officials if o.slug == "president")
    assert (president.name, president.title) == ("Vladimir Putin", "President")
    assert president.address == ["Ul. Ilyinka, 23", "103132 Moscow", "Russian Federation"]


# --- the command ------------------------------------------------------------------------------


def test_campaign_import_writes_a_file_that_campaign_check_and_queue_add_accept(
    run_cli: Any, tmp_path: Path
) -> None:
    out = tmp_path / "chechnya.toml"
    result = run_cli("campaign", "import", SEED, "--out", out, "--id", "ua-2-19-imported")
    assert result.code == 0, result.stderr
    assert f"wrote {out}" in result.stdout
    assert "ambassador-usa:" in result.stdout and "(line " in result.stdout
    assert "targets[0:president].email (missing)" in result.stdout
    checked = run_cli("campaign", "check", out)
    assert checked.code == 0, checked.stderr
    assert "(closed)" in checked.stdout  # the seed's action ended in 2019: reopen it to queue
    text = out.read_text(encoding="utf-8").replace(
        "act_until = 2019-05-17", "act_until = 2099-01-01"
    )
    out.write_text(text, encoding="utf-8")
    letters = tmp_path / "letters.csv"
    letters.write_text(
        "name,email,city,country,language,letter,approved\n"
        'Ann,ann@example.org,York,UK,en,"Please release them.",yes\n',
        encoding="utf-8",
    )
    queued = run_cli("queue", "add", out, letters, "--channels", "email")
    assert queued.code == 0, queued.stderr


def test_campaign_import_refuses_to_overwrite_and_a_bad_document_is_one_line_exit_2(
    run_cli: Any, tmp_path: Path
) -> None:
    out = tmp_path / "c.toml"
    out.write_text("kept", encoding="utf-8")
    again = run_cli("campaign", "import", SEED, "--out", out)
    assert again.code == 2 and again.stderr.count("\n") == 1, again.stderr
    assert "--force" in again.stderr and out.read_text(encoding="utf-8") == "kept"
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    bad = run_cli("campaign", "import", empty, "--out", tmp_path / "x.toml")
    assert bad.code == 2 and bad.stderr.startswith("ua-dispatch: error: ")
    assert bad.stderr.count("\n") == 1 and "Traceback" not in bad.stderr
    assert not (tmp_path / "x.toml").exists()


def test_campaign_import_json_lists_officials_and_notes(run_cli: Any, tmp_path: Path) -> None:
    result = run_cli("campaign", "import", SEED, "--out", tmp_path / "c.toml", "--json")
    assert result.code == 0, result.stderr
    doc = result.json()
    assert [o["slug"] for o in doc["officials"]] == ["president", "ambassador-usa"]
    assert any(n["field"].endswith("president].email") for n in doc["check"])


@pytest.mark.parametrize("name", ["README.md", "Makefile", "pyproject.toml"])
def test_a_document_that_is_not_an_urgent_action_names_no_official(
    name: str, tmp_path: Path
) -> None:
    """Blocks of short lines that give no way to reach anyone (no salutation, number,
    address or handle) are not officials: such a file is refused, not imported."""
    root = Path(__file__).resolve().parents[1]
    with pytest.raises(InputError, match="no official found"):
        import_campaign(root / name, out=tmp_path / "c.toml", today=TODAY)
    assert list(tmp_path.iterdir()) == []


def test_an_official_with_no_country_anywhere_is_refused_not_guessed(tmp_path: Path) -> None:
    """No country in the official's address, no number that tells one, none on the
    reference line: the import stops naming the official, instead of making one up."""
    text = SEED.read_text(encoding="utf-8")
    for old, new in [
        ("2 /19 EUR 46/9686/2019 Russian Federation", "2 /19 EUR 46/9686/2019"),
        ("103132 Moscow\nRussian Federation\n", "103132 Moscow\n"),
        ("Fax: +7 495 9102134 \n", ""),
    ]:
        assert old in text
        text = text.replace(old, new)
    source = tmp_path / "ua.txt"
    source.write_text(text, encoding="utf-8")
    with pytest.raises(InputError) as info:
        import_campaign(source, out=tmp_path / "c.toml", today=TODAY)
    said = str(info.value)
    assert said.startswith(f"{source}: no country for the official on line 17 (Vladimir Putin)")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ua.txt"]


@pytest.mark.parametrize("before", ["Phone: 1 202 298 5700", "Twitter: @KremlinRussia"])
def test_contact_lines_after_a_blank_line_stay_with_their_official(
    before: str, tmp_path: Path
) -> None:
    """A blank line inside an official's block: the contact lines after it are still theirs,
    and neither official is lost or given the other's email and salutation."""
    text = SEED.read_text(encoding="utf-8")
    assert before in text
    source = tmp_path / "ua.txt"
    source.write_text(text.replace(before, "\n" + before, 1), encoding="utf-8")
    campaign = _import(source, tmp_path)
    shipped = {t.slug: t for t in load_campaign(SHIPPED_CAMPAIGN).targets}
    assert [t.slug for t in campaign.targets] == ["president", "ambassador-usa"]
    for target in campaign.targets:
        assert (target.email, target.fax, target.salutation) == (
            shipped[target.slug].email,
            shipped[target.slug].fax,
            shipped[target.slug].salutation,
        ), target.slug
