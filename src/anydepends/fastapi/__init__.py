"""anydepends inside FastAPI: concurrent dependency resolution, one line to switch.

.. code-block:: python

    container = Container()
    app = FastAPI(lifespan=lifespan(container))
    app.router.route_class = ConcurrentRoute(container)

FastAPI keeps parsing, validating and documenting requests; anydepends resolves each
endpoint's dependency graph. Needs the ``fastapi`` extra:
``pip install "anydepends[fastapi]"``.
"""

from __future__ import annotations

try:
    import fastapi as _fastapi
except ImportError as exc:  # pragma: no cover - exercised in a subprocess test
    if exc.name not in ("fastapi", "starlette", "pydantic"):
        raise
    msg = (
        "anydepends.fastapi needs FastAPI, which is not installed:"
        ' pip install "anydepends[fastapi]"'
    )
    raise ImportError(msg, name=exc.name) from exc
del _fastapi

from ._lifespan import lifespan  # noqa: E402
from ._route import ConcurrentRoute  # noqa: E402

__all__ = ["ConcurrentRoute", "lifespan"]
