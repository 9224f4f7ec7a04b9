"""Assessment and request ids: random UUIDs and unique request ids, also across forks."""

from __future__ import annotations

import os
import re

from credit_assessment.identifiers import new_assessment_id, new_request_id


def test_assessment_ids_are_random_version_4_uuids_and_never_repeat() -> None:
    ids = [new_assessment_id() for _ in range(5_000)]  # crosses many buffer refills
    assert len(set(ids)) == len(ids)
    assert {i.version for i in ids} == {4}
    assert {i.variant for i in ids} == {"specified in RFC 4122"}


def test_request_ids_are_unique_and_fit_the_accepted_request_id_form() -> None:
    ids = [new_request_id() for _ in range(5_000)]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"[A-Za-z0-9._-]{1,64}", i) for i in ids)


def test_a_forked_child_never_repeats_its_parents_ids() -> None:
    new_assessment_id()  # the parent has a buffer of randomness and a counter under way
    new_request_id()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child reports its next ids and leaves at once
        try:
            os.write(write_end, f"{new_assessment_id()} {new_request_id()}".encode())
        finally:
            os._exit(0)
    os.close(write_end)
    child = os.read(read_end, 200).decode().split()
    os.close(read_end)
    os.waitpid(pid, 0)
    parent = [str(new_assessment_id()), new_request_id()]
    assert child[0] != parent[0]
    assert child[1][:16] != parent[1][:16]  # another random prefix
