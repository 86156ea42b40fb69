"""Pictures of a query and its answer, the cards drawn as SET cards, with Pillow.

``render_rgb`` draws a title (the env id and the query's canonical text), the query term by
term (operator glyphs between the terms) under the label "query", below a thin line the
answer keys under the label "answer" and a key to the chosen key's frame, and below another
line a legend of the wildcard glyphs the query uses (if any); ``card_image`` draws one card
and ``write_png`` saves a picture.

A card shows its attributes the SET way: colour (red, green, purple, ...), fill (solid,
striped, open, dotted, checked, hatched, then translucent tints), shape (diamond, oval,
squiggle, rectangle, triangle, cross, then regular polygons) and count (1 .. v symbols
stacked; one symbol when the deck has no count attribute). Attributes past the fourth are
small squares along the bottom edge, darker for larger values. The wildcard ``*`` is drawn
as dark grey (colour), half solid and half open (fill), a plump five-pointed star (shape),
an asterisk in the top-right corner next to a single symbol (count) and a hatched square
(extra attributes). Stripes run vertically across the symbols, as on printed SET cards.

Pillow draws polygons with hard edges, so cards and glyphs are drawn at ``_SUPERSAMPLE``
times the output resolution and box-averaged down. Text is DejaVu Sans (the query text in
DejaVu Sans Mono) from matplotlib's bundled fonts, or Pillow's own font where matplotlib is
not installed; Pillow's basic text layout keeps the pixels the same with or without libraqm.
This module imports Pillow: ``set_env.render`` imports it on first use only.
"""

from __future__ import annotations

import colorsys
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from gymnasium.error import DependencyNotInstalled

from set_env.deck import Deck
from set_env.query import Query

try:
    from PIL import Image, ImageChops, ImageDraw, ImageFont
except ImportError as error:
    raise DependencyNotInstalled(
        "Pillow is not installed: set_env draws its rgb_array pictures with it. "
        "Run `pip install pillow`."
    ) from error

_SUPERSAMPLE = 4
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
_LABEL_INK = (105, 105, 105)
_CARD_BORDER = (150, 150, 150)
_TERM_BOXES = {"pair": (232, 232, 232), "shared": (212, 230, 250), "subset": (246, 240, 220)}
_RIGHT_FRAME = (20, 170, 60)
_WRONG_FRAME = (225, 25, 25)
_SEPARATOR = (185, 185, 185)

# Sizes in output pixels.
_CARD_ASPECT = 0.7
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

# How each wildcard attribute looks, for the legend: attribute index -> glyph in words.
_WILDCARD_GLYPHS = {0: "grey", 1: "half filled", 2: "star", 3: "* in the corner"}


def card_image(deck: Deck, card: int, height: int = 48) -> np.ndarray:
    """One card id drawn as a SET card on white: (height, round(height*0.7), 3) uint8,
    read-only.

    Images are cached per (deck, card, height); copy one before drawing on it.
    """
    if not 0 <= card < deck.n_cards:
        raise ValueError(f"card id must be in [0, {deck.n_cards}), got {card}")
    if height < 8:
        raise ValueError(f"height must be at least 8 pixels, got {height}")
    return _card_array(deck, int(card), int(height))


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
    deck = query.deck
    answer = _answer_mask(query, positives)
    picked = _chosen_mask(chosen, deck.n_keys)
    rows = _flow(_term_units(query), _row_limit(query))
    query_block = _labelled(_label("query"), _vstack(rows, _ROW_GAP))
    shown = np.flatnonzero(answer | picked)
    frames = [_frame_colour(answer[key], picked[key]) for key in shown]
    answer_cards = _answer_block(deck, deck.key_to_card[shown], frames, query_block.width)
    answer_block = _labelled(_answer_heading(int(answer.sum())), answer_cards)
    title = _title(env_id)
    width = max(query_block.width, answer_block.width, *(block.width for block in title))
    blocks = [*title, _query_text(query.text, width), query_block, _separator(), answer_block]
    return _paint(_vstack([*blocks, *_legend(query, width)], _ROW_GAP, width))


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


# --- the card -------------------------------------------------------------------------


@lru_cache(maxsize=8192)
def _card_array(deck: Deck, card: int, height: int) -> np.ndarray:
    picture = _card_picture(deck, card, height)
    on_white = Image.new("RGB", picture.size, "white")
    on_white.paste(picture, (0, 0), picture)
    array = np.array(on_white)
    array.flags.writeable = False
    return array


