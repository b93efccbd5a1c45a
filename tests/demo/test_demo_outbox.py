"""`escalator demo` shows the customer's side: acknowledgements with their promise in the
outbox, and demo customers using the "still not solved?" link."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from email import message_from_bytes
from email.policy import default as mail_policy
from pathlib import Path


def test_the_demo_outbox_holds_acknowledgements_and_customers_escalate(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "escalator", "demo", "--duration", "25", "--json"],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "TMPDIR": str(tmp_path)},
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    tally = json.loads(done.stdout.strip().splitlines()[-1])
    assert tally["messages_unrouted"] == 0
    assert tally["acknowledgements_sent"] > 0
    assert tally["customer_escalations"] > 0
    outbox = Path(tally["endpoints"]["outbox"])
    mails = [
        message_from_bytes(path.read_bytes(), policy=mail_policy)
        for path in sorted(outbox.glob("*.eml"))
    ]
    acknowledgements = [mail for mail in mails if mail["Auto-Submitted"] == "auto-replied"]
    assert acknowledgements, f"{len(mails)} mails, none an acknowledgement"
    first = acknowledgements[0]
    assert str(first["Subject"]).startswith("We received your message [#C-")
    assert "You will hear from us by " in first.get_body(("plain",)).get_content()
