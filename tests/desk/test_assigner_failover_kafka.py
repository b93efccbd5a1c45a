"""Assignment runs in one place: of two desk processes exactly one assigns, and when it dies
the other takes over (after the group's session timeout); no case is ever assigned twice."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from escalator.demo.processes import ManagedProcess
from queues.desk import Mode, Presence, Role, Strategy
from tests.desk.stack import desk_stack

LEADS = "this desk process now runs the assigner"


def leads_now(process: ManagedProcess) -> bool:
    log = process.log_path.read_text()
    return log.rfind(LEADS) > log.rfind("no longer runs the assigner")


def test_one_of_two_desks_assigns_and_the_other_takes_over(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    with desk_stack(kafka_bootstrap, tmp_path, assigner=True) as desk:
        first = next(p for p in desk.stack.started if p.name.startswith("desk"))
        urls = {first.name: desk.stack.desk_url}
        second = desk.stack.start_desk()
        urls[second.name] = desk.stack.desk_url
        desk.add("boss", role=Role.ADMIN)
        desk.directory.configure_queue("general", strategy=Strategy.ROUND_ROBIN, mode=Mode.PUSH)
        for name in ("ana", "bo"):
            desk.add(name, "general")
            desk.directory.set_presence(name, Presence.ONLINE)
        customers = desk.send([f"two-desks-{n}@example.com" for n in range(6)])
        cases = desk.wait_for_cases(customers, "boss")
        for case in cases.values():
            desk.wait_for(f"/v1/cases/{case['case_id']}", "boss", lambda c: c["assignee"])
        time.sleep(2)  # room for a second assigner's duplicate, were there one
        owners = []
        for case in cases.values():
            detail = desk.call("GET", f"/v1/cases/{case['case_id']}", "boss").json()
            types = [e["type"] for e in detail["events"]]
            assert types.count("case.assigned") == 1, types
            assert "action.rejected" not in types
            owners.append(detail["assignee"])
        assert sorted(owners) == ["ana"] * 3 + ["bo"] * 3  # round robin over two agents

        leaders = [p for p in (first, second) if leads_now(p)]
        assert len(leaders) == 1, [p.log_path.read_text()[-2000:] for p in (first, second)]
        [leader] = leaders
        follower = second if leader is first else first
        os.killpg(leader.process.pid, signal.SIGKILL)  # no goodbye to the group
        leader.process.wait(timeout=10)
        desk.stack.desk_url = urls[follower.name]
        [customer] = desk.send(["after-failover@example.com"])
        [case] = desk.wait_for_cases([customer], "boss").values()
        desk.wait_for(f"/v1/cases/{case['case_id']}", "boss", lambda c: c["assignee"], timeout=90)
        assert leads_now(follower)
