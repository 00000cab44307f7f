"""Payload formats besides native v1, each read into native v1 samples that the codec validates.

A format module turns one parsed record (an Open mHealth data point, a FHIR Observation) into a
``Converted``: a v1 sample and the parts that could not be converted, or raises ``DecodeError``.
Every v1 rule (timestamps, clock skew, plausible ranges, duplicates) is then applied by the codec
alone, the same for every format. Which format a payload is, the codec tells from its keys
(docs/wire-format.md, "Formats"); docs/formats.md tables what each format maps to.
"""

from ingest.formats._contract import Converted

__all__ = ["Converted"]
