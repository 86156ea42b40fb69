"""SET cards drawn with Pillow, and the other small shapes of a picture: operator glyphs and
rounded boxes and frames.

``card_image`` draws one card on white; ``card_picture`` the same card with transparent
corners, for pasting into a picture. A card shows its attributes the SET way: colour (red,
green, purple, ...), fill (solid, striped, open, dotted, checked, hatched, then translucent
tints), shape (diamond, oval, squiggle, rectangle, triangle, cross, then regular polygons)
and count (1 .. v symbols stacked; one symbol when the deck has no count attribute).
Attributes past the fourth are small squares along the bottom edge, darker for larger
values. The wildcard ``*`` is drawn as dark grey (colour), half solid and half open (fill),
a plump five-pointed star (shape), an asterisk in the top-right corner next to a single
symbol (count) and a hatched square (extra attributes); ``wildcard_look`` says so in words.
Stripes run vertically across the symbols, as on printed SET cards.

Pillow draws polygons with hard edges, so cards, glyphs and rounded masks are drawn at
``_SUPERSAMPLE`` times the output resolution and box-averaged down. This module imports
Pillow: ``set_env.render`` imports it on first use only.
"""

from __future__ import annotations

import colorsys
import math
from functools import lru_cache

import numpy as np
from PIL import Image, ImageChops, ImageDraw

from set_env.deck import Deck

_SUPERSAMPLE = 4

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
INK = (50, 50, 50)  # the count's *, and in a picture its text and operator glyphs
_CARD_BORDER = (150, 150, 150)

_CARD_ASPECT = 0.7  # width / height

# How a card draws the wildcard * of each attribute, in words: attribute index -> glyph.
_WILDCARD_LOOKS = {0: "grey", 1: "half filled", 2: "star", 3: "* in the corner"}
_EXTRA_WILDCARD_LOOK = "hatched square"  # attributes past the fourth


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


def wildcard_look(attribute: int) -> str:
    """How a card draws ``*`` in ``attribute`` (an index), in words: for a picture's legend."""
    return _WILDCARD_LOOKS.get(attribute, _EXTRA_WILDCARD_LOOK)


# --- the card -------------------------------------------------------------------------


@lru_cache(maxsize=8192)
def _card_array(deck: Deck, card: int, height: int) -> np.ndarray:
    picture = card_picture(deck, card, height)
    on_white = Image.new("RGB", picture.size, "white")
    on_white.paste(picture, (0, 0), picture)
    array = np.array(on_white)
    array.flags.writeable = False
    return array


@lru_cache(maxsize=8192)
def card_picture(deck: Deck, card: int, height: int) -> Image.Image:
    """The card as RGBA, transparent past its rounded corners: drawn supersampled, then
    averaged down."""
    values = deck.card_values[card]
    s = _SUPERSAMPLE
    width = card_width(height)
    big = Image.new("RGBA", (width * s, height * s), (255, 255, 255, 0))
    ImageDraw.Draw(big).rounded_rectangle(
        (0, 0, width * s - 1, height * s - 1),
        radius=round(card_radius(height) * s),
        fill="white",
        outline=_CARD_BORDER,
        width=max(s, round(0.016 * height * s)),  # 2 px on a query card
    )
    _draw_symbols(big, deck, values)
    if deck.n_attributes > 3 and values[3] < 0:
        _draw_asterisk(big)
    _draw_ticks(big, deck.n_values, values[4:])
    return big.resize((width, height), Image.Resampling.BOX)


def card_width(height: int) -> int:
    """The width in pixels of a card ``height`` pixels tall."""
    return round(height * _CARD_ASPECT)


def card_radius(height: int) -> float:
    """The radius in pixels of the rounded corners of a card ``height`` pixels tall."""
    return 0.09 * height


def _draw_symbols(big: Image.Image, deck: Deck, values: np.ndarray) -> None:
    """Paint the card's symbols (colour, fill, shape, count) onto the supersampled card."""
    # A deck without some of the four attributes draws value 0 of each missing one.
    colour, fill, shape, count = [*values[:4].tolist(), 0, 0, 0][:4]
    n_symbols = max(count + 1, 1) if deck.n_attributes > 3 else 1  # a wildcard count: one
    corners, (box_w, box_h) = _symbol_boxes(big.size, deck, n_symbols)
    height = big.size[1]
    stroke, period = round(0.032 * height), max(3 * _SUPERSAMPLE, round(0.05 * height))
    ink = _symbol_ink(fill, shape, box_w, box_h, stroke, period)
    for left, top in corners:
        big.paste(_symbol_colour(colour), (left, top, left + box_w, top + box_h), ink)


def _symbol_boxes(
    size: tuple[int, int], deck: Deck, n_symbols: int
) -> tuple[list[tuple[int, int]], tuple[int, int]]:
    """Where ``n_symbols`` symbols go on a supersampled card of ``size`` (width, height): the
    (left, top) corner of each one's box, and the box's (width, height). A deck's cards share
    one grid of slots, big enough for its largest count; fewer symbols sit in its middle."""
    width, height = size
    has_count = deck.n_attributes > 3
    columns = math.ceil(deck.n_values / 5) if has_count else 1
    rows = max(3, math.ceil(deck.n_values / columns)) if has_count else 2
    top, left = 0.08 * height, 0.12 * width
    # Extra attributes take a strip along the bottom edge.
    bottom = 0.08 * height + (0.2 * width if deck.n_attributes > 4 else 0)
    slot_h, slot_w = (height - top - bottom) / rows, (width - 2 * left) / columns
    box_h = round(0.78 * slot_h)
    box_w = round(min(0.95 * slot_w, 2.4 * box_h))
    used_columns = math.ceil(n_symbols / rows)
    used_rows = math.ceil(n_symbols / used_columns)  # balanced: 4 of 6 as 2 x 2, not 3 + 1
    corners = []
    for i in range(n_symbols):
        column, row = divmod(i, used_rows)
        centre_y = top + (rows - used_rows) * slot_h / 2 + (row + 0.5) * slot_h
        centre_x = left + (columns - used_columns) * slot_w / 2 + (column + 0.5) * slot_w
        corners.append((round(centre_x - box_w / 2), round(centre_y - box_h / 2)))
    return corners, (box_w, box_h)


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
        draw.line((centre_x - dx, centre_y - dy, centre_x + dx, centre_y + dy), INK, stroke)


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
def rounded_mask(width: int, height: int, radius: float, ring: float = 0.0) -> Image.Image:
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
def glyph_mask(name: str, size: int) -> Image.Image:
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
