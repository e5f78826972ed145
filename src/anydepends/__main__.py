"""``python -m anydepends explain|trace|bench MODULE:FUNC`` (see ``_cli``)."""

from __future__ import annotations

from ._cli import main

if __name__ == "__main__":
    raise SystemExit(main())
