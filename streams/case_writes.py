"""How stage C and the SLA timer write a changed case.

Its events and queue records first, then its state, then its deadlines.
"""

from __future__ import annotations

from collections.abc import Mapping

from streams.case_state import CaseState, shrunk
from streams.casework import CaseUpdate
from streams.output import OutputRecord
from streams.stage_context import StageContext, json_record
from streams.state_store import EncodedState


class CaseWrites(StageContext):
    """Writing case updates: outputs acknowledged first, then state, then deadlines."""

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
        outputs: list[OutputRecord],
        dirty: Mapping[bytes, tuple[int, CaseState | EncodedState]],
    ) -> None:
        """Outputs first, then state, each acknowledged; then the deadlines they imply."""
        await self.writer.write(outputs)
        await self._save_cases(dirty)

    async def _save_cases(
        self, dirty: Mapping[bytes, tuple[int, CaseState | EncodedState]]
    ) -> None:
        """Write changed cases to their changelog (acknowledged), then index their deadlines."""
        fitted = {
            key: (partition, self._fitted(state)) for key, (partition, state) in dirty.items()
        }
        await self.cases.save(self.writer, fitted)
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
