"""Stage C `cases` (keyed by case id): append, evaluate rules, route, emit case events."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import ValidationError

from rules import CompiledRuleSet
from schemas import AgentAction, channel_label
from streams import metrics, omni_metrics
from streams.actions import apply_action
from streams.case_entry import entry_for
from streams.case_state import CaseState
from streams.case_writes import CaseWrites
from streams.casework import CaseUpdate, apply_message, overdue_firings
from streams.intake import dead_letter
from streams.output import OutputRecord
from streams.poison import letter_record
from streams.records import ThreadedMessage
from streams.shadow import ShadowCheck
from streams.sla import count_events
from streams.stage_context import json_record, raw_record
from streams.threader import NotThreaded


@dataclass(frozen=True)
class _CaseStep:
    """What stage C made of one record: records to write, and the case's change if any."""

    outputs: list[OutputRecord]
    update: CaseUpdate | None = None
    threaded: ThreadedMessage | None = None


class CasesStage(CaseWrites):
    """Stage C over `messages.threaded` and `agent.actions`, in order per case."""

    async def cases_batch(self, events: Iterable[Any]) -> None:
        """Stage C: messages and agent actions, in order per case; events and queue records."""
        async with self.case_lock:
            events = self.current(events)
            with self.progress.batch("cases"):
                dirty: dict[bytes, tuple[int, CaseState]] = {}
                outputs: dict[int, list[OutputRecord]] = {}
                updates: list[tuple[CaseUpdate, ThreadedMessage]] = []
                offsets: dict[tuple[str, int], int] = {}
                ruleset = self.rules.current
                shadow = self.rules.shadow
                check = ShadowCheck(shadow, self.topics.rules_shadow) if shadow else None
                for event in events:
                    message = event.message
                    # what a record causes is written with its partition's states
                    caused = outputs.setdefault(message.partition, [])
                    held = self._held(
                        "cases", message, dirty, self.cases, CaseState, offsets, caused
                    )
                    if held is None:
                        continue
                    key, partition, state = held
                    try:
                        state, fired = self._fire_before(state, message.timestamp, ruleset)
                        step = self._case_step(state, event, ruleset, check)
                    except MemoryError:
                        raise
                    except Exception as exc:  # the record's content: dead-letter it, go on
                        caused.append(self._poisoned("cases", raw_record(message), exc))
                        continue
                    caused.extend(fired)
                    caused.extend(step.outputs)
                    if step.update is None:
                        if fired and state is not None:
                            dirty[key] = (partition, state)
                        continue
                    dirty[key] = (partition, step.update.state)
                    count_events(step.update.events)
                    if step.threaded is not None:
                        updates.append((step.update, step.threaded))
                metrics.BATCH_SIZE.labels("cases").observe(sum(map(len, outputs.values())))
                await self._commit(outputs, check.records if check else [], dirty)
            self.progress.finished(offsets)
        now = time.time()
        for update, threaded in updates:
            self._count(update, threaded, now)

    def _fire_before(
        self, state: CaseState | None, record_time: float, ruleset: CompiledRuleSet
    ) -> tuple[CaseState | None, list[OutputRecord]]:
        """Fire the case's deadlines that a record stamped `record_time` comes after.

        The timer fires a deadline once stage C's event time passed it by the lateness; a
        record stamped later than that may reach this batch before the timer runs. Firing
        those deadlines here first puts the two in event-time order whenever they are
        processed, so a replay after a crash writes what the first run wrote.
        """
        outputs: list[OutputRecord] = []
        if state is None:
            return state, outputs
        limit = datetime.fromtimestamp(record_time, UTC) - self.lateness
        at_or_before = limit + timedelta(microseconds=1)  # datetimes go to the microsecond
        for update in overdue_firings(state, ruleset, at_or_before):
            count_events(update.events)
            outputs.extend(self._case_outputs(update))
            state = update.state
        return state, outputs

    def _case_step(
        self,
        state: CaseState | None,
        event: Any,
        ruleset: CompiledRuleSet,
        shadow: ShadowCheck | None = None,
    ) -> _CaseStep:
        """Stage C for one record: its outputs, and the case's update when it changed."""
        outputs: list[OutputRecord] = []
        if event.message.topic == self.topics.agent_actions:
            update = self._action_update(state, event, ruleset, outputs)
            if update is None or not update.changed:
                return _CaseStep(outputs)
            outputs.extend(self._case_outputs(update))
            return _CaseStep(outputs, update)
        threaded = ThreadedMessage.model_validate_json(event.message.value)
        moved = entry_for(state, threaded, self.threading)
        if moved is not None:
            return _CaseStep(self._moved(threaded, moved))
        check = shadow.for_case(threaded.case_id) if shadow is not None else None
        update = apply_message(state, threaded, ruleset, check, acknowledger=self.acknowledger)
        if not update.changed:
            metrics.MESSAGES_DUPLICATE.labels(channel_label(threaded.message.channel)).inc()
            return _CaseStep(outputs)
        return _CaseStep(self._case_outputs(update), update, threaded)

    def _moved(
        self, threaded: ThreadedMessage, moved: ThreadedMessage | NotThreaded
    ) -> list[OutputRecord]:
        """The message goes to another case (through the threaded topic) or is dropped."""
        if isinstance(moved, NotThreaded):
            omni_metrics.not_threaded(threaded.message.channel, moved)
            return []
        omni_metrics.MESSAGES_MOVED.labels(channel_label(threaded.message.channel)).inc()
        return [json_record(self.topics.threaded, moved.case_id, moved)]

    def _action_update(
        self,
        state: CaseState | None,
        event: Any,
        ruleset: CompiledRuleSet,
        outputs: list[OutputRecord],
    ) -> CaseUpdate | None:
        """Apply an agent action; a bad one or one for an unknown case is dead-lettered."""
        message = event.message
        try:
            action = AgentAction.model_validate_json(message.value)
        except ValidationError as exc:
            outputs.append(self._dead_action(message, "invalid_action", str(exc)))
            return None
        update = apply_action(state, action, ruleset)
        if update is None:
            outputs.append(
                self._dead_action(message, "unknown_case", f"no case {action.case_id} here")
            )
        return update

    def _dead_action(self, message: Any, reason: str, detail: str) -> OutputRecord:
        metrics.MESSAGES_DEAD_LETTERED.labels(reason).inc()
        letter = dead_letter(raw_record(message), reason, detail, "cases", self.max_record_bytes)
        return letter_record(self.topics.dlq, letter, message.key)

    @staticmethod
    def _count(update: CaseUpdate, threaded: ThreadedMessage, now: float) -> None:
        for event in update.events:
            if event.type == "case.opened":
                metrics.CASES_OPENED.labels(channel_label(threaded.message.channel)).inc()
            elif event.type == "case.routed" and update.routed is not None:
                metrics.CASES_ROUTED.labels(update.routed.queue).inc()
        metrics.INGEST_TO_ROUTED.observe(
            max(0.0, now - threaded.ingested_at.timestamp()), {"case_id": update.state.case_id}
        )
