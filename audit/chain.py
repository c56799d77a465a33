"""Tamper evidence: walk one hash chain in seq order, in batches (constant memory).

Each event's hash covers its content and the previous event's hash, and the chain head stores
the last seq and hash. A chain verifies when seqs are contiguous, every prev_hash is the
previous event's hash, every hash matches the content, and the last event is the head.

After retention pruning the chain starts mid-way: the first remaining event must then be
exactly the one the `audit.pruned` event (itself in the chain, so covered by the hashes)
names as `next_seq`, with `next_prev_hash` as its prev_hash.

What this does not protect against: someone with write access to the database who rewrites
a whole suffix of a chain and its head consistently. The ChainVerification rows and the
archive hashes recorded in `audit.pruned` are the external checkpoints for that.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from audit.models import AuditChainHead, AuditEvent, ChainVerification
from audit.selectors import forget_page_choices
from audit.services import event_hash


@dataclass
class ChainResult:
    chain_key: int
    count: int = 0
    last_event: str = ""
    last_event_at: dt.datetime | None = None
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
    head = AuditChainHead.objects.filter(chain_key=chain_key).first()
    if head is None:
        return result
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
            result.count += 1
            last = event
        result.last_event, result.last_event_at = last.public_id, last.occurred_at
    if head.last_seq and (last is None or last.seq != head.last_seq or last.hash != head.last_hash):
        return result.fail(
            None,
            f"the chain head records seq {head.last_seq} but the events end at "
            f"{last.seq if last else 'nothing'}: the newest events were removed or altered",
        )
    return result


def verify_and_record(chain_key: int) -> ChainResult:
    """Verify and keep the outcome for the audit page ("chain verified up to …")."""
    result = verify_chain(chain_key)
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
