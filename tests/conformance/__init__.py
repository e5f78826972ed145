"""Differential conformance suite: the same dependables through FastAPI and anydepends.

``harness.py`` runs a case builder (``build(markers) -> Case``) through FastAPI 0.165
(``TestClient``, one ``GET /`` route, values as query parameters, overrides in
``app.dependency_overrides``) and through anydepends (``container.call(root,
**values)``, overrides through ``container.overrides`` and ``container.override``),
and compares results, exceptions and the logs the dependables write (calls, setup
and teardown, what each ``yield`` dependency saw). ``Container(sequential=True)``
must match FastAPI exactly; the concurrent container must give the same results
and calls and keep the partial order of docs/semantics.md §6. Documented deviations
are asserted on both sides in ``test_deviations.py``.

Run: ``python -m pytest tests/conformance``. ``test_random_graphs.py`` is
deterministic by default; ``ANYDEPENDS_CONFORMANCE_RANDOM=1`` and
``ANYDEPENDS_CONFORMANCE_EXAMPLES=2000`` explore further.
"""
