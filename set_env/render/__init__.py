"""A query drawn for people: ``render_ansi`` in words, ``render_rgb`` as a picture.

The picture functions need Pillow: ``card_image`` lives in ``set_env.render.cards`` (the card
painter), ``render_rgb`` and ``write_png`` in ``set_env.render.picture`` (the layout). Their
module is imported when one of them is first asked for, so ``import set_env`` needs numpy and
gymnasium alone, and without Pillow the first picture raises
``gymnasium.error.DependencyNotInstalled`` with the command that installs it.
"""

import importlib

from gymnasium.error import DependencyNotInstalled

from set_env.render.ansi import render_ansi

_PICTURE_MODULES = {
    "card_image": "set_env.render.cards",
    "render_rgb": "set_env.render.picture",
    "write_png": "set_env.render.picture",
}


def __getattr__(name: str):
    if name not in _PICTURE_MODULES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    try:
        # import_module, not "from set_env.render import picture": it asks sys.modules, so a
        # failed import of Pillow is retried rather than read from the package's attributes.
        module = importlib.import_module(_PICTURE_MODULES[name])
    except ModuleNotFoundError as error:
        if error.name != "PIL":
            raise
        raise DependencyNotInstalled(
            "Pillow is not installed: set_env draws its rgb_array pictures with it. "
            "Run `pip install pillow`."
        ) from error
    return getattr(module, name)


__all__ = ["card_image", "render_ansi", "render_rgb", "write_png"]
