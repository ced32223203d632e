"""Mutation testing of the core modules, each against its own tests only.

    python scripts/mutation.py                 # every module in MODULES, one after another
    python scripts/mutation.py hours limits    # just these

For each module the tree is copied to ``build/mutation/<module>/`` with a ``[tool.mutmut]``
section that mutates only that module's file and selects only its tests; ``mutmut run`` works
there (in its own ``mutants/`` copy), one mutant at a time. A score per module is printed at the
end: killed (or timed out) over all mutants tried, and every survivor by name with the reason
it is equivalent to the original code (EQUIVALENT below). A survivor without one fails the
run. ``mutmut show NAME`` in the module's build directory prints the change.

To add a module (the CSV loader, say), add an entry to MODULES: the file, the tests that are
its own, and optionally the functions to mutate when only part of the file is of interest.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "build" / "mutation"
# What the tests read besides src/ and tests/ (shipped campaigns, example letters).
ALSO_COPY = ("config", "examples")


@dataclass(frozen=True)
class Module:
    path: str
    tests: tuple[str, ...]
    #: mutant name patterns to run (mutmut names them ``package.module.x_function__mutmut_N``,
    #: methods ``package.module.xǁClassǁmethod__mutmut_N``); every mutant of the file if empty
    only: tuple[str, ...] = ()


MODULES: dict[str, Module] = {
    "textlimits": Module("src/ua_dispatch/textlimits.py", ("tests/test_textlimits.py",)),
    "limits": Module(
        "src/ua_dispatch/limits.py",
        (
            "tests/test_limits.py",
            "tests/test_faults.py::test_rate_syntax",
            "tests/test_faults.py::test_bad_rate_syntax",
        ),
    ),
    "ids": Module("src/ua_dispatch/ids.py", ("tests/test_ids.py", "tests/test_supporter_key.py")),
    "hours": Module("src/ua_dispatch/hours.py", ("tests/test_hours.py",)),
    "smtp-replies": Module(
        "src/ua_dispatch/channels/smtp.py",
        ("tests/test_email_builder.py", "-k", "smtp_reply or enhanced_status"),
        only=(
            "ua_dispatch.channels.smtp.x_classify_smtp_reply__*",
            "ua_dispatch.channels.smtp.x_enhanced_status__*",
        ),
    ),
    "fax-replies": Module(
        "src/ua_dispatch/fax/*.py",
        ("tests/test_fax_replies.py",),
        only=(
            "ua_dispatch.fax.rest.x_http_error__*",
            "ua_dispatch.fax.base.x_parse_retry_after__*",
            "ua_dispatch.fax.base.xǁFaxProviderǁfailure_error__*",
            "ua_dispatch.fax.sinch.xǁSinchFaxǁfailure_class__*",
            "ua_dispatch.fax.telnyx.xǁTelnyxFaxǁfailure_class__*",
        ),
    ),
    # the field rules and how a bad file is reported, not the model's accessors
    "campaign": Module(
        "src/ua_dispatch/campaign.py",
        (
            "tests/test_campaign_validation.py",
            "tests/test_campaign.py",
            "tests/test_campaign_accounts.py",
        ),
        only=tuple(
            f"ua_dispatch.campaign.x_{name}__*"
            for name in (
                "_single_line",
                "_slug",
                "_email",
                "_x_handle",
                "_mastodon",
                "_bluesky",
                "_hashtag",
                "_web_link",
                "_language",
                "_country",
                "parse_number",
                "format_location",
                "one_line_validation_error",
                "load_campaign",
            )
        ),
    ),
    # To add the CSV loader: "queue-loader": Module("src/ua_dispatch/queue/loader.py",
    # ("tests/test_loader.py",)) with the tests that are its own.
}

# Survivors that are equivalent to the original: no test can tell them apart, because no
# input behaves differently. ``mutmut show NAME`` in build/mutation/<module>/ prints each
# change. Mutant numbers move when a function changes: a survivor not listed here is reported
# as unexplained (and the run fails) until it is killed by a test or explained.
EQUIVALENT: dict[str, str] = {
    "ua_dispatch.textlimits.x_mastodon_length__mutmut_4": (
        "a URL replaced by 23 'X' rather than 23 'x': the same 23 graphemes"
    ),
    "ua_dispatch.textlimits.x_urls__mutmut_16": (
        "'HTTPS?://' for 'https?://', matched ignoring case either way"
    ),
    "ua_dispatch.textlimits.xǁ_Cutsǁ__init____mutmut_7": (
        "one more slot in the coverage map: the slot past the end is never read"
    ),
    "ua_dispatch.textlimits.xǁ_Cutsǁ__init____mutmut_56": (
        "'' for None as the value of a dict used only for its ordered keys"
    ),
    "ua_dispatch.textlimits.xǁ_Cutsǁ__init____mutmut_67": (
        "'' for None as the value of a dict used only for its ordered keys"
    ),
    "ua_dispatch.textlimits.x_compose__mutmut_93": (
        ">= for > between (kept, -rank) pairs: every tail has its own rank, so two pairs are "
        "never equal"
    ),
    "ua_dispatch.textlimits.x_compose__mutmut_94": (
        "(kept, -rank) against best[:3] instead of best[:2]: two tails never share a rank, so "
        "the first two items always decide and the third is never compared"
    ),
    "ua_dispatch.textlimits.x_compose__mutmut_96": (
        "best keeps +rank instead of -rank: only a later tail (higher rank) is compared with "
        "it, and -later > earlier holds for neither sign, so the same best is kept"
    ),
    "ua_dispatch.textlimits.x_compose__mutmut_110": (
        "assemble(None, ...) for assemble('', ...): assemble leaves out empty parts, None too"
    ),
    "ua_dispatch.textlimits.x_compose__mutmut_115": (
        "assemble(None, ...) for assemble('', ...): assemble leaves out empty parts, None too"
    ),
    "ua_dispatch.textlimits.x_compose__mutmut_120": (
        "post(None, ...) for post('', ...): assemble leaves out empty parts, None too"
    ),
    "ua_dispatch.textlimits.x_bluesky_facets__mutmut_114": (
        "facets sorted as whole tuples instead of by their byte start: no two facets start at "
        "the same byte (a tag starts with '#', a mention with '@', a link with 'h'), so the "
        "start alone decides"
    ),
    # _email's fast path is documented and tested as giving the library's own answer
    # (test_email_fast_path_answers_as_the_library_does): a change that only skips it, or
    # lets fewer addresses take it, gives the same answer more slowly.
    **{
        f"ua_dispatch.campaign.x__email__mutmut_{n}": f"fast path {what}: the same answer, slower"
        for n, what in (
            (9, "split at the first '@' (no plain local part has one: the full check runs)"),
            (10, "never split (the full check runs)"),
            (17, "skipped (no checked domain)"),
            (18, "skipped (the domain None is refused)"),
            (21, "skipped (condition inverted to a domain that was refused)"),
            (22, "taken only where the checked domain differs, which for ASCII it never does"),
            (23, "skipped (a checked domain is never upper case)"),
            (26, "refused at 253 characters rather than 254: the full check takes that one"),
            (27, "refused at 254 characters rather than 255: the full check takes that one"),
        )
    },
    "ua_dispatch.campaign.x__web_link__mutmut_9": (
        "'HTTPS?://' for 'https?://', matched ignoring case either way"
    ),
    "ua_dispatch.campaign.x_format_location__mutmut_16": (
        "'' for None as the node past a missing index: neither is a list or a dict"
    ),
    "ua_dispatch.campaign.x_load_campaign__mutmut_14": (
        "'UTF-8' for 'utf-8': codec names are not case-sensitive"
    ),
    "ua_dispatch.hours.x_office_hours__mutmut_10": (
        "`local.time() <= start` for `< start`: at exactly the opening time on a weekday the "
        "office is already open (returned above); at the weekend both skip to Monday"
    ),
    "ua_dispatch.limits.xǁRateLimitsǁwait_turn__mutmut_5": (
        "the channel-wide limiter's key None for '*': any fixed key names the one limiter"
    ),
    "ua_dispatch.limits.xǁRateLimitsǁwait_turn__mutmut_8": (
        "the channel-wide limiter's key 'XX*XX' for '*': any fixed key names the one limiter"
    ),
    "ua_dispatch.channels.smtp.x_classify_smtp_reply__mutmut_4": (
        "'XXXX' for '' when the reply has no enhanced status: neither starts with 4.7 or 5.7 "
        "nor equals 4.2.1 or 4.7.1"
    ),
    "ua_dispatch.channels.smtp.x_enhanced_status__mutmut_4": (
        "'XXXX' for '' in place of an empty message: neither matches a status"
    ),
    "ua_dispatch.fax.sinch.xǁSinchFaxǁfailure_class__mutmut_4": (
        "'XXXX' for '' when there is no error type: neither is a type the code looks for"
    ),
}

_RESULT = re.compile(r"^\s*(\S+): (.+?)\s*$")
KILLED = {"killed", "timeout"}


def mutmut_section(module: Module) -> str:
    """``[tool.mutmut]`` for one module: the project's settings plus file and test selection."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    settings = dict(config.get("tool", {}).get("mutmut", {}))
    settings["only_mutate"] = [module.path]
    settings["pytest_add_cli_args_test_selection"] = list(module.tests)
    settings["also_copy"] = list(ALSO_COPY)
    # JSON strings, numbers, booleans and lists of those are TOML too
    return "[tool.mutmut]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in settings.items())


