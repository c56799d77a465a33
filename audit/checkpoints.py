"""Signed chain checkpoints: evidence, outside the events table, of how far each chain reached.

A checkpoint is (chain, seq, head hash, time) with an HMAC-SHA256 under AUDIT_CHECKPOINT_KEY
(SECRET_KEY if unset). The database holds no key, so someone who can rewrite the database
(delete the newest events and rewind the chain head consistently) cannot write a checkpoint
for the rewound chain, and the application's role cannot delete the ones already written
(audit/dbsecurity.py). verify_chain() requires the chain to still reach every checkpoint.

Keep AUDIT_CHECKPOINT_KEY stable: checkpoints signed with another key fail verification.
"""

from __future__ import annotations

import datetime as dt
import hmac
import logging

from django.conf import settings
from django.utils import timezone
from django.utils.crypto import salted_hmac

from audit.models import ChainCheckpoint

log = logging.getLogger("audit.checkpoint")

_SALT = "signalsmith.audit.ChainCheckpoint"


def checkpoint_mac(chain_key: int, seq: int, head_hash: str, created_at: dt.datetime) -> str:
    message = f"{chain_key}:{seq}:{head_hash}:{created_at.astimezone(dt.UTC).isoformat()}"
    secret = settings.AUDIT_CHECKPOINT_KEY or settings.SECRET_KEY
    return salted_hmac(_SALT, message, secret=secret, algorithm="sha256").hexdigest()


def signed(chain_key: int, seq: int, head_hash: str) -> ChainCheckpoint:
    created_at = timezone.now()
    return ChainCheckpoint(
        chain_key=chain_key,
        seq=seq,
        head_hash=head_hash,
        created_at=created_at,
        mac=checkpoint_mac(chain_key, seq, head_hash, created_at),
    )


def is_authentic(cp: ChainCheckpoint) -> bool:
    expected = checkpoint_mac(cp.chain_key, cp.seq, cp.head_hash, cp.created_at)
    return hmac.compare_digest(expected, cp.mac)


def write_checkpoint(chain_key: int, seq: int, head_hash: str) -> None:
    """Record that the chain reached (seq, head_hash); a no-op if that seq is signed already.
    Also logged, so a copy leaves the database (for a log sink that keeps it)."""
    cp = signed(chain_key, seq, head_hash)
    ChainCheckpoint.objects.bulk_create([cp], ignore_conflicts=True)
    log.info(
        "audit checkpoint chain=%s seq=%s head=%s at=%s mac=%s",
        chain_key,
        seq,
        head_hash,
        cp.created_at.isoformat(),
        cp.mac,
    )


def due(seq: int) -> bool:
    """record() signs every AUDIT_CHECKPOINT_EVERY-th event (0: only the hourly verification)."""
    every = settings.AUDIT_CHECKPOINT_EVERY
    return every > 0 and seq % every == 0
