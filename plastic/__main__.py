"""``python -m plastic``: the command-line entry point (see ``plastic.zoo.cli``)."""

from plastic.zoo.cli import main

raise SystemExit(main())