@lru_cache(maxsize=8192)
def _card_picture(deck: Deck, card: int, height: int) -> Image.Image:
    """The card as RGBA, transparent past its rounded corners: drawn supersampled, then
    averaged down."""
    values = deck.card_values[card]
    s = _SUPERSAMPLE
    width = _card_width(height)
    big = Image.new("RGBA", (width * s, height * s), (255, 255, 255, 0))
    ImageDraw.Draw(big).rounded_rectangle(
        (0, 0, width * s - 1, height * s - 1),
        radius=round(_card_radius(height) * s),
        fill="white",
        outline=_CARD_BORDER,
        width=max(s, round(0.016 * height * s)),  # 2 px on a query card
    )
    _draw_symbols(big, deck, values)
    if deck.n_attributes > 3 and values[3] < 0:
        _draw_asterisk(big)
    _draw_ticks(big, deck.n_values, values[4:])
    return big.resize((width, height), Image.Resampling.BOX)


def _card_width(height: int) -> int:
    return round(height * _CARD_ASPECT)


def _card_radius(height: int) -> float:
    return 0.09 * height


def _draw_symbols(big: Image.Image, deck: Deck, values: np.ndarray) -> None:
    """Paint the card's symbols (colour, fill, shape, count) onto the supersampled card."""
    width, height = big.size
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
    ink = _symbol_ink(value(1), value(2), box_w, box_h, stroke, period)
    colour = _symbol_colour(value(0))
    count = max(value(3) + 1, 1) if has_count else 1  # a wildcard count draws one symbol
    count_columns = math.ceil(count / rows)
    count_rows = math.ceil(count / count_columns)  # balanced: 4 of 6 as 2 x 2, not 3 + 1
    for i in range(count):
        column, row = divmod(i, count_rows)
        centre_y = top + (rows - count_rows) * slot_h / 2 + (row + 0.5) * slot_h
        centre_x = left + (columns - count_columns) * slot_w / 2 + (column + 0.5) * slot_w
        corner = (round(centre_x - box_w / 2), round(centre_y - box_h / 2))
        big.paste(colour, (*corner, corner[0] + box_w, corner[1] + box_h), ink)


def _symbol_colour(value: int) -> tuple[int, int, int]:
    if value < 0:
        return _WILDCARD_COLOUR
    if value < len(_SYMBOL_COLOURS):
        return _SYMBOL_COLOURS[value]
    # Past the named colours, golden-angle hues stay apart from each other.
    hue = (value * 0.618034) % 1.0
    return tuple(round(255 * c) for c in colorsys.hsv_to_rgb(hue, 0.8, 0.8))


@lru_cache(maxsize=1024)
def _symbol_ink(
    fill: int, shape: int, box_w: int, box_h: int, stroke: int, period: int
) -> Image.Image:
    """(box_w, box_h) "L" mask of one supersampled symbol: its outline, ``stroke`` wide and
    inside the shape, and its fill pattern (of period ``period``) within the shape."""
    outline = _shape_outline(shape, box_w, box_h)
    body = Image.new("L", (box_w, box_h), 0)
    ImageDraw.Draw(body).polygon(outline, fill=255)
    # The outline: discs of radius ``stroke`` all along the edge, cut to the inside by the
    # body, a band of even width round corners and curves alike (Pillow's wide lines leave
    # notches where many short edges meet).
    edge = Image.new("L", (box_w, box_h), 0)
    draw = ImageDraw.Draw(edge)
    for x, y in _along(outline, spacing=stroke / 4):
        draw.ellipse((x - stroke, y - stroke, x + stroke, y + stroke), fill=255)
    rim = ImageChops.multiply(edge, body)
    if fill < 0:
        # "Any fill": half solid, half open, split at the shape's own middle.
        left, _, right, _ = body.getbbox()
        pattern = np.broadcast_to(np.arange(box_w) < (left + right) / 2, (box_h, box_w))
    else:
        pattern = _fill_pattern(fill, box_w, box_h, period)
    pattern_image = Image.fromarray(np.asarray(pattern * 255, dtype=np.uint8))
    return ImageChops.lighter(rim, ImageChops.multiply(body, pattern_image))


