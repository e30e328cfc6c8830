"""The ``edgereid`` command: :func:`main` runs it, :func:`build_parser` builds its argument parser.

The verbs live in one module per group, each owning its argparse sub-parsers next to their handlers:
:mod:`~edgereid.cli.models` (model files), :mod:`~edgereid.cli.training`, :mod:`~edgereid.cli.evaluation`,
:mod:`~edgereid.cli.bench`, :mod:`~edgereid.cli.galleries` and :mod:`~edgereid.cli.run` (demo, doctor, text
queries); :mod:`~edgereid.cli.main` puts them together.
"""

from edgereid.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
