"""A query drawn for people: ``render_ansi`` in words, ``render_rgb`` as a picture.

The picture functions (``render_rgb``, ``card_image``, ``write_png``) live in
``set_env.render.image``, which needs Pillow. It is imported when one of them is first asked
for, so ``import set_env`` needs numpy and gymnasium alone, and without Pillow the first
picture raises ``gymnasium.error.DependencyNotInstalled`` with the command that installs it.
"""

import importlib

from set_env.render.ansi import render_ansi

_PICTURE_FUNCTIONS = ("card_image", "render_rgb", "write_png")


def __getattr__(name: str):
    if name in _PICTURE_FUNCTIONS:
        # import_module, not "from set_env.render import image": it asks sys.modules, so a
        # failed import of Pillow is retried rather than read from the package's attributes.
        return getattr(importlib.import_module("set_env.render.image"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["card_image", "render_ansi", "render_rgb", "write_png"]