def without_mutmut_section(text: str) -> str:
    out, skipping = [], False
    for line in text.splitlines(keepends=True):
        if line.startswith("["):
            skipping = line.strip() == "[tool.mutmut]"
        if not skipping:
            out.append(line)
    return "".join(out)


def prepare(name: str, module: Module) -> Path:
    where = BUILD / name
    shutil.rmtree(where, ignore_errors=True)
    where.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", ".hypothesis", "*.pyc")
    for part in ("src", "tests", *ALSO_COPY):
        shutil.copytree(ROOT / part, where / part, ignore=ignore)
    project = without_mutmut_section((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    (where / "pyproject.toml").write_text(
        project.rstrip() + "\n\n" + mutmut_section(module), encoding="utf-8"
    )
    return where


def mutmut(where: Path, *args: str, capture: bool = False) -> str:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["UA_DISPATCH_MUTATION"] = "1"  # the property tests try fewer examples
    command = [sys.executable, "-m", "mutmut", *args]
    done = subprocess.run(
        command, cwd=where, env=env, text=True, capture_output=capture, check=False
    )
    if done.returncode != 0 and args[0] != "run":
        sys.exit(f"{' '.join(command)} failed in {where}:\n{done.stdout}{done.stderr}")
    return done.stdout or ""


def run(name: str, module: Module) -> tuple[int, int, list[str]]:
    where = prepare(name, module)
    print(f"== {name}: {module.path} against {' '.join(module.tests)}", flush=True)
    mutmut(where, "run", "--max-children", "1", *module.only, capture=True)
    statuses: dict[str, str] = {}
    for line in mutmut(where, "results", "--all", "true", capture=True).splitlines():
        m = _RESULT.match(line)
        if m:
            statuses[m.group(1)] = m.group(2)
    if module.only:
        statuses = {
            k: v for k, v in statuses.items() if any(fnmatch.fnmatch(k, p) for p in module.only)
        }
    tried = {k: v for k, v in statuses.items() if v not in {"not checked", "skipped"}}
    killed = sum(1 for v in tried.values() if v in KILLED)
    survivors = sorted(f"{k}: {v}" for k, v in tried.items() if v not in KILLED)
    return killed, len(tried), survivors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("modules", nargs="*", metavar="MODULE", help=", ".join(MODULES))
    names = parser.parse_args().modules or list(MODULES)
    unknown = [n for n in names if n not in MODULES]
    if unknown:
        parser.error(f"unknown module {', '.join(unknown)}; choose from {', '.join(MODULES)}")
    rows: list[tuple[str, int, int, int]] = []
    unexplained = 0
    for name in names:
        killed, tried, survivors = run(name, MODULES[name])
        equivalent = sum(1 for s in survivors if s.split(": ")[0] in EQUIVALENT)
        unexplained += len(survivors) - equivalent
        rows.append((name, killed, tried, equivalent))
        print(f"{name}: {killed}/{tried} killed")
        for survivor in survivors:
            mutant = survivor.split(": ")[0]
            why = EQUIVALENT.get(mutant, "NOT EXPLAINED: a test is missing, or explain it")
            print(f"    {survivor}\n        {why}")
    print("\nmodule          killed    score   killed or equivalent")
    for name, killed, tried, equivalent in rows:
        score = 100.0 * killed / tried if tried else 0.0
        covered = 100.0 * (killed + equivalent) / tried if tried else 0.0
        print(f"{name:<14} {killed:>4}/{tried:<4} {score:6.1f}%   {covered:6.1f}%")
    if unexplained:
        sys.exit(f"{unexplained} surviving mutant(s) not explained (see above)")


if __name__ == "__main__":
    main()
