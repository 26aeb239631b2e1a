"""Names that are not local files but Hugging Face Hub ids: told apart, and read fast when the Hub is unreachable.

Without a network, ``datasets.load_dataset`` and ``from_pretrained`` retry every file they look for with a
back-off (about 25 s and a warning line per attempt) before they fail. moemix checks once whether the Hub's host
can be reached and, when it cannot, runs the libraries in their own offline mode (what ``HF_HUB_OFFLINE=1``
does): what is in the local cache loads at once, and what is not fails at once, in one line.
"""

from __future__ import annotations

import contextlib
import functools
import os
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

from moemix.errors import ConfigError

_PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy", "HTTP_PROXY", "http_proxy")


def is_hub_id(name: str) -> bool:
    """Whether ``name`` has the form of a Hub repository id (``name`` or ``owner/name``) rather than a path."""
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    try:
        validate_repo_id(name)
    except HFValidationError:
        return False
    return True


def check_local_or_hub(name: str, what: str, place: str) -> None:
    """Stop with one line when ``name`` is neither an existing path nor something the Hub could hold.

    A missing local folder otherwise reaches the Hub client, which reports it as a malformed repository id.

    Args:
        name: A model or tokenizer folder, or a Hub id.
        what: What it should be, for the message (``model folder``).
        place: Where it was given (``run.yaml:7: model.name_or_path``, ``--model``).

    Raises:
        ConfigError: For a name that is no existing path and no Hub id.
    """
    if Path(name).expanduser().exists() or is_hub_id(name):
        return
    raise ConfigError(f"{place}: {name}: {what} not found (relative paths start at the working directory)")


@functools.cache
def hub_unreachable() -> str | None:
    """Why the Hub cannot be reached (checked once per process, a TCP connection with a 3 s timeout), or None.

    None too when a proxy is configured: the route is then the proxy's to judge, and the libraries try it.
    """
    if any(os.environ.get(name) for name in _PROXY_VARIABLES):
        return None
    from huggingface_hub import constants

    url = urlparse(constants.ENDPOINT)
    host, port = url.hostname or "huggingface.co", url.port or (443 if url.scheme == "https" else 80)
    try:
        socket.create_connection((host, port), timeout=3).close()
    except OSError as err:
        return f"the Hugging Face Hub ({host}) cannot be reached: {err.strerror or err}"
    return None


@contextlib.contextmanager
def offline_unless_reachable() -> Iterator[str | None]:
    """Run the block with the Hub libraries offline when the Hub cannot be reached.

    Yields:
        Why the Hub cannot be reached, or None (online, or already offline by the user's ``HF_HUB_OFFLINE``).
    """
    from huggingface_hub import constants

    reason = None if constants.HF_HUB_OFFLINE else hub_unreachable()
    if reason is None:
        yield None
        return
    # HF_HUB_OFFLINE is read into these module constants when the libraries are imported, so setting the
    # environment variable now would change nothing: the constants are what their download code consults.
    modules = [constants]
    if "datasets" in sys.modules:
        import datasets.config

        modules.append(datasets.config)
    saved = [module.HF_HUB_OFFLINE for module in modules]
    for module in modules:
        module.HF_HUB_OFFLINE = True
    try:
        yield reason
    finally:
        for module, value in zip(modules, saved):
            module.HF_HUB_OFFLINE = value
