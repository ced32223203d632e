"""Writing an imported campaign as a TOML campaign file (the format of
``config/campaigns/README.md``), with the fields to check listed at its top."""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

from ua_dispatch.importer.parse import Note, Official

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_COMMENT_UNSAFE = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]")


def toml_string(value: str) -> str:
    """A TOML basic string (JSON's escapes are TOML's, except DEL, which TOML wants escaped)."""
    return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")


def _multiline(value: str) -> str:
    if "\n" not in value:
        return toml_string(value)
    body = value.replace("\\", "\\\\").replace('"""', '""\\"')
    body = _CONTROL.sub(lambda m: f"\\u{ord(m.group()):04x}", body)
    if body.endswith('"'):
        body = body[:-1] + "\\u0022"
    return f'"""\n{body}"""'


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, str):
        return _multiline(value)
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def _comment(text: str) -> str:
    return _COMMENT_UNSAFE.sub(" ", text)


_TOP = ("id", "ua_number", "reference", "title", "country", "issued", "act_until", "languages",
        "subject", "sample_letter", "background")  # fmt: skip
_TARGET = ("slug", "name", "title", "organisation", "country", "address", "salutation", "email",
           "phone", "fax", "x_handles", "mastodon", "bluesky", "copy")  # fmt: skip


def target_data(off: Official) -> dict[str, Any]:
    data: dict[str, Any] = {
        "slug": off.slug,
        "name": off.name,
        "title": off.title,
        "organisation": off.organisation,
        "country": off.country,
        "address": off.address,
        "salutation": off.salutation,
        "email": off.email,
        "phone": off.phone,
        "fax": off.fax,
        "x_handles": off.x_handles,
        "mastodon": off.mastodon,
        "bluesky": off.bluesky,
        "copy": off.copy,
    }
    return {k: v for k, v in data.items() if v not in (None, [], False)}


def campaign_toml(data: dict[str, Any], *, source: str, notes: list[Note]) -> str:
    """The campaign file's text; ``data`` is a campaign as :class:`Campaign` validates it."""
    out = [
        f"# Imported from {_comment(source)} by `ua-dispatch campaign import`.",
        "# Format: config/campaigns/README.md",
    ]
    if notes:
        out.append("# Check these against the document before sending:")
        for n in notes:
            where = f"line {n.line}" if n.line is not None else "document"
            out.append(_comment(f"#   {where}: {n.field} ({n.status}): {n.detail}"))
    out.append("")
    for key in _TOP:
        if data.get(key) is not None:
            out.append(f"{key} = {_value(data[key])}")
    for target in data["targets"]:
        out.extend(["", "[[targets]]"])
        for key in _TARGET:
            if key in target:
                out.append(f"{key} = {_value(target[key])}")
    return "\n".join(out) + "\n"