def _along(outline: list[tuple[float, float]], spacing: float) -> np.ndarray:
    """(n, 2) points along the closed polygon, at most ``spacing`` apart."""
    corners = np.asarray(outline, dtype=float)
    ends = np.roll(corners, -1, axis=0)
    points = []
    for start, end in zip(corners, ends, strict=True):
        steps = max(1, math.ceil(np.hypot(*(end - start)) / spacing))
        points.append(start + (end - start) * (np.arange(steps) / steps)[:, None])
    return np.concatenate(points)


def _fill_pattern(fill: int, box_w: int, box_h: int, period: int) -> np.ndarray:
    """(box_h, box_w) in [0, 1]: how much a fill inks each pixel inside a symbol. Patterns
    lie on integer offsets from the middle so that a stripe or a dot always crosses the
    centre of the symbol, however small it is."""
    iy = np.arange(box_h)[:, None] - box_h // 2
    ix = np.arange(box_w)[None, :] - box_w // 2
    line = max(_SUPERSAMPLE, round(0.4 * period))
    full = np.ones((box_h, box_w))
    if fill == 0:  # solid
        return full
    if fill == 1:  # striped: vertical lines across the symbol, as on printed SET cards
        return full * ((ix + line // 2) % period < line)
    if fill == 2:  # open: the outline alone
        return np.zeros_like(full)
    if fill == 3:  # dotted
        cell = round(1.5 * period)
        return full * (np.hypot(_centred_mod(ix, cell), _centred_mod(iy, cell)) <= line)
    if fill == 4:  # checked
        return full * (((ix + period // 2) // period + (iy + period // 2) // period) % 2 == 0)
    if fill == 5:  # hatched: diagonal lines
        return full * ((ix + iy + line // 2) % period < line)
    # Further fills are translucent tints of different strengths.
    return full * (3 + (fill - 6) * 5 % 12) / 16


def _centred_mod(n: np.ndarray, cell: int) -> np.ndarray:
    """``n`` minus its nearest multiple of ``cell``: in ``[-cell // 2, cell - cell // 2)``."""
    return (n + cell // 2) % cell - cell // 2


def _shape_outline(shape: int, box_w: int, box_h: int) -> list[tuple[float, float]]:
    """The symbol's shape as a polygon filling a box of ``box_w`` x ``box_h`` pixels."""
    a, b = box_w / 2 - 1, box_h / 2 - 1  # half-width and half-height about the middle
    if shape < 0:  # "any shape": a five-pointed star
        points = _star(a, b)
    elif shape == 0:  # diamond
        points = [(0, -b), (a, 0), (0, b), (-a, 0)]
    elif shape == 1:  # oval
        points = _stadium(a, b)
    elif shape == 2:  # squiggle: a stadium bent along one period of a sine
        points = [(x, y + 0.3 * b * math.sin(math.pi * x / a)) for x, y in _stadium(a, 0.7 * b)]
    elif shape == 3:  # rectangle
        points = [(-0.95 * a, -0.8 * b), (0.95 * a, -0.8 * b), (0.95 * a, 0.8 * b)]
        points.append((-0.95 * a, 0.8 * b))
    elif shape == 4:  # triangle, apex up
        points = [(0, -b), (a, b), (-a, b)]
    elif shape == 5:  # cross
        points = _cross(min(a, 1.4 * b), b, arm=0.32 * b)
    else:  # further shapes are regular polygons, a vertex up: pentagon, hexagon, ...
        turns = np.arange(shape - 1) / (shape - 1)
        points = [(a * math.sin(2 * math.pi * t), -b * math.cos(2 * math.pi * t)) for t in turns]
    centre_x, centre_y = (box_w - 1) / 2, (box_h - 1) / 2
    return [(centre_x + x, centre_y + y) for x, y in points]


def _stadium(a: float, r: float, steps: int = 48) -> list[tuple[float, float]]:
    """A horizontal stadium of half-width ``a`` and radius ``r``; its straight edges are
    sampled too, so that bending it (the squiggle) bends them."""
    r = min(r, a)
    straight = np.linspace(-(a - r), a - r, steps)
    angles = np.linspace(-math.pi / 2, math.pi / 2, steps)
    top = [(x, -r) for x in straight]
    right = [(a - r + r * math.cos(t), r * math.sin(t)) for t in angles]
    bottom = [(x, r) for x in straight[::-1]]
    left = [(r - a - r * math.cos(t), -r * math.sin(t)) for t in angles]
    return top + right + bottom + left


def _star(a: float, b: float, inner: float = 0.65, steps: int = 200) -> list[tuple[float, float]]:
    """A plump five-pointed star, a point up, spanning the box's height and wider than tall:
    the radius falls linearly with the angle from a point to ``inner`` times it between two
    points. Plump, so that fills show in it."""
    radius = 2 * b / (1 + math.cos(math.pi / 5))  # it spans radius * (1 + cos 36 deg)
    stretch = min(a, 1.6 * b) / radius
    points = []
    for angle in np.linspace(0, 2 * math.pi, steps, endpoint=False):  # steps: a multiple of 10
        turn = angle / (2 * math.pi / 5) % 1  # in fifths of a turn from straight up
        off_point = 2 * min(turn, 1 - turn)  # 0 at a point, 1 halfway between two
        rho = radius * (1 - (1 - inner) * off_point)
        points.append((stretch * rho * math.sin(angle), radius - b - rho * math.cos(angle)))
    return points


def _cross(a: float, b: float, arm: float) -> list[tuple[float, float]]:
    """A plus sign: a bar of half-length ``a`` across one of half-length ``b``, both
    ``2 * arm`` thick; clockwise from the top bar's left corner."""
    return [
        (-arm, -b), (arm, -b), (arm, -arm), (a, -arm), (a, arm), (arm, arm),
        (arm, b), (-arm, b), (-arm, arm), (-a, arm), (-a, -arm), (-arm, -arm),
    ]  # fmt: skip


def _draw_asterisk(big: Image.Image) -> None:
    """A small ``*`` of three crossing strokes in the top-right corner: the count is ``*``."""
    width, height = big.size
    size = round(0.22 * width)
    stroke = max(_SUPERSAMPLE, round(0.16 * size))
    centre_x = width - round(0.09 * width) - size / 2
    centre_y = round(0.05 * height) + size / 2
    draw = ImageDraw.Draw(big)
    for angle in (math.pi / 2, math.pi / 6, 5 * math.pi / 6):
        dx, dy = size / 2 * math.cos(angle), size / 2 * math.sin(angle)
        draw.line((centre_x - dx, centre_y - dy, centre_x + dx, centre_y + dy), _INK, stroke)


def _draw_ticks(big: Image.Image, n_values: int, values: np.ndarray) -> None:
    """One small square per attribute past the fourth, darker for larger values, hatched
    for ``*``, centred along the bottom edge."""
    width, height = big.size
    side, step = round(0.16 * width), round(0.24 * width)
    top = height - round(0.05 * height) - side
    left = (width - side - step * (len(values) - 1)) // 2
    for i, value in enumerate(values):
        shade = 255 if value < 0 else round(255 - 210 * (value + 1) / n_values)
        tick = Image.new("L", (side, side), shade)
        draw = ImageDraw.Draw(tick)
        if value < 0:
            for k in range(0, 2 * side, side // 2):  # anti-diagonals x + y = k
                draw.line((k, 0, 0, k), fill=50, width=_SUPERSAMPLE)
        draw.rectangle((0, 0, side - 1, side - 1), outline=50, width=_SUPERSAMPLE)
        big.paste(tick.convert("RGBA"), (left + i * step, top))


# --- masks: rounded boxes, frames and operator glyphs -------------------------------------


@lru_cache(maxsize=512)
def _rounded_mask(width: int, height: int, radius: float, ring: float = 0.0) -> Image.Image:
    """(width, height) "L" coverage of a rounded rectangle, or of its border ``ring`` px
    wide."""
    s = _SUPERSAMPLE
    big = Image.new("L", (width * s, height * s), 0)
    box, corner = (0, 0, width * s - 1, height * s - 1), round(radius * s)
    if ring:
        ImageDraw.Draw(big).rounded_rectangle(box, corner, outline=255, width=round(ring * s))
    else:
        ImageDraw.Draw(big).rounded_rectangle(box, corner, fill=255)
    return big.resize((width, height), Image.Resampling.BOX)


@lru_cache(maxsize=64)
def _glyph_mask(name: str, size: int) -> Image.Image:
    """(size, size) "L" coverage of an operator glyph: ``|`` a cup, ``^`` a circled plus,
    and ``empty`` the empty-set sign."""
    big = size * _SUPERSAMPLE
    draw_on = Image.new("L", (big, big), 0)
    draw = ImageDraw.Draw(draw_on)
    c, r, half = (big - 1) / 2, 0.36 * big, 0.06 * big  # centre, stroke radius, half stroke
    stroke = round(2 * half)
    circle = (c - r - half, c - r - half, c + r + half, c + r + half)  # outer edge of a ring
    if name == "|":  # the cup: a lower half-ring and two upright strokes above it
        cup = 0.1 * big
        draw.arc((circle[0], circle[1] + cup, circle[2], circle[3] + cup), 0, 180, 255, stroke)
        for x in (c - r, c + r):
            draw.rectangle((x - half, c - 0.4 * big, x + half, c + cup), fill=255)
    elif name == "^":
        draw.ellipse(circle, outline=255, width=stroke)
        draw.rectangle((c - half, c - r, c + half, c + r), fill=255)
        draw.rectangle((c - r, c - half, c + r, c + half), fill=255)
    else:
        draw.ellipse(circle, outline=255, width=stroke)
        reach = 0.48 * big / math.sqrt(2)
        draw.line((c - reach, c + reach, c + reach, c - reach), fill=255, width=stroke)
    return draw_on.resize((size, size), Image.Resampling.BOX)


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
    return [_text([env_id], _font(*_TITLE_FONT), _INK)] if env_id else []


def _query_text(text: str, width: int) -> _Block:
    font = _font(*_QUERY_FONT)
    return _text(_wrap(text, font, width), font, _INK)


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
    width = _card_width(height)

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
    cell_h, cell_w = height + 2 * pad, _card_width(height) + 2 * pad
    rows = math.ceil(len(cards) / columns)
    columns = min(columns, len(cards))

    def paint(canvas, top, left):
        for i, card in enumerate(cards):
            row, column = divmod(i, columns)
            y, x = top + row * (cell_h + _CARD_GAP), left + column * (cell_w + _CARD_GAP)
            picture = _card_picture(deck, int(card), height)
            canvas.paste(picture, (x + pad, y + pad), picture)
            if frames is not None and frames[i] is not None:
                _paste_frame(canvas, frames[i], (x, y), (cell_w, cell_h), _FRAME_WIDTH)

    grid_h = rows * cell_h + (rows - 1) * _CARD_GAP
    grid_w = columns * cell_w + (columns - 1) * _CARD_GAP
    return _Block(grid_h, grid_w, paint)


def _paste_frame(canvas, colour, corner: tuple[int, int], size: tuple[int, int], ring: int):
    """A card-shaped frame ``ring`` pixels wide filling ``size`` at ``corner`` (left, top)."""
    (left, top), (width, height) = corner, size
    radius = _card_radius(height - 2 * _FRAME_PAD) + _FRAME_PAD
    mask = _rounded_mask(width, height, radius, ring)
    canvas.paste(colour, (left, top, left + width, top + height), mask)


def _boxed(block: _Block, colour) -> _Block:
    """The block inside a rounded box of ``colour``."""
    height, width = block.height + 2 * _BOX_PAD, block.width + 2 * _BOX_PAD

    def paint(canvas, top, left):
        box = _rounded_mask(width, height, 2 * _BOX_PAD)
        canvas.paste(colour, (left, top, left + width, top + height), box)
        block.paint(canvas, top + _BOX_PAD, left + _BOX_PAD)

    return _Block(height, width, paint)


def _glyph(name: str, size: int) -> _Block:
    def paint(canvas, top, left):
        canvas.paste(_INK, (left, top, left + size, top + size), _glyph_mask(name, size))

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
        glyph = _WILDCARD_GLYPHS.get(attribute, "hatched square")
        words = f"{glyph} = {deck.value_name(attribute, -1)}"
        icon = _card_grid(deck, [deck.card_id(text)], _LEGEND_CARD, 1)
        entries.append(_legend_entry(icon, words))
    return entries


def _legend_entry(icon: _Block, words: str) -> _Block:
    return _hstack([icon, _text([words], _font(*_LEGEND_FONT), _INK)], 2 * _LABEL_GAP)


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
