"""Call scripts: for each target with a phone number, what to say and whether to call now.

The script is in the supporter's language (English and Russian; others get English). It gives
the number in international format, the official's local time at build time (the time zone comes
from the number, via phonenumbers' time zone data) and whether that is within office hours
(Monday to Friday, ``office_hours_start``-``office_hours_end`` local time, 09:00-18:00 unless
configured), with the next opening when it is not, and the points to make.

Draft: ``phone/<target-slug>.txt``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import phonenumbers

from ua_dispatch.campaign import Target
from ua_dispatch.channels.base import ByHand, Channel
from ua_dispatch.delivery import BuildEnv
from ua_dispatch.hours import office_hours, time_zone_of, zone_of
from ua_dispatch.plan import Appeal, Delivery

_WEEKDAYS = {
    "en": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
    "ru": ("понедельник", "вторник", "среда", "четверг", "пятница", "суббота", "воскресенье"),
}

# Wording of the script, per language. {placeholders} are filled in by _render.
_TEXT = {
    "en": {
        "title": "Call script: {target}",
        "number": "Number: {international}  ({tel})",
        "local": "Local time there: {weekday} {time} ({zone}, {offset})",
        "zones": "The number's region spans several time zones ({zones}); this assumes the first.",
        "no_zone": "Local time there: unknown (no time zone is known for this number).",
        "hours": "Office hours: Monday to Friday {start}-{end} local time.",
        "open": "Now: within office hours, a good time to call.",
        "closed": "Now: outside office hours. Next opening: {weekday} {time} local time"
        " ({utc} UTC).",
        "unknown_hours": "Check their office hours before calling.",
        "intro_head": "Introduce yourself:",
        "intro": '"Hello, my name is {name}{place}. I am calling about {title}'
        ' (Urgent Action {ua})."',
        "from": ", from {place}",
        "points_head": "Points to make:",
        "point_pass": "Please make sure {name}, {title}, hears of this call.",
        "point_ask": "Ask what is being done about it, and where a written appeal can be sent.",
        "close": "Keep it short and polite. Write down the name of the person you spoke to and"
        " what they said, and thank them for their time.",
    },
    "ru": {
        "title": "Сценарий звонка: {target}",
        "number": "Номер: {international}  ({tel})",
        "local": "Местное время там: {weekday} {time} ({zone}, {offset})",
        "zones": "Регион номера охватывает несколько часовых поясов ({zones}); взят первый.",
        "no_zone": "Местное время там: неизвестно (для этого номера нет данных о часовом поясе).",
        "hours": "Часы работы: с понедельника по пятницу, {start}–{end} по местному времени.",
        "open": "Сейчас: рабочее время, можно звонить.",
        "closed": "Сейчас: нерабочее время. Ближайшее начало рабочего дня: {weekday} {time}"
        " по местному времени ({utc} UTC).",
        "unknown_hours": "Перед звонком уточните часы работы.",
        "intro_head": "Представьтесь:",
        "intro": "«Здравствуйте, меня зовут {name}{place}. Я звоню по поводу срочного"
        " призыва {ua}.»",
        "from": ", я из {place}",
        "points_head": "Что сказать:",
        "point_pass": "Прошу передать моё обращение адресату: {name}, {title}.",
        "point_ask": "Спросите, что делается в связи с этим и куда можно направить"
        " письменное обращение.",
        "close": "Говорите коротко и вежливо. Запишите имя собеседника и его ответ;"
        " поблагодарите за уделённое время.",
    },
}


@dataclass(frozen=True)
class CallScript:
    text: str
    language: str
    number: str  # E.164
    international: str
    time_zone: str | None
    local_time: dt.datetime | None
    in_office_hours: bool | None
    next_opening: dt.datetime | None


def script_language(language: str) -> str:
    return language if language in _TEXT else "en"


class PhoneChannel(Channel[CallScript]):
    name = "phone"
    address_word = "phone number"
    sends = False
    by_hand_verb = "made the call"

    def address_of(self, target: Target) -> str | None:
        return target.phone

    def build(self, appeal: Appeal, delivery: Delivery, env: BuildEnv) -> CallScript:
        if delivery.to is None:
            raise ValueError("cannot write a call script for a target without a phone number")
        target = delivery.the_target
        campaign = appeal.campaign
        lang = script_language(appeal.letter.language)
        t = _TEXT[lang]
        weekdays = _WEEKDAYS[lang]
        number = phonenumbers.parse(delivery.to)
        international = phonenumbers.format_number(
            number, phonenumbers.PhoneNumberFormat.INTERNATIONAL
        )
        lines = [
            t["title"].format(target=target.display),
            f"{campaign.ua_number} ({campaign.reference}): {campaign.title}",
            "",
            t["number"].format(international=international, tel=f"tel:{delivery.to}"),
        ]

        # the campaign's time_zone for the office when it gives one, else the number's (placed
        # by the office's address and country when the number spans several zones)
        address = tuple(target.address)
        zone = zone_of(delivery.to, target.time_zone, country=target.country, address=address)
        zones = () if target.time_zone else time_zone_of(delivery.to, target.country, address)[1]
        local: dt.datetime | None = None
        in_hours: bool | None = None
        opening: dt.datetime | None = None
        settings = env.settings
        if zone is not None:
            local = env.now.astimezone(zone)
            offset = local.utcoffset() or dt.timedelta(0)
            sign = "+" if offset >= dt.timedelta(0) else "−"
            hours, rest = divmod(abs(int(offset.total_seconds())) // 60, 60)
            lines.append(
                t["local"].format(
                    weekday=weekdays[local.weekday()],
                    time=local.strftime("%H:%M"),
                    zone=zone.key,
                    offset=f"UTC{sign}{hours:02d}:{rest:02d}",
                )
            )
            if len(zones) > 1:
                lines.append(t["zones"].format(zones=", ".join(zones)))
            start, end = settings.office_hours_start, settings.office_hours_end
            lines.append(
                t["hours"].format(start=start.strftime("%H:%M"), end=end.strftime("%H:%M"))
            )
            in_hours, opening = office_hours(local, start, end)
            if in_hours:
                lines.append(t["open"])
            elif opening is not None:
                lines.append(
                    t["closed"].format(
                        weekday=weekdays[opening.weekday()],
                        time=opening.strftime("%H:%M"),
                        utc=opening.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M"),
                    )
                )
        else:
            lines += [t["no_zone"], t["unknown_hours"]]

        supporter = appeal.supporter
        place = t["from"].format(place=supporter.place) if supporter.place else ""
        demand, _ = campaign.demand_for(lang)
        lines += [
            "",
            t["intro_head"],
            "  "
            + t["intro"].format(
                name=supporter.name, place=place, title=campaign.title, ua=campaign.ua_number
            ),
            "",
            t["points_head"],
            f"  1. {demand}",
            "  2. " + t["point_pass"].format(name=target.name, title=target.title),
            "  3. " + t["point_ask"],
            "",
            t["close"],
        ]
        return CallScript(
            text="\n".join(lines) + "\n",
            language=lang,
            number=delivery.to,
            international=international,
            time_zone=zone.key if zone is not None else None,
            local_time=local,
            in_office_hours=in_hours,
            next_opening=opening,
        )

    def write_draft(self, payload: CallScript, delivery: Delivery, out_dir: Path) -> Path:
        path = out_dir / "phone" / f"{delivery.slug}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(payload.text, encoding="utf-8", newline="\n")
        return path

    def by_hand(self, payload: CallScript | None, delivery: Delivery) -> list[ByHand]:
        if payload is None:
            return []
        who = delivery.the_target.display
        return [ByHand(self.name, delivery.slug, who, f"Call {who}", payload.text)]
