"""Benchmarks: anydepends against hand-written code and peer DI libraries.

Run ``python -m benchmarks`` (quick, under three minutes) or ``python -m benchmarks
--full``. Every library runs in its own worker subprocess; see ``benchmarks/README.md``.
"""

from __future__ import annotations
