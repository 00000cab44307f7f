"""Faults while 120,000 readings are published; afterwards the store holds exactly that set.

Each test runs its own Mosquitto (persistence on) and PostgreSQL (fsync on) on fixed ports,
``wardwatch run`` as a child process, and two publisher processes at QoS 1 that wait for every
PUBACK and republish what was not acknowledged. The fault strikes while they publish; the test then
compares every stored (device, metric, ts) and value with the published set. The longer variant,
a million readings through every fault in one run: ``python -m bench.faults``.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Sequence

import pytest

from tests.faults import harness
from tests.faults.workload import Workload

log = logging.getLogger(__name__)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

# 40 devices × 75 messages × 20 samples × 2 metrics = 120,000 readings in 3,000 messages,
# published over about 15 s so that every fault strikes mid-stream.
DEVICES, MESSAGES_PER_DEVICE, SAMPLES_PER_MESSAGE = 40, 75, 20
RATE = 200.0  # messages/s over both publishers

CASES: dict[str, Sequence[harness.Fault]] = {
    "kill -9 ingest twice": (harness.kill_ingest_at(0.3), harness.kill_ingest_at(0.6)),
    "restart broker": (harness.restart_broker_at(0.5),),
    "restart PostgreSQL": (harness.restart_postgresql_at(0.5),),
}


@pytest.mark.parametrize("faults", CASES.values(), ids=CASES.keys())
def test_every_published_reading_is_stored_exactly_once(faults: Sequence[harness.Fault]) -> None:
    workload = Workload(
        run_id=uuid.uuid4().hex[:8],
        devices=DEVICES,
        messages_per_device=MESSAGES_PER_DEVICE,
        samples_per_message=SAMPLES_PER_MESSAGE,
        t0_s=int(time.time()) - 7 * 86_400,
    )
    assert workload.readings >= 100_000
    with harness.workdir("wardwatch-faults-") as workdir:
        outcome = harness.run(workdir, workload, faults, publishers=2, rate=RATE)
        report = outcome.report()  # inside: it quotes the ingest log, removed with the folder
    assert outcome.verdict.ok, "stored set differs from the published set:\n" + report
    assert not outcome.quarantined, "readings were quarantined instead of stored:\n" + report
    assert outcome.publisher_exits == [0, 0], "a publisher did not get every PUBACK:\n" + report
    assert all(p and p["no_subscribers"] == 0 for p in outcome.publishers), (
        "the broker acknowledged messages it had no session to queue for:\n" + report
    )
    assert not outcome.ingest_died, "ingest died without being killed:\n" + report
    assert outcome.ingest_exit == 0, "ingest did not stop cleanly on SIGTERM:\n" + report
    assert all(s.recovered_s is not None for s in outcome.faults), (
        "a reading published after a fault was not stored in time:\n" + report
    )
    log.info("%s", report)  # the figures: pytest -o log_cli=true -o log_cli_level=INFO
