"""Read the parts of PhysioNet's WFDB format the tests need: format-212 signals and beat labels.

Test-only (the pipeline never reads files of this kind): enough of the format for the MIT-BIH
records in ``tests/data/mitdb``, following the WFDB Programmer's Guide (signal format 212; MIT
annotation file format). Cross-checked once against ``wfdb.rdrecord`` / ``wfdb.rdann``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

__all__ = ["BEAT_CODES", "Record", "read_beats", "read_record"]

# Annotation codes that label a beat (QRS), from the WFDB library's ecgcodes.h / isqrs():
# N L R a V F J A S E j / Q B e n r f
# (NORMAL..UNKNOWN, BBB, LEARN, AESC, SVESC, NAPC, PFUS, RONT).
BEAT_CODES = frozenset({*range(1, 14), 25, 30, 34, 35, 37, 38, 41})

_SKIP, _NUM, _SUB, _CHN, _AUX = 59, 60, 61, 62, 63


@dataclass(frozen=True, slots=True)
class Record:
    """One record: physical signals (one column per lead), their names and sampling rate."""

    fs_hz: float
    names: tuple[str, ...]
    signals: npt.NDArray[np.float64]  # shape (n_samples, n_leads), physical units (mV)


def read_record(hea: Path) -> Record:
    """Read a multi-lead format-212 record from its header file."""
    lines = [ln for ln in hea.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    head = lines[0].split()
    n_sig, fs, n_samples = int(head[1]), float(head[2]), int(head[3])
    specs = [ln.split() for ln in lines[1 : 1 + n_sig]]
    if any(s[1] != "212" for s in specs) or len({s[0] for s in specs}) != 1:
        raise ValueError("only format 212 in a single .dat file is supported")
    raw = np.fromfile(hea.parent / specs[0][0], dtype=np.uint8)
    triplets = raw[: raw.size // 3 * 3].reshape(-1, 3).astype(np.int32)
    # Two 12-bit two's-complement samples in three bytes: low byte, shared nibbles, low byte.
    first = triplets[:, 0] | ((triplets[:, 1] & 0x0F) << 8)
    second = triplets[:, 2] | ((triplets[:, 1] & 0xF0) << 4)
    flat = np.empty(first.size * 2, dtype=np.int32)
    flat[0::2], flat[1::2] = first, second
    flat[flat >= 2048] -= 4096
    adu = flat[: n_samples * n_sig].reshape(n_samples, n_sig)
    gains = np.array([float(s[2].split("(")[0].split("/")[0]) for s in specs])
    baselines = np.array([_baseline(s) for s in specs])
    return Record(
        fs_hz=fs,
        names=tuple(s[8] if len(s) > 8 else f"sig{i}" for i, s in enumerate(specs)),
        signals=(adu - baselines) / gains,
    )


def _baseline(spec: list[str]) -> float:
    # "gain(baseline)/units": the baseline defaults to the ADC zero (field 5).
    if "(" in spec[2]:
        return float(spec[2].split("(")[1].split(")")[0])
    return float(spec[4]) if len(spec) > 4 else 0.0


def read_beats(atr: Path) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Return (sample, code) of every beat annotation, dropping rhythm, noise and other labels."""
    words = np.fromfile(atr, dtype="<u2")
    samples: list[int] = []
    codes: list[int] = []
    t, i = 0, 0
    while i < words.size:
        w = int(words[i])
        code, value = w >> 10, w & 0x3FF
        i += 1
        if code == 0 and value == 0:
            break
        if code == _SKIP:  # a 32-bit interval follows, high 16 bits first
            t += (int(words[i]) << 16 | int(words[i + 1])) - (1 << 32) * (words[i] >= 0x8000)
            i += 2
        elif code == _AUX:  # value bytes of text follow, padded to a whole word
            i += (value + 1) // 2
        elif code in (_NUM, _SUB, _CHN):
            pass
        else:
            t += value
            samples.append(t)
            codes.append(code)
    s = np.asarray(samples, dtype=np.int64)
    c = np.asarray(codes, dtype=np.int64)
    keep = np.isin(c, list(BEAT_CODES))
    return s[keep], c[keep]
