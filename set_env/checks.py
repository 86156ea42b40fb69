"""Argument checks shared by the package, and how their error messages quote bad input."""

from __future__ import annotations

import numpy as np

EXCERPT_LIMIT = 60  # characters of a bad value an error message quotes


def excerpt(value, limit: int = EXCERPT_LIMIT) -> str:
    """``repr(value)`` cut to about ``limit`` characters, with a note of the full length.

    Error messages quote what they reject, and that may be a megabyte of query text: the
    message must stay readable (and cheap) whatever the input.
    """
    if isinstance(value, str) and len(value) > limit:
        return f"{value[:limit]!r}... ({len(value)} characters)"
    try:
        text = repr(value)
    except ValueError:  # an int of more than sys.get_int_max_str_digits() digits
        return f"<{type(value).__name__} too long to print>"
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text)} characters of repr)"


def is_int(value) -> bool:
    """An integer, and not a bool: True is no count, id or size."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def check_choice(argument: str, value, allowed: tuple) -> None:
    """``value`` must be one of ``allowed`` (strs, perhaps None). Anything else, unhashable
    or array-like values included, is a ``ValueError`` naming ``argument`` and the choices."""
    if (value is None or isinstance(value, str)) and value in allowed:
        return
    raise ValueError(f"{argument} must be one of {allowed}, got {excerpt(value)}")


def check_no_unknown(kwargs: dict, allowed: tuple[str, ...]) -> None:
    """A constructor's ``**unknown`` catch: gymnasium passes every kwarg of ``make`` on, and
    an unknown one must name itself and the allowed ones, not be a bare ``TypeError``."""
    if kwargs:
        names = ", ".join(excerpt(name) for name in kwargs)
        raise ValueError(f"unknown keyword argument(s) {names}; allowed: {', '.join(allowed)}")


def check_reset_options(options, allowed: tuple[str, ...]) -> dict:
    """``reset(options=...)`` is None or a dict with keys from ``allowed``; returns a dict."""
    if options is None:
        return {}
    if not isinstance(options, dict):
        raise ValueError(f"options must be None or a dict, got {excerpt(options)}")
    unknown = [key for key in options if key not in allowed]
    if unknown:
        names = ", ".join(excerpt(key) for key in unknown)
        raise ValueError(f"unknown reset option(s) {names}; allowed: {allowed}")
    return options


MAX_SEED = 2**63  # torch.manual_seed and numpy's SeedSequence both take [0, 2**63)


def check_seed(seed, name: str = "seed", optional: bool = False) -> int | None:
    """A seed: an integer in [0, 2**63), not a bool (or None, if ``optional``), as a Python
    int."""
    if seed is None and optional:
        return None
    if not is_int(seed) or not 0 <= seed < MAX_SEED:
        allowed = "an integer in [0, 2**63)" + (" or None" if optional else "")
        raise ValueError(f"{name} must be {allowed}, got {excerpt(seed)}")
    return int(seed)
