from pathlib import Path

from tests.conftest import EXAMPLES, SUPPORTER_ARGS


def test_send_reaches_fake_server(run_cli, open_campaign: Path, smtp_env) -> None:
    result = run_cli(
        "send",
        open_campaign,
        EXAMPLES / "letter-en.txt",
        *SUPPORTER_ARGS,
        "--channels",
        "email",
        "--yes",
        "--json",
    )
    assert result.code == 0, result.stderr
    doc = result.json()
    statuses = {d["target"]: d["status"] for d in doc["deliveries"]}
    assert statuses == {"president": "skipped", "ambassador-usa": "sent"}
    assert len(smtp_env.store.index()) == 1
