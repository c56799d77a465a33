"""Tamper evidence: walk one hash chain in seq order, in batches (constant memory).

Each event's hash covers its content and the previous event's hash, and the chain head stores
the last seq and hash. A chain verifies when seqs are contiguous, every prev_hash is the
previous event's hash, every hash matches the content, and the last event is the head.

After retention pruning the chain starts mid-way: the first remaining event must then be
exactly the one the `audit.pruned` event (itself in the chain, so covered by the hashes)
names as `next_seq`, with `next_prev_hash` as its prev_hash.

Removing the newest events and rewinding the head consistently (possible for someone with
a superuser's access to the database, not for the application's role: audit/dbsecurity.py)
leaves a well-formed shorter chain. Signed checkpoints (audit/checkpoints.py), written by the
hourly verification and every AUDIT_CHECKPOINT_EVERY events, catch that: the chain must still
reach every checkpoint, with the hash it had then. A checkpoint whose MAC does not verify is
reported too. What remains undetected: a rewrite by someone who also holds
AUDIT_CHECKPOINT_KEY, or who deletes the checkpoint rows as well (the checkpoints are also
logged, to logger `audit.checkpoint`, for a log store outside the database).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from audit import checkpoints
from audit.models import AuditChainHead, AuditEvent, ChainCheckpoint, ChainVerification
from audit.selectors import forget_page_choices
from audit.services import event_hash


@dataclass
class ChainResult:
    chain_key: int
    count: int = 0
    last_event: str = ""
    last_event_at: dt.datetime | None = None
    last_seq: int = 0
    last_hash: str = ""
    ok: bool = True
    first_bad_event: str = ""
    problem: str = ""

    def fail(self, event: AuditEvent | None, problem: str) -> ChainResult:
        self.ok = False
        self.first_bad_event = event.public_id if event is not None else ""
        self.problem = problem
        return self


def _prune_anchor(chain_key: int, first_seq: int) -> str | None:
    """The prev_hash the first remaining event must carry, from the audit.pruned that cut it."""
    org_filter = {"organization_id": chain_key} if chain_key else {"organization__isnull": True}
    pruned = (
        AuditEvent.objects.filter(
            **org_filter, chain_key=chain_key, action="audit.pruned", details__next_seq=first_seq
        )
        .order_by("-seq")
        .first()
    )
    return pruned.details.get("next_prev_hash") if pruned else None


def verify_chain(chain_key: int, *, batch_size: int = 2000) -> ChainResult:
    """Verify one chain up to its head as it was when the walk started."""
    result = ChainResult(chain_key=chain_key)
    # Read before the head: any checkpoint committed by now is at or below the head read next.
    signed = list(ChainCheckpoint.objects.filter(chain_key=chain_key).order_by("seq"))
    for cp in signed:
        if not checkpoints.is_authentic(cp):
            return result.fail(
                None,
                f"the checkpoint for seq {cp.seq} has an invalid signature "
                "(forged or altered, or AUDIT_CHECKPOINT_KEY changed)",
            )
    head = AuditChainHead.objects.filter(chain_key=chain_key).first()
    if head is None:
        return _check_checkpoints(result, signed, last=None)
    expected_at = {cp.seq: cp for cp in signed}
    last: AuditEvent | None = None
    while True:
        qs = AuditEvent.objects.filter(chain_key=chain_key, seq__lte=head.last_seq)
        if last is not None:
            qs = qs.filter(seq__gt=last.seq)
        batch = list(qs.order_by("seq")[:batch_size])
        if not batch:
            break
        for event in batch:
            if last is None:
                expected_prev = "" if event.seq == 1 else _prune_anchor(chain_key, event.seq)
                if expected_prev is None:
                    return result.fail(
                        event, f"events before seq {event.seq} are missing (and were not pruned)"
                    )
            else:
                if event.seq != last.seq + 1:
                    return result.fail(
                        event, f"events {last.seq + 1}–{event.seq - 1} are missing before it"
                    )
                expected_prev = last.hash
            if event.prev_hash != expected_prev:
                return result.fail(event, "it does not link to the previous event's hash")
            if event_hash(event) != event.hash:
                return result.fail(event, "its content no longer matches its hash")
            signed_cp = expected_at.get(event.seq)
            if signed_cp is not None and signed_cp.head_hash != event.hash:
                return result.fail(
                    event,
                    f"its hash differs from the one signed for seq {event.seq} at "
                    f"{signed_cp.created_at:%Y-%m-%d %H:%M:%S} UTC: the chain was rewritten from here",
                )
            result.count += 1
            last = event
        newest = batch[-1]
        result.last_event, result.last_event_at = newest.public_id, newest.occurred_at
        result.last_seq, result.last_hash = newest.seq, newest.hash
    if head.last_seq and (last is None or last.seq != head.last_seq or last.hash != head.last_hash):
        return result.fail(
            None,
            f"the chain head records seq {head.last_seq} but the events end at "
            f"{last.seq if last else 'nothing'}: the newest events were removed or altered",
        )
    return _check_checkpoints(result, signed, last=last)


def _check_checkpoints(result, signed, *, last) -> ChainResult:
    """The chain still reaches every signed checkpoint."""
    end = last.seq if last is not None else 0
    beyond = [cp for cp in signed if cp.seq > end]
    if beyond:
        newest = beyond[-1]
        ends = f"now ends at seq {end} ({last.public_id})" if last else "now has no events"
        return result.fail(
            None,
            f"events {end + 1}–{newest.seq} are missing: the chain was signed at seq "
            f"{newest.seq} (hash {newest.head_hash[:12]}…) on "
            f"{newest.created_at:%Y-%m-%d %H:%M:%S} UTC but {ends}; the newest events were "
            "removed and the chain head rewound",
        )
    return result


def verify_and_record(chain_key: int) -> ChainResult:
    """Verify and keep the outcome for the audit page ("chain verified up to …"); a chain
    that verified gets a signed checkpoint at the seq it was verified up to."""
    result = verify_chain(chain_key)
    if result.ok and result.last_seq:
        checkpoints.write_checkpoint(chain_key, result.last_seq, result.last_hash)
    ChainVerification.objects.update_or_create(
        chain_key=chain_key,
        defaults={
            "verified_at": timezone.now(),
            "verified_count": result.count,
            "last_event_public_id": result.last_event,
            "ok": result.ok,
            "first_bad_event_public_id": result.first_bad_event,
        },
    )
    transaction.on_commit(lambda: forget_page_choices(chain_key))
    return result


def chain_keys() -> list[int]:
    return list(AuditChainHead.objects.order_by("chain_key").values_list("chain_key", flat=True))
