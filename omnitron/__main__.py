"""`python -m omnitron` runs the CLI."""

from omnitron.cli import main

raise SystemExit(main())
