"""`python -m supervisor`: the mgsup command line."""

from __future__ import annotations

from .verbs import main

raise SystemExit(main())
