"""Console logging of the ``moemix`` command: the libraries' info chatter off, warnings and moemix's own on."""

from __future__ import annotations

import logging


def quiet_libraries() -> None:
    """Keep the libraries' info chatter off the console; warnings still show."""
    import transformers

    transformers.logging.set_verbosity_warning()
    logging.getLogger("datasets").setLevel(logging.WARNING)


def verbose_logging() -> None:
    """Show moemix's own info lines too (``--verbose``: every split's counts and problems); the libraries
    stay as :func:`quiet_libraries` leaves them."""
    logger = logging.getLogger("moemix")
    logger.setLevel(logging.INFO)
    if not logger.handlers:
        logger.addHandler(logging.StreamHandler())
