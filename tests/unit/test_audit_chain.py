"""The hash chain as pure functions: no database, every expectation computed by hand."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from serve_app.audit.chain import (
    GENESIS_HASH,
    Anchor,
    AuditEntry,
    ChainedEntry,
    ChainVerifier,
    canonical_entry,
    chain,
    entry_hash,
    link,
    utc_iso,
    verify,
)
from serve_app.canonical import canonical_json, normalized

T0 = datetime(2026, 11, 25, 10, 0, 0, 123456, tzinfo=UTC)


def entry(seq: int, **changes: object) -> AuditEntry:
    fields: dict[str, object] = {
        "seq": seq,
        "timestamp": T0 + timedelta(seconds=seq),
        "actor": "dr-who",
        "role": "clinician",
        "action": "inference",
        "object_type": "inference",
        "object_id": f"inf-{seq}",
        "model_version": "chest:1",
        "details": {"prediction": "normal", "confidence": 0.25 * seq},
    }
    return AuditEntry(**{**fields, **changes})  # type: ignore[arg-type]


def chained(n: int) -> list[ChainedEntry]:
    return chain(entry(seq) for seq in range(1, n + 1))


def altered(linked: ChainedEntry, **changes: object) -> ChainedEntry:
    """``linked`` with changed fields but its old hashes, as a tampered row reads."""
    return dataclasses.replace(linked, **changes)  # type: ignore[arg-type]


def anchors_of(linked: list[ChainedEntry], *seqs: int) -> list[Anchor]:
    return [Anchor(seq, linked[seq - 1].entry_hash) for seq in seqs]


# --- canonical JSON ---------------------------------------------------------------------


def test_canonical_json_sorts_keys_drops_whitespace_and_keeps_unicode() -> None:
    assert canonical_json({"b": [1, 2.5], "a": {"d": None, "c": True}, "n": "Zoë"}) == (
        '{"a":{"c":true,"d":null},"b":[1,2.5],"n":"Zoë"}'
    )


@pytest.mark.parametrize("number", [float("nan"), float("inf"), float("-inf")])
def test_canonical_json_refuses_non_finite_numbers(number: float) -> None:
    with pytest.raises(ValueError):
        canonical_json({"x": number})


def test_canonical_json_refuses_non_json_values() -> None:
    with pytest.raises(TypeError):
        canonical_json({"when": T0})


def test_normalized_is_the_value_as_json_reads_it_back() -> None:
    assert normalized({"t": (1, 2), "n": {3: "x"}}) == {"t": [1, 2], "n": {"3": "x"}}


# --- timestamps -------------------------------------------------------------------------


def test_utc_iso_has_microseconds_and_z() -> None:
    assert utc_iso(T0) == "2026-11-25T10:00:00.123456Z"
    assert utc_iso(T0.replace(microsecond=0)) == "2026-11-25T10:00:00.000000Z"


def test_utc_iso_converts_other_zones_to_utc() -> None:
    plus_two = timezone(timedelta(hours=2))
    assert utc_iso(datetime(2026, 11, 25, 12, 0, tzinfo=plus_two)) == (
        "2026-11-25T10:00:00.000000Z"
    )


def test_naive_datetimes_are_refused_not_guessed() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        utc_iso(datetime(2026, 11, 25, 10, 0))
    with pytest.raises(ValueError, match="timezone-aware"):
        entry_hash(GENESIS_HASH, entry(1, timestamp=datetime(2026, 11, 25)))


# --- hashing and linking ----------------------------------------------------------------


def test_canonical_entry_holds_the_hashed_fields_only() -> None:
    one = link(GENESIS_HASH, entry(1))
    assert json.loads(canonical_entry(one)) == {
        "seq": 1,
        "timestamp": "2026-11-25T10:00:01.123456Z",
        "actor": "dr-who",
        "role": "clinician",
        "action": "inference",
        "object_type": "inference",
        "object_id": "inf-1",
        "model_version": "chest:1",
        "details": {"prediction": "normal", "confidence": 0.25},
    }


def test_entry_hash_is_sha256_of_raw_prev_hash_then_canonical_entry() -> None:
    prev = hashlib.sha256(b"anything").hexdigest()
    expected = hashlib.sha256(bytes.fromhex(prev) + canonical_entry(entry(2)).encode())
    assert entry_hash(prev, entry(2)) == expected.hexdigest()


def test_entry_hash_depends_on_every_hashed_field_and_on_prev_hash() -> None:
    base = entry_hash(GENESIS_HASH, entry(1))
    changes: list[dict[str, object]] = [
        {"seq": 2},
        {"timestamp": T0 + timedelta(microseconds=1)},
        {"actor": "someone-else"},
        {"role": None},
        {"action": "model.promote"},
        {"object_type": "model"},
        {"object_id": None},
        {"model_version": "chest:2"},
        {"details": {}},
    ]
    hashes = {
        entry_hash(GENESIS_HASH, dataclasses.replace(entry(1), **change))  # type: ignore[arg-type]
        for change in changes
    }
    assert base not in hashes
    assert len(hashes) == len(changes)
    assert entry_hash("f" * 64, entry(1)) != base


def test_link_keeps_the_fields_and_adds_both_hashes() -> None:
    linked = link("ab" * 32, entry(5))
    assert linked.prev_hash == "ab" * 32
    assert linked.entry_hash == entry_hash("ab" * 32, entry(5))
    kept = {f.name: getattr(linked, f.name) for f in dataclasses.fields(AuditEntry)}
    assert kept == dataclasses.asdict(entry(5))


def test_chain_links_each_entry_to_the_one_before() -> None:
    linked = chained(3)
    assert [e.seq for e in linked] == [1, 2, 3]
    assert linked[0].prev_hash == GENESIS_HASH
    assert linked[1].prev_hash == linked[0].entry_hash
    assert linked[2].prev_hash == linked[1].entry_hash


def test_chain_continues_after_a_given_head() -> None:
    whole = chained(4)
    tail = chain([entry(3), entry(4)], prev_hash=whole[1].entry_hash)
    assert tail == whole[2:]


# --- verify without anchors -------------------------------------------------------------


def test_empty_chain_is_valid() -> None:
    result = verify([])
    assert result.valid
    assert (result.entries, result.head_hash, result.first_bad_seq) == (0, GENESIS_HASH, None)


def test_intact_chain_is_valid() -> None:
    linked = chained(5)
    result = verify(linked)
    assert result.valid
    assert result.entries == 5
    assert result.head_hash == linked[-1].entry_hash
    assert result.first_bad_seq is None and result.reason is None
    assert result.checkpoint_seq is None


def test_altered_content_names_its_seq() -> None:
    linked = chained(5)
    linked[2] = altered(linked[2], details={"prediction": "pneumonia", "confidence": 0.75})
    result = verify(linked)
    assert not result.valid
    assert result.first_bad_seq == 3
    assert "altered" in (result.reason or "")


@pytest.mark.parametrize("missing", [1, 4])
def test_missing_seq_is_named(missing: int) -> None:
    linked = chained(5)
    del linked[missing - 1]
    result = verify(linked)
    assert (result.valid, result.first_bad_seq) == (False, missing)
    assert f"seq {missing} is missing" in (result.reason or "")


def test_reordered_entries_are_caught_at_the_first_out_of_place_seq() -> None:
    linked = chained(5)
    linked[1], linked[3] = linked[3], linked[1]
    assert verify(linked).first_bad_seq == 2


def test_repeated_seq_is_out_of_order() -> None:
    linked = chained(3)
    result = verify([*linked, linked[2]])
    assert result.first_bad_seq == 3
    assert "out of order" in (result.reason or "")


def test_broken_prev_link_is_caught_even_when_the_row_hashes_consistently() -> None:
    linked = chained(4)
    # Re-link seq 3 after a made-up head: its own hash is right, its link is not.
    linked[2] = link("cd" * 32, entry(3))
    result = verify(linked)
    assert result.first_bad_seq == 3
    assert "link" in (result.reason or "")


def test_verifier_fed_in_pages_equals_one_pass() -> None:
    linked = chained(7)
    linked[5] = altered(linked[5], actor="mallory")
    verifier = ChainVerifier()
    for start in range(0, 7, 3):
        verifier.feed(linked[start : start + 3])
    assert verifier.result() == verify(linked)
    assert verifier.result().first_bad_seq == 6


def test_entries_after_the_first_bad_one_are_still_counted() -> None:
    linked = chained(5)
    linked[0] = altered(linked[0], actor="mallory")
    result = verify(linked)
    assert (result.first_bad_seq, result.entries, result.head_hash) == (
        1,
        5,
        linked[-1].entry_hash,
    )


# --- verify against anchors -------------------------------------------------------------


def rehashed_from(linked: list[ChainedEntry], seq: int) -> list[ChainedEntry]:
    """Rows ``seq`` on rewritten and re-hashed: a chain that is consistent on its own."""
    rewritten = [entry(e.seq, actor="mallory") for e in linked[seq - 1 :]]
    prev = linked[seq - 2].entry_hash if seq > 1 else GENESIS_HASH
    return linked[: seq - 1] + chain(rewritten, prev_hash=prev)


@pytest.mark.parametrize("order", [(2, 6), (6, 2)])
def test_chain_matching_its_anchors_is_valid(order: tuple[int, int]) -> None:
    linked = chained(6)
    result = verify(linked, anchors_of(linked, *order))
    assert result.valid
    assert result.checkpoint_seq == 6


def test_rehashed_chain_passes_without_anchors() -> None:
    assert verify(rehashed_from(chained(8), 4)).valid


def test_rehashed_chain_is_caught_by_an_anchor_past_the_rewrite() -> None:
    linked = chained(8)
    result = verify(rehashed_from(linked, 4), anchors_of(linked, 2, 6))
    assert not result.valid
    # The anchor at 2 still matched, so everything after it is in doubt.
    assert result.first_bad_seq == 3
    assert result.checkpoint_seq == 2
    assert "signed checkpoint" in (result.reason or "")


def test_rehashed_chain_without_an_earlier_anchor_is_bad_from_seq_1() -> None:
    linked = chained(8)
    result = verify(rehashed_from(linked, 4), anchors_of(linked, 7))
    assert (result.first_bad_seq, result.checkpoint_seq) == (1, None)


def test_rewrite_after_the_last_anchor_goes_unseen() -> None:
    linked = chained(8)
    # Documents the limit: rows signed by no checkpoint yet are only self-consistent.
    assert verify(rehashed_from(linked, 7), anchors_of(linked, 6)).valid


def test_anchor_with_a_wrong_hash_fails_at_its_seq() -> None:
    linked = chained(4)
    result = verify(linked, [Anchor(1, linked[0].entry_hash), Anchor(3, "0" * 63 + "1")])
    assert (result.first_bad_seq, result.checkpoint_seq) == (2, 1)


def test_truncated_tail_is_caught_by_an_anchor_beyond_the_end() -> None:
    linked = chained(8)
    result = verify(linked[:5], anchors_of(linked, 3, 7))
    assert not result.valid
    assert result.first_bad_seq == 6
    assert result.checkpoint_seq == 3
    assert "cut off" in (result.reason or "")


def test_fully_truncated_chain_is_caught_by_an_anchor() -> None:
    linked = chained(3)
    result = verify([], anchors_of(linked, 2))
    assert (result.valid, result.first_bad_seq, result.entries) == (False, 1, 0)


def test_content_alteration_before_an_anchor_is_named_by_content_not_anchor() -> None:
    linked = chained(6)
    anchors = anchors_of(linked, 2, 5)
    linked[3] = altered(linked[3], object_id="inf-x")
    result = verify(linked, anchors)
    assert result.first_bad_seq == 4
    assert "altered" in (result.reason or "")
