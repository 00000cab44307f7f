"""Simulated and recorded wearable streams, so that the whole chain can be tested without patients.

``physiology`` (seeded patient models) and ``timeline`` (event time kept behind the wall clock)
are pure; ``ward`` picks who the patients are; ``stream`` paces their samples into messages;
``publish`` is the one paho adapter; ``recording`` records and replays. Guide: docs/simulator.md.
"""

from simulator.publish import SimulationStats, simulate
from simulator.recording import iter_recording, record, replay
from simulator.ward import SimPatient, make_ward

__all__ = [
    "SimPatient",
    "SimulationStats",
    "iter_recording",
    "make_ward",
    "record",
    "replay",
    "simulate",
]
