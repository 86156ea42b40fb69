"""Pictures of a query and its answer, the cards drawn as SET cards, with numpy alone.

``render_rgb`` draws the query term by term (operator glyphs between the terms) and below a
thin line the answer keys; ``card_image`` draws one card.

A card shows its attributes the SET way: colour (red, green, purple, ...), fill (solid,
striped, open, dotted, checked, hatched, then translucent tints), shape (diamond, oval,
squiggle, rectangle, triangle, cross, then regular polygons) and count (1 .. v symbols
stacked; one symbol when the deck has no count attribute). Attributes past the fourth are
small squares along the bottom edge, darker for larger values. The wildcard ``*`` is drawn
as dark grey (colour), half solid and half open (fill), a plump five-pointed star (shape),
an asterisk in the top-right corner next to a single symbol (count) and a hatched square
(extra attributes). Stripes run vertically across the symbols, as on printed SET cards.

Everything is rasterised from implicit functions on coordinate grids at ``_SUPERSAMPLE``
times the output resolution and box-averaged down, which antialiases without any drawing
library.
"""

from __future__ import annotations

import colorsys
import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from set_env.deck import Deck
from set_env.query import Query

_SUPERSAMPLE = 4  # a multiple of 4, the period of the dithered tint fills
_MAX_SIDE = 2048

# Colours, RGB.
_SYMBOL_COLOURS = (  # in the order of deck.VALUE_NAMES["colour"]
    (215, 30, 45),
    (0, 150, 70),
    (110, 40, 160),
    (30, 90, 210),
    (240, 125, 0),
    (0, 150, 160),
    (135, 80, 35),
    (230, 90, 170),
)
_WILDCARD_COLOUR = (75, 75, 75)
_INK = (50, 50, 50)
_CARD_BORDER = (150, 150, 150)
_TERM_BOXES = {"pair": (232, 232, 232), "shared": (212, 230, 250), "subset": (246, 240, 220)}
_RIGHT_FRAME = (20, 170, 60)
_WRONG_FRAME = (225, 25, 25)
_SEPARATOR = (185, 185, 185)

# Sizes in output pixels.
_CARD_ASPECT = 0.7
_QUERY_CARD = 64
_ANSWER_CARD = 44
_CARD_GAP = 4
_BOX_PAD = 6
_TERM_GAP = 8
_ROW_GAP = 10
_MARGIN = 12
_FRAME_WIDTH = 3
_FRAME_PAD = _FRAME_WIDTH + 1  # room left around an answer card for its frame
_ROW_PAIRS = 4  # pair terms to a row before the query wraps
_SUBSET_COLUMNS = 9  # a subset term wraps its cards in multiples of this many columns
_ANSWER_COLUMNS = (9, 27)  # fewest and most answer cards to a row

# A 4 x 4 ordered-dither matrix: a tint of level k/16 survives the box-average exactly.
_BAYER = np.array([[0, 8, 2, 10], [12, 4, 14, 6], [3, 11, 1, 9], [15, 7, 13, 5]])


def card_image(deck: Deck, card: int, height: int = 48) -> np.ndarray:
    """One card id drawn as a SET card: (height, round(height*0.7), 3) uint8, read-only.

    Images are cached per (deck, card, height); copy one before drawing on it.
    """
    if not 0 <= card < deck.n_cards:
        raise ValueError(f"card id must be in [0, {deck.n_cards}), got {card}")
    if height < 8:
        raise ValueError(f"height must be at least 8 pixels, got {height}")
    return _card_pixels(deck, int(card), int(height))


def render_rgb(
    query: Query,
    positives: np.ndarray | None = None,
    chosen: np.ndarray | int | None = None,
) -> np.ndarray:
    """An (H, W, 3) uint8 picture: the query's cards drawn as SET cards (term by term, with
    the operator glyphs between terms), then the answer cards (positives; default
    query.positives). `chosen` is the agent's action: a key id (int) or a (n_keys,) 0/1
    selection; chosen cards get a highlighted frame (green if in the answer, red if not).

    H and W are at most 2048: a picture that would be larger is scaled down.
    """
    deck = query.deck
    answer = _answer_mask(query, positives)
    picked = _chosen_mask(chosen, deck.n_keys)
    rows = _flow(_term_units(query), _row_limit(query))
    query_width = max(row.width for row in rows)
    shown = np.flatnonzero(answer | picked)
    frames = [_frame_colour(answer[key], picked[key]) for key in shown]
    answer_block = _answer_block(deck, deck.key_to_card[shown], frames, query_width)
    return _fit(_paint(_vstack([*rows, _separator(), answer_block], _ROW_GAP)))


