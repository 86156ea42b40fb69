"""Pictures of a query and its answer, laid out with Pillow from the cards of
``set_env.render.cards``.

``render_rgb`` draws a title (the env id and the query's canonical text), the query term by
term (operator glyphs between the terms) under the label "query", below a thin line the
answer keys under the label "answer" and a key to the chosen key's frame, and below another
line a legend of the wildcard glyphs the query uses (if any); ``write_png`` saves a picture.

A picture is a tree of blocks (text, card grids, glyphs, boxes, stacks), each knowing its
size and how to paint itself, painted once onto a white canvas. Text is DejaVu Sans (the
query text in DejaVu Sans Mono) from matplotlib's bundled fonts, or Pillow's own font where
matplotlib is not installed; Pillow's basic text layout keeps the pixels the same with or
without libraqm. This module imports Pillow: ``set_env.render`` imports it on first use only.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from set_env.deck import Deck
from set_env.query import Query
from set_env.render.cards import (
    INK,
    card_picture,
    card_radius,
    card_width,
    glyph_mask,
    rounded_mask,
    wildcard_look,
)

_MAX_SIDE = 2048

# Colours, RGB.
_LABEL_INK = (105, 105, 105)
_TERM_BOXES = {"pair": (232, 232, 232), "shared": (212, 230, 250), "subset": (246, 240, 220)}
_RIGHT_FRAME = (20, 170, 60)
_WRONG_FRAME = (225, 25, 25)
_SEPARATOR = (185, 185, 185)

# Sizes in output pixels.
_QUERY_CARD = 128
_ANSWER_CARD = 88
_LEGEND_CARD = 64
_CARD_GAP = 8
_BOX_PAD = 12
_TERM_GAP = 16
_ROW_GAP = 20
_LABEL_GAP = 6  # between a label and what it labels
_LEGEND_GAP = 28  # between two legend entries
_MARGIN = 24
_FRAME_WIDTH = 6
_FRAME_PAD = _FRAME_WIDTH + 2  # room left around an answer card for its frame
_ROW_PAIRS = 4  # pair terms to a row before the query wraps
_SUBSET_COLUMNS = 9  # a subset term wraps its cards in multiples of this many columns
_ANSWER_COLUMNS = (9, 27)  # fewest and most answer cards to a row

# Text: (font file in matplotlib's fonts, size in pixels).
_TITLE_FONT = ("DejaVuSans-Bold.ttf", 30)
_QUERY_FONT = ("DejaVuSansMono.ttf", 22)
_LABEL_FONT = ("DejaVuSans.ttf", 22)
_LEGEND_FONT = ("DejaVuSans.ttf", 19)


def render_rgb(
    query: Query,
    positives: np.ndarray | None = None,
    chosen: np.ndarray | int | None = None,
    env_id: str | None = None,
) -> np.ndarray:
    """An (H, W, 3) uint8 picture: a title (``env_id``, if given, and the query's text), the
    query's cards drawn as SET cards (term by term, with the operator glyphs between terms),
    then the answer cards (positives; default query.positives) and, for a query with a
    wildcard, a legend of the wildcard glyphs. `chosen` is the agent's action: a key id
    (int) or a (n_keys,) 0/1 selection; chosen cards get a frame (green if in the answer,
    red if not), explained beside the answer's label.

    H and W are at most 2048: a picture that would be larger is scaled down. The same
    arguments always give the same pixels.
    """
    if env_id is not None and not isinstance(env_id, str):
        raise ValueError(f"env_id must be a str or None, got {type(env_id).__name__}")
    answer = _answer_mask(query, positives)
    picked = _chosen_mask(chosen, query.deck.n_keys)
    query_block = _query_section(query)
    answer_block = _answer_section(query.deck, answer, picked, query_block.width)
    title = _title(env_id)
    width = max(query_block.width, answer_block.width, *(block.width for block in title))
    blocks = [*title, _query_text(query.text, width), query_block, _separator(), answer_block]
    return _paint(_vstack([*blocks, *_legend(query, width)], _ROW_GAP, width))


def _query_section(query: Query) -> _Block:
    """The label "query" over the query's terms, flowed into rows."""
    rows = _flow(_term_units(query), _row_limit(query))
    return _labelled(_label("query"), _vstack(rows, _ROW_GAP))


def _answer_section(deck: Deck, answer: np.ndarray, picked: np.ndarray, width: int) -> _Block:
    """The answer's heading over its keys and the chosen ones, each chosen key framed; the
    rows as long as ``width`` (the query's) allows."""
    shown = np.flatnonzero(answer | picked)
    frames = [_frame_colour(answer[key], picked[key]) for key in shown]
    cards = _answer_block(deck, deck.key_to_card[shown], frames, width)
    return _labelled(_answer_heading(int(answer.sum())), cards)


def write_png(path, image: np.ndarray) -> None:
    """Save an (H, W, 3) uint8 picture as a PNG file (lossless, compressed hard)."""
    is_rgb = isinstance(image, np.ndarray) and image.ndim == 3 and image.shape[2] == 3
    if not is_rgb or image.dtype != np.uint8:
        raise ValueError(f"image must be an (H, W, 3) uint8 array, got {_describe(image)}")
    Image.fromarray(image).save(path, format="PNG", optimize=True)


def _describe(image) -> str:
    if isinstance(image, np.ndarray):
        return f"shape {image.shape} {image.dtype}"
    return type(image).__name__


# --- text ------------------------------------------------------------------------------


@lru_cache(maxsize=16)
def _font(name: str, size: int) -> ImageFont.FreeTypeFont:
    """A DejaVu font from matplotlib's bundled files, else Pillow's own (one face, so bold
    and monospace fall back to regular), with Pillow's basic layout."""
    try:
        import matplotlib
    except ImportError:
        return ImageFont.load_default(size).font_variant(layout_engine=ImageFont.Layout.BASIC)
    path = f"{matplotlib.get_data_path()}/fonts/ttf/{name}"
    return ImageFont.truetype(path, size, layout_engine=ImageFont.Layout.BASIC)


def _title(env_id: str | None) -> list[_Block]:
    """The env id in bold, or nothing without one."""
    return [_text([env_id], _font(*_TITLE_FONT), INK)] if env_id else []


def _query_text(text: str, width: int) -> _Block:
    font = _font(*_QUERY_FONT)
    return _text(_wrap(text, font, width), font, INK)


def _text_width(text: str, font: ImageFont.FreeTypeFont) -> int:
    return math.ceil(font.getlength(text))


def _wrap(text: str, font: ImageFont.FreeTypeFont, width: int) -> list[str]:
    """Greedy line breaks after an operator or a comma, so that a card text or a pair is
    never split; a piece wider than ``width`` gets a line of its own."""
    lines, line = [], ""
    for piece in re.findall(r".+?(?:,| [|^] |$)", text):
        if line and _text_width((line + piece).rstrip(), font) > width:
            lines.append(line.rstrip())
            line = ""
        line += piece
    return [*lines, line.rstrip()]


# --- layout ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Block:
    """A rectangle of the picture: its size and how to paint it with its top-left corner
    at (left, top) of an RGB canvas."""

    height: int
    width: int
    paint: Callable[[Image.Image, int, int], None]


def _paint(block: _Block) -> np.ndarray:
    """The block on a white canvas with a margin all round, fitted to ``_MAX_SIDE``."""
    size = (block.width + 2 * _MARGIN, block.height + 2 * _MARGIN)
    canvas = Image.new("RGB", size, "white")
    block.paint(canvas, _MARGIN, _MARGIN)
    return np.array(_fit(canvas))


def _text(lines: list[str], font: ImageFont.FreeTypeFont, colour) -> _Block:
    ascent, descent = font.getmetrics()
    line_height = ascent + descent

    def paint(canvas, top, left):
        draw = ImageDraw.Draw(canvas)
        for i, line in enumerate(lines):
            draw.text((left, top + i * line_height), line, fill=colour, font=font)

    width = max(_text_width(line, font) for line in lines)
    return _Block(line_height * len(lines), width, paint)


def _label(words: str) -> _Block:
    return _text([words], _font(*_LABEL_FONT), _LABEL_INK)


def _labelled(heading: _Block, block: _Block) -> _Block:
    """The block under its heading, both flush left."""
    return _vstack([heading, block], _LABEL_GAP)


def _answer_heading(size: int) -> _Block:
    """The label over the answer keys and beside it what a frame round a key means: always
    both frames, so that choosing a key leaves the picture's size alone."""
    label = f"answer: {size} key{'s' if size != 1 else ''}" if size else "answer: none"
    right = _legend_entry(_frame_icon(_RIGHT_FRAME), "green frame: chosen key")
    wrong = _legend_entry(_frame_icon(_WRONG_FRAME), "red frame: chosen, not in the answer")
    return _hstack([_label(label), right, wrong], _LEGEND_GAP)


def _frame_icon(colour) -> _Block:
    """A small empty card-shaped frame of ``colour``, as drawn round a chosen answer card."""
    ascent, descent = _font(*_LABEL_FONT).getmetrics()
    height = ascent + descent
    width = card_width(height)

    def paint(canvas, top, left):
        _paste_frame(canvas, colour, (left, top), (width, height), ring=3)

    return _Block(height, width, paint)


def _hstack(blocks: list[_Block], gap: int) -> _Block:
    """Blocks side by side, centred vertically."""
    height = max(b.height for b in blocks)
    width = sum(b.width for b in blocks) + gap * (len(blocks) - 1)

    def paint(canvas, top, left):
        for block in blocks:
            block.paint(canvas, top + (height - block.height) // 2, left)
            left += block.width + gap

    return _Block(height, width, paint)


def _vstack(blocks: list[_Block], gap: int, width: int = 0) -> _Block:
    """Blocks one above the other, flush left, at least ``width`` wide; a block of width 0
    (a separator) stretches to the full width."""
    height = sum(b.height for b in blocks) + gap * (len(blocks) - 1)
    width = max(width, *(b.width for b in blocks))

    def paint(canvas, top, left):
        for block in blocks:
            if block.width:
                block.paint(canvas, top, left)
            else:
                canvas.paste(_SEPARATOR, (left, top, left + width, top + block.height))
            top += block.height + gap

    return _Block(height, width, paint)


def _separator() -> _Block:
    return _Block(2, 0, lambda canvas, top, left: None)


def _card_grid(deck: Deck, cards, height: int, columns: int, frames: list | None = None) -> _Block:
    """Cards in rows of ``columns``; ``frames`` gives each card a frame colour (or None),
    and when given every cell leaves room for a frame around its card."""
    pad = _FRAME_PAD if frames is not None else 0
    cell_h, cell_w = height + 2 * pad, card_width(height) + 2 * pad
    rows = math.ceil(len(cards) / columns)
    columns = min(columns, len(cards))

    def paint(canvas, top, left):
        for i, card in enumerate(cards):
            row, column = divmod(i, columns)
            y, x = top + row * (cell_h + _CARD_GAP), left + column * (cell_w + _CARD_GAP)
            picture = card_picture(deck, int(card), height)
            canvas.paste(picture, (x + pad, y + pad), picture)
            if frames is not None and frames[i] is not None:
                _paste_frame(canvas, frames[i], (x, y), (cell_w, cell_h), _FRAME_WIDTH)

    grid_h = rows * cell_h + (rows - 1) * _CARD_GAP
    grid_w = columns * cell_w + (columns - 1) * _CARD_GAP
    return _Block(grid_h, grid_w, paint)


def _paste_frame(canvas, colour, corner: tuple[int, int], size: tuple[int, int], ring: int):
    """A card-shaped frame ``ring`` pixels wide filling ``size`` at ``corner`` (left, top)."""
    (left, top), (width, height) = corner, size
    radius = card_radius(height - 2 * _FRAME_PAD) + _FRAME_PAD
    mask = rounded_mask(width, height, radius, ring)
    canvas.paste(colour, (left, top, left + width, top + height), mask)


def _boxed(block: _Block, colour) -> _Block:
    """The block inside a rounded box of ``colour``."""
    height, width = block.height + 2 * _BOX_PAD, block.width + 2 * _BOX_PAD

    def paint(canvas, top, left):
        box = rounded_mask(width, height, 2 * _BOX_PAD)
        canvas.paste(colour, (left, top, left + width, top + height), box)
        block.paint(canvas, top + _BOX_PAD, left + _BOX_PAD)

    return _Block(height, width, paint)


def _glyph(name: str, size: int) -> _Block:
    def paint(canvas, top, left):
        canvas.paste(INK, (left, top, left + size, top + size), glyph_mask(name, size))

    return _Block(size, size, paint)


def _term_block(deck: Deck, rule: str, cards: tuple[int, ...]) -> _Block:
    columns = 2
    if rule == "subset":
        # Multiples of 9 columns keep a big subset a landscape band (81 keys: 3 rows of 27).
        columns = _SUBSET_COLUMNS * min(3, math.ceil(len(cards) / (3 * _SUBSET_COLUMNS)))
    return _boxed(_card_grid(deck, cards, _QUERY_CARD, columns), _TERM_BOXES[rule])


def _term_units(query: Query) -> list[_Block]:
    """One block per term, each after the glyph of the operator before it: a row of the
    query never starts with a term whose operator ended the row above."""
    units = []
    for i, term in enumerate(query.terms):
        block = _term_block(query.deck, term.rule, term.cards)
        if i:
            block = _hstack([_glyph(query.ops[i - 1], _QUERY_CARD // 2), block], _TERM_GAP)
        units.append(block)
    return units


def _row_limit(query: Query) -> int:
    """Widest row of the query: room for ``_ROW_PAIRS`` pair terms and their operators."""
    pair = _term_block(query.deck, "pair", (0, 0)).width
    unit = _QUERY_CARD // 2 + _TERM_GAP + pair
    return _ROW_PAIRS * unit + (_ROW_PAIRS - 1) * _TERM_GAP


def _flow(units: list[_Block], limit: int, gap: int = _TERM_GAP) -> list[_Block]:
    """Greedy line breaking: as many units to a row as fit in ``limit``."""
    rows, row = [], [units[0]]
    for unit in units[1:]:
        if sum(b.width + gap for b in row) + unit.width > limit:
            rows.append(row)
            row = []
        row.append(unit)
    rows.append(row)
    return [_hstack(row, gap) for row in rows]


def _answer_block(deck: Deck, cards: np.ndarray, frames: list, width: int) -> _Block:
    """The answer cards in key order, in rows of 9, 18 or 27: as many as the query's width
    allows, and more when there are more than 6 rows of 9; the empty-set sign when there are
    no cards."""
    if not len(cards):
        return _glyph("empty", _ANSWER_CARD)
    pitch = card_width(_ANSWER_CARD) + 2 * _FRAME_PAD + _CARD_GAP
    fewest, most = _ANSWER_COLUMNS
    by_width = width // (pitch * fewest) * fewest
    by_count = fewest * math.ceil(len(cards) / (6 * fewest))
    columns = min(most, max(fewest, by_width, by_count))
    return _card_grid(deck, cards, _ANSWER_CARD, columns, frames)


def _frame_colour(in_answer: bool, picked: bool) -> tuple[int, int, int] | None:
    if not picked:
        return None
    return _RIGHT_FRAME if in_answer else _WRONG_FRAME


# --- legend ----------------------------------------------------------------------------


def _legend(query: Query, width: int) -> list[_Block]:
    """Below a line, what each wildcard glyph the query uses means; none without one."""
    entries = _wildcard_entries(query)
    if not entries:
        return []
    rows = _flow([_label("wildcards *:"), *entries], width, _LEGEND_GAP)
    return [_separator(), _vstack(rows, _LABEL_GAP)]


def _wildcard_entries(query: Query) -> list[_Block]:
    """A legend entry per attribute that is ``*`` on some card of the query: a card whose
    only ``*`` is that attribute, and its glyph in words."""
    deck = query.deck
    cards = [card for term in query.terms for card in term.cards]
    wild = (deck.card_values[cards] < 0).any(axis=0)
    entries = []
    for attribute in np.flatnonzero(wild):
        text = "0" * attribute + "*" + "0" * (deck.n_attributes - attribute - 1)
        words = f"{wildcard_look(attribute)} = {deck.value_name(attribute, -1)}"
        icon = _card_grid(deck, [deck.card_id(text)], _LEGEND_CARD, 1)
        entries.append(_legend_entry(icon, words))
    return entries


def _legend_entry(icon: _Block, words: str) -> _Block:
    return _hstack([icon, _text([words], _font(*_LEGEND_FONT), INK)], 2 * _LABEL_GAP)


# --- arguments and output --------------------------------------------------------------


def _answer_mask(query: Query, positives: np.ndarray | None) -> np.ndarray:
    if positives is None:
        return query.positives
    answer = np.asarray(positives, dtype=bool)
    if answer.shape != (query.deck.n_keys,):
        raise ValueError(f"positives must have shape ({query.deck.n_keys},), got {answer.shape}")
    return answer


def _chosen_mask(chosen, n_keys: int) -> np.ndarray:
    """(n_keys,) bool from a key id, a (n_keys,) 0/1 selection, or None."""
    picked = np.zeros(n_keys, dtype=bool)
    if chosen is None:
        return picked
    if np.ndim(chosen) == 0:
        key = int(chosen)
        if not 0 <= key < n_keys:
            raise ValueError(f"chosen key must be in [0, {n_keys}), got {key}")
        picked[key] = True
        return picked
    selection = np.asarray(chosen)
    if selection.shape != (n_keys,):
        raise ValueError(
            f"chosen must be a key id or have shape ({n_keys},), got {selection.shape}"
        )
    return selection != 0


def _fit(picture: Image.Image) -> Image.Image:
    """Scale a picture down by a whole factor (box average) until both sides fit."""
    factor = math.ceil(max(picture.size) / _MAX_SIDE)
    return picture if factor == 1 else picture.reduce(factor)
