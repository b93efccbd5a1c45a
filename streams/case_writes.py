"""How stage C and the SLA timer write a changed case.

Stage C writes a batch's events and queue records in one transaction with the states they
came from (see `ChangelogState.save`); the SLA timer writes its events first, then the
states. The deadlines are indexed after that.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from streams.case_state import CaseState, shrunk
from streams.casework import CaseUpdate
from streams.output import OutputRecord
from streams.stage_context import StageContext, json_record
from streams.state_store import EncodedState


class CaseWrites(StageContext):
    """Writing case updates: outputs with their states (stage C) or before them (timer)."""

    def _case_outputs(self, update: CaseUpdate) -> list[OutputRecord]:
        case_id = update.state.case_id
        records = [json_record(self.topics.case_events, case_id, event) for event in update.events]
        if update.routed is not None:
            records.append(
                json_record(self.topics.queue(update.routed.queue), case_id, update.routed)
            )
            if update.previous_queue:
                records.append(
                    json_record(self.topics.queue(update.previous_queue), case_id, update.routed)
                )
        return records

    async def _commit(
        self,
        outputs: Mapping[int, Sequence[OutputRecord]],
        loose: Sequence[OutputRecord],
        dirty: Mapping[bytes, tuple[int, CaseState | EncodedState]],
    ) -> None:
        """Stage C's batch: its outputs per input partition, together with its states.

        `loose` records belong to no case (shadow comparisons): they are written first.
        """
        await self.writer.write(loose, "cases")
        await self._save_cases(dirty, outputs)

    async def _save_cases(
        self,
        dirty: Mapping[bytes, tuple[int, CaseState | EncodedState]],
        outputs: Mapping[int, Sequence[OutputRecord]] | None = None,
    ) -> None:
        """Write changed cases to their changelog (acknowledged), then index their deadlines."""
        fitted = {
            key: (partition, self._fitted(state)) for key, (partition, state) in dirty.items()
        }
        await self.cases.save(self.writer, fitted, outputs, "cases")
        held = self.cases.partitions
        for key, (partition, state) in fitted.items():
            if partition not in held:
                continue  # revoked meanwhile: not saved, the next owner fires it
            self.deadlines.schedule(partition, key, state.deadline)

    def _fitted(self, state: CaseState | EncodedState) -> EncodedState:
        """A case state encoded under the record limit (its window shrunk if it must be)."""
        if isinstance(state, EncodedState):
            return state
        encoded = self.cases.encode(state)
        while len(encoded.value) > self.max_record_bytes:
            smaller = shrunk(state)
            if smaller is None:
                break  # the writer sets it aside as a dead letter
            state = smaller
            encoded = self.cases.encode(state)
        return encoded