# --- the card -------------------------------------------------------------------------


@lru_cache(maxsize=8192)
def _card_pixels(deck: Deck, card: int, height: int) -> np.ndarray:
    """``card_image`` without the argument checks: drawn supersampled, then averaged down."""
    values = deck.card_values[card]
    s = _SUPERSAMPLE
    width = _card_width(height)
    big = np.full((height * s, width * s, 3), 255.0, dtype=np.float32)
    body = _rounded_mask(height * s, width * s, _card_radius(height) * s)
    inside = _rounded_mask(height * s, width * s, _card_radius(height) * s, inset=s)
    big[body & ~inside] = _CARD_BORDER
    _draw_symbols(big, deck, values)
    if deck.n_attributes > 3 and values[3] < 0:
        _draw_asterisk(big)
    _draw_ticks(big, deck.n_values, values[4:])
    image = np.round(_downsample(big)).astype(np.uint8)
    image.flags.writeable = False
    return image


def _card_width(height: int) -> int:
    return round(height * _CARD_ASPECT)


def _card_radius(height: int) -> float:
    return 0.09 * height


def _draw_symbols(big: np.ndarray, deck: Deck, values: np.ndarray) -> None:
    """Paint the card's symbols (colour, fill, shape, count) onto the supersampled card."""
    height, width = big.shape[:2]
    has_count = deck.n_attributes > 3
    columns = math.ceil(deck.n_values / 5) if has_count else 1
    rows = max(3, math.ceil(deck.n_values / columns)) if has_count else 2
    top, left = 0.08 * height, 0.12 * width
    # Extra attributes take a strip along the bottom edge.
    bottom = 0.08 * height + (0.2 * width if deck.n_attributes > 4 else 0)
    slot_h, slot_w = (height - top - bottom) / rows, (width - 2 * left) / columns
    box_h = round(0.78 * slot_h)
    box_w = round(min(0.95 * slot_w, 2.4 * box_h))
    value = lambda j: int(values[j]) if j < deck.n_attributes else 0
    stroke, period = round(0.032 * height), max(3 * _SUPERSAMPLE, round(0.05 * height))
    ink = _symbol_ink(value(1), value(2), box_h, box_w, stroke, period)
    colour = _symbol_colour(value(0))
    count = max(value(3) + 1, 1) if has_count else 1  # a wildcard count draws one symbol
    count_columns = math.ceil(count / rows)
    count_rows = math.ceil(count / count_columns)  # balanced: 4 of 6 as 2 x 2, not 3 + 1
    for i in range(count):
        column, row = divmod(i, count_rows)
        centre_y = top + (rows - count_rows) * slot_h / 2 + (row + 0.5) * slot_h
        centre_x = left + (columns - count_columns) * slot_w / 2 + (column + 0.5) * slot_w
        y0, x0 = round(centre_y - box_h / 2), round(centre_x - box_w / 2)
        big[y0 : y0 + box_h, x0 : x0 + box_w][ink] = colour


def _symbol_colour(value: int) -> tuple[int, int, int]:
    if value < 0:
        return _WILDCARD_COLOUR
    if value < len(_SYMBOL_COLOURS):
        return _SYMBOL_COLOURS[value]
    # Past the named colours, golden-angle hues stay apart from each other.
    hue = (value * 0.618034) % 1.0
    return tuple(round(255 * c) for c in colorsys.hsv_to_rgb(hue, 0.8, 0.8))


def _symbol_ink(
    fill: int, shape: int, box_h: int, box_w: int, stroke: int, period: int
) -> np.ndarray:
    """(box_h, box_w) bool: the pixels of one supersampled symbol that take its colour;
    ``stroke`` is the outline width and ``period`` that of the fill patterns."""
    y, x = _centred_grid(box_h, box_w)
    mask = _shape_mask(shape, x, y, a=box_w / 2 - 1, b=box_h / 2 - 1)
    outline = mask & ~_erode(mask, stroke)
    # Patterns lie on integer offsets from the middle so that a stripe or a dot always
    # crosses the centre of the symbol, however small it is.
    iy = np.arange(box_h)[:, None] - box_h // 2
    ix = np.arange(box_w)[None, :] - box_w // 2
    if fill < 0:
        # "Any fill": half solid, half open, split at the shape's own middle.
        columns = np.flatnonzero(mask.any(axis=0)) - box_w // 2
        return outline | (mask & (ix < (columns[0] + columns[-1] + 1) / 2))
    return outline | (mask & _fill_pattern(fill, ix, iy, period))


def _fill_pattern(fill: int, ix: np.ndarray, iy: np.ndarray, period: int) -> np.ndarray:
    """Where a fill inks the inside of a symbol, on integer offsets from its middle."""
    line = max(_SUPERSAMPLE, round(0.4 * period))
    if fill == 0:  # solid
        return np.ones(np.broadcast_shapes(ix.shape, iy.shape), dtype=bool)
    if fill == 1:  # striped: vertical lines across the symbol, as on printed SET cards
        return (ix + line // 2) % period < line
    if fill == 2:  # open: the outline alone
        return np.zeros(np.broadcast_shapes(ix.shape, iy.shape), dtype=bool)
    if fill == 3:  # dotted
        cell = round(1.5 * period)
        return np.hypot(_centred_mod(ix, cell), _centred_mod(iy, cell)) <= line
    if fill == 4:  # checked
        return ((ix + period // 2) // period + (iy + period // 2) // period) % 2 == 0
    if fill == 5:  # hatched: diagonal lines
        return (ix + iy + line // 2) % period < line
    # Further fills are translucent tints of different strengths.
    level = 3 + (fill - 6) * 5 % 12
    return _BAYER[iy % 4, ix % 4] < level


def _centred_mod(n: np.ndarray, cell: int) -> np.ndarray:
    """``n`` minus its nearest multiple of ``cell``: in ``[-cell // 2, cell - cell // 2)``."""
    return (n + cell // 2) % cell - cell // 2


def _shape_mask(shape: int, x, y, a: float, b: float) -> np.ndarray:
    """The symbol's shape in a box of half-width ``a`` and half-height ``b``."""
    if shape < 0:  # "any shape": a five-pointed star, wider than tall to fill the box
        radius = b / (1 + np.cos(np.pi / 5)) * 2  # the star spans radius * (1 + cos 36 deg)
        return _star(x * radius / min(a, 1.6 * b), y + b - radius, radius)
    if shape == 0:  # diamond
        return np.abs(x) / a + np.abs(y) / b <= 1
    if shape == 1:  # oval
        return _stadium(x, y, a, b)
    if shape == 2:  # squiggle: a stadium bent along one period of a sine
        return _stadium(x, y - 0.3 * b * np.sin(np.pi * x / a), a, 0.7 * b)
    if shape == 3:  # rectangle
        return (np.abs(x) <= 0.95 * a) & (np.abs(y) <= 0.8 * b)
    if shape == 4:  # triangle, apex up
        return (y <= b) & (np.abs(x) <= a * (y + b) / (2 * b))
    if shape == 5:  # cross
        arm = 0.32 * b
        wide = (np.abs(x) <= min(a, 1.4 * b)) & (np.abs(y) <= arm)
        return wide | ((np.abs(x) <= arm) & (np.abs(y) <= b))
    # Further shapes are regular polygons: pentagon, hexagon, ...
    return _regular_polygon(x / a, y / b, sides=shape - 1)


def _stadium(x, y, a: float, r: float) -> np.ndarray:
    """A horizontal stadium of half-width ``a`` and radius ``r``."""
    return np.hypot(np.maximum(np.abs(x) - (a - r), 0), y) <= r


def _star(x, y, radius: float, inner: float = 0.65) -> np.ndarray:
    """A plump five-pointed star, a point up: the radius falls linearly with the angle from
    ``radius`` at a point to ``inner * radius`` between points; plump, so fills show in it."""
    turn = np.arctan2(x, -y) / (2 * np.pi / 5) % 1  # in fifths of a turn from straight up
    off_point = 2 * np.minimum(turn, 1 - turn)  # 0 at a point, 1 halfway between two
    return np.hypot(x, y) <= radius * (1 - (1 - inner) * off_point)


def _regular_polygon(x, y, sides: int) -> np.ndarray:
    """A regular polygon of circumradius 1, a vertex up: inside every edge's half-plane."""
    normals = -np.pi / 2 + np.pi / sides + 2 * np.pi * np.arange(sides) / sides
    dots = x[..., None] * np.cos(normals) + y[..., None] * np.sin(normals)
    return (dots <= np.cos(np.pi / sides)).all(axis=-1)


def _draw_asterisk(big: np.ndarray) -> None:
    """A small ``*`` of three crossing strokes in the top-right corner: the count is ``*``."""
    height, width = big.shape[:2]
    size = round(0.22 * width)
    y, x = _centred_grid(size, size)
    stroke = max(_SUPERSAMPLE, 0.16 * size)
    mark = np.zeros((size, size), dtype=bool)
    for angle in (np.pi / 2, np.pi / 6, 5 * np.pi / 6):
        along = x * np.cos(angle) + y * np.sin(angle)
        across = -x * np.sin(angle) + y * np.cos(angle)
        mark |= (np.abs(across) <= stroke / 2) & (np.abs(along) <= size / 2)
    y0, x0 = round(0.05 * height), width - size - round(0.09 * width)
    big[y0 : y0 + size, x0 : x0 + size][mark] = _INK


def _draw_ticks(big: np.ndarray, n_values: int, values: np.ndarray) -> None:
    """One small square per attribute past the fourth, darker for larger values, hatched
    for ``*``, centred along the bottom edge."""
    height, width = big.shape[:2]
    side, step = round(0.16 * width), round(0.24 * width)
    top = height - round(0.05 * height) - side
    left = (width - side - step * (len(values) - 1)) // 2
    iy, ix = np.indices((side, side))
    border = np.minimum(np.minimum(iy, ix), np.minimum(side - 1 - iy, side - 1 - ix))
    for i, value in enumerate(values):
        if value < 0:
            shade = np.where((ix + iy) % (side // 2) < _SUPERSAMPLE, 50, 255)
        else:
            shade = np.full((side, side), 255 - 210 * (value + 1) / n_values)
        shade = np.where(border < _SUPERSAMPLE, 50, shade)
        big[top : top + side, left + i * step : left + i * step + side] = shade[..., None]


# --- rasterising helpers ---------------------------------------------------------------


def _centred_grid(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """(height, 1) y and (1, width) x: pixel-centre offsets from the middle of the box."""
    y = np.arange(height, dtype=np.float32)[:, None] - (height - 1) / 2
    x = np.arange(width, dtype=np.float32)[None, :] - (width - 1) / 2
    return y, x


def _rounded_mask(height: int, width: int, radius: float, inset: float = 0.0) -> np.ndarray:
    """(height, width) bool: a rounded rectangle filling the box, shrunk by ``inset``."""
    y, x = _centred_grid(height, width)
    radius = max(radius - inset, 0.5)
    qx = np.maximum(np.abs(x) - (width / 2 - inset - radius), 0)
    qy = np.maximum(np.abs(y) - (height / 2 - inset - radius), 0)
    return qx**2 + qy**2 <= radius**2


def _erode(mask: np.ndarray, steps: int) -> np.ndarray:
    """Erode by ``steps`` pixels: AND of shifted copies, alternating the 4- and the
    8-neighbourhood so that slanted edges erode about as much as straight ones."""
    for step in range(steps):
        p = np.pad(mask, 1)
        mask = p[1:-1, 1:-1] & p[:-2, 1:-1] & p[2:, 1:-1] & p[1:-1, :-2] & p[1:-1, 2:]
        if step % 2:
            mask &= p[:-2, :-2] & p[:-2, 2:] & p[2:, :-2] & p[2:, 2:]
    return mask


def _downsample(big: np.ndarray) -> np.ndarray:
    """Box-average ``_SUPERSAMPLE`` x ``_SUPERSAMPLE`` blocks: supersampled -> output."""
    s = _SUPERSAMPLE
    height, width = big.shape[0] // s, big.shape[1] // s
    return big.reshape(height, s, width, s, *big.shape[2:]).mean(axis=(1, 3))


@lru_cache(maxsize=512)
def _rounded_alpha(height: int, width: int, radius: float, ring: float = 0.0) -> np.ndarray:
    """(height, width) coverage of a rounded rectangle, or of its border ``ring`` px wide."""
    s = _SUPERSAMPLE
    mask = _rounded_mask(height * s, width * s, radius * s)
    if ring:
        mask &= ~_rounded_mask(height * s, width * s, radius * s, inset=ring * s)
    return _downsample(mask.astype(np.float32))


@lru_cache(maxsize=64)
def _glyph_alpha(name: str, size: int) -> np.ndarray:
    """(size, size) coverage of an operator glyph: ``|`` a cup, ``^`` a circled plus, and
    ``empty`` the empty-set sign."""
    big = size * _SUPERSAMPLE
    y, x = _centred_grid(big, big)
    r, half = 0.36 * big, 0.06 * big  # stroke centre-line radius, half the stroke width
    ring = np.abs(np.hypot(x, y) - r) <= half
    if name == "|":
        cy = 0.1 * big  # the cup: a lower half-ring and two upright strokes above it
        bowl = (np.abs(np.hypot(x, y - cy) - r) <= half) & (y >= cy)
        sides = (np.abs(np.abs(x) - r) <= half) & (y >= -0.4 * big) & (y <= cy)
        mask = bowl | sides
    elif name == "^":
        bars = (np.abs(x) <= half) | (np.abs(y) <= half)
        mask = ring | (bars & (np.hypot(x, y) <= r))
    else:
        slash = np.abs(x + y) / np.sqrt(2) <= half
        mask = ring | (slash & (np.hypot(x, y) <= 0.48 * big))
    return _downsample(mask.astype(np.float32))


# --- layout ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Block:
    """A rectangle of the picture: its size and how to paint it with its top-left corner
    at (top, left) of a float32 RGB canvas."""

    height: int
    width: int
    paint: Callable[[np.ndarray, int, int], None]


def _paint(block: _Block) -> np.ndarray:
    """The block on a white canvas with a margin all round, as uint8."""
    canvas = np.full(
        (block.height + 2 * _MARGIN, block.width + 2 * _MARGIN, 3), 255.0, dtype=np.float32
    )
    block.paint(canvas, _MARGIN, _MARGIN)
    return np.round(canvas).astype(np.uint8)


def _blend(canvas: np.ndarray, alpha: np.ndarray, colour, top: int, left: int) -> None:
    height, width = alpha.shape
    region = canvas[top : top + height, left : left + width]
    a = alpha[..., None]
    region *= 1 - a
    region += a * np.asarray(colour, dtype=np.float32)


def _paste_card(canvas: np.ndarray, image: np.ndarray, top: int, left: int) -> None:
    """Paste a card image; its corners, drawn on white, take the colour underneath."""
    height, width = image.shape[:2]
    alpha = _rounded_alpha(height, width, _card_radius(height))[..., None]
    region = canvas[top : top + height, left : left + width]
    # image = alpha*card + (1-alpha)*white, so on background B the card shows as
    # alpha*card + (1-alpha)*B = image + (1-alpha)*(B - white).
    region[...] = image + (1 - alpha) * (region - 255.0)


def _hstack(blocks: list[_Block], gap: int) -> _Block:
    """Blocks side by side, centred vertically."""
    height = max(b.height for b in blocks)
    width = sum(b.width for b in blocks) + gap * (len(blocks) - 1)

    def paint(canvas, top, left):
        for block in blocks:
            block.paint(canvas, top + (height - block.height) // 2, left)
            left += block.width + gap

    return _Block(height, width, paint)


def _vstack(blocks: list[_Block], gap: int) -> _Block:
    """Blocks one above the other, centred horizontally; a block of width 0 (the
    separator) stretches to the full width."""
    height = sum(b.height for b in blocks) + gap * (len(blocks) - 1)
    width = max(b.width for b in blocks)

    def paint(canvas, top, left):
        for block in blocks:
            if block.width:
                block.paint(canvas, top, left + (width - block.width) // 2)
            else:
                canvas[top : top + block.height, left : left + width] = _SEPARATOR
            top += block.height + gap

    return _Block(height, width, paint)


def _separator() -> _Block:
    return _Block(1, 0, lambda canvas, top, left: None)


def _card_grid(deck: Deck, cards, height: int, columns: int, frames: list | None = None) -> _Block:
    """Cards in rows of ``columns``; ``frames`` gives each card a frame colour (or None),
    and when given every cell leaves room for a frame around its card."""
    pad = _FRAME_PAD if frames is not None else 0
    cell_h, cell_w = height + 2 * pad, _card_width(height) + 2 * pad
    rows = math.ceil(len(cards) / columns)
    columns = min(columns, len(cards))

    def paint(canvas, top, left):
        for i, card in enumerate(cards):
            row, column = divmod(i, columns)
            y, x = top + row * (cell_h + _CARD_GAP), left + column * (cell_w + _CARD_GAP)
            _paste_card(canvas, card_image(deck, int(card), height), y + pad, x + pad)
            if frames is not None and frames[i] is not None:
                ring = _rounded_alpha(cell_h, cell_w, _card_radius(height) + pad, _FRAME_WIDTH)
                _blend(canvas, ring, frames[i], y, x)

    grid_h = rows * cell_h + (rows - 1) * _CARD_GAP
    grid_w = columns * cell_w + (columns - 1) * _CARD_GAP
    return _Block(grid_h, grid_w, paint)


def _boxed(block: _Block, colour) -> _Block:
    """The block inside a rounded box of ``colour``."""
    height, width = block.height + 2 * _BOX_PAD, block.width + 2 * _BOX_PAD

    def paint(canvas, top, left):
        _blend(canvas, _rounded_alpha(height, width, 2 * _BOX_PAD), colour, top, left)
        block.paint(canvas, top + _BOX_PAD, left + _BOX_PAD)

    return _Block(height, width, paint)


def _glyph(name: str, size: int) -> _Block:
    paint = lambda canvas, top, left: _blend(canvas, _glyph_alpha(name, size), _INK, top, left)
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


def _flow(units: list[_Block], limit: int) -> list[_Block]:
    """Greedy line breaking: as many units to a row as fit in ``limit``."""
    rows, row = [], [units[0]]
    for unit in units[1:]:
        if sum(b.width + _TERM_GAP for b in row) + unit.width > limit:
            rows.append(row)
            row = []
        row.append(unit)
    rows.append(row)
    return [_hstack(row, _TERM_GAP) for row in rows]


def _answer_block(deck: Deck, cards: np.ndarray, frames: list, width: int) -> _Block:
    """The answer cards in key order, in rows of 9, 18 or 27: as many as the query's width
    allows, and more when there are more than 6 rows of 9; the empty-set sign when there are
    no cards."""
    if not len(cards):
        return _glyph("empty", _ANSWER_CARD)
    pitch = _card_width(_ANSWER_CARD) + 2 * _FRAME_PAD + _CARD_GAP
    fewest, most = _ANSWER_COLUMNS
    by_width = width // (pitch * fewest) * fewest
    by_count = fewest * math.ceil(len(cards) / (6 * fewest))
    columns = min(most, max(fewest, by_width, by_count))
    return _card_grid(deck, cards, _ANSWER_CARD, columns, frames)


def _frame_colour(in_answer: bool, picked: bool) -> tuple[int, int, int] | None:
    if not picked:
        return None
    return _RIGHT_FRAME if in_answer else _WRONG_FRAME


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


def _fit(image: np.ndarray) -> np.ndarray:
    """Scale a picture down by a whole factor (box average) until both sides fit."""
    factor = math.ceil(max(image.shape[:2]) / _MAX_SIDE)
    if factor == 1:
        return image
    height, width = (-(-side // factor) * factor for side in image.shape[:2])
    padded = np.full((height, width, 3), 255.0, dtype=np.float32)
    padded[: image.shape[0], : image.shape[1]] = image
    small = padded.reshape(height // factor, factor, width // factor, factor, 3).mean((1, 3))
    return np.round(small).astype(np.uint8)
