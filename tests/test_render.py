"""Tests of the query pictures: shapes, distinct cards, highlighting, determinism, size."""

import numpy as np
import pytest

from set_env import render
from set_env.deck import Deck
from set_env.query import Query, Term, parse_query
from set_env.render import card_image, render_rgb

D27, D81, D243 = Deck(3, 3), Deck(4, 3), Deck(5, 3)

EIGHT_PAIRS = (
    "(0*2 112) | (0*1 201) ^ (120 22*) | (*** 000) ^ (001 1**) | (0*0 221) ^ (102 2*1) | (011 110)"
)
QUERIES = [
    (D27, "(0*2 112)"),
    (D27, EIGHT_PAIRS),
    (D27, "<012 010>"),
    (D27, "{000,012,221}"),
    (D27, "<012 010> ^ {000,012,221} | (*** 1*1)"),
    (D81, "(0*2* 1120)"),
    (D81, "(0*2* 1120) | (2222 1*1*) ^ <0120 0101>"),
    (D81, "{0000,1111,2222,0012}"),
    (D243, "(0*2*1 11201) ^ <01201 01122> | (22222 ****0)"),
    (D243, "{00000,12012,22222}"),
]


def all_keys_query(deck: Deck) -> Query:
    return Query(deck, (Term("subset", tuple(deck.key_to_card)),))


@pytest.mark.parametrize(("deck", "text"), QUERIES)
def test_render_is_a_uint8_rgb_picture(deck, text):
    query = parse_query(text, deck)
    image = render_rgb(query, chosen=0)
    assert image.dtype == np.uint8
    assert image.ndim == 3 and image.shape[2] == 3
    assert 0 < image.shape[0] <= 2048 and 0 < image.shape[1] <= 2048


@pytest.mark.parametrize("deck", [D27, D81, D243])
def test_card_image_shape_and_caching(deck):
    image = card_image(deck, deck.n_cards - 1, height=40)
    assert image.shape == (40, 28, 3) and image.dtype == np.uint8
    assert not image.flags.writeable
    assert card_image(deck, deck.n_cards - 1, height=40) is image
    assert card_image(deck, 0).shape == (48, round(48 * 0.7), 3)


@pytest.mark.parametrize("deck", [D27, D81])
def test_every_card_has_its_own_image(deck):
    images = {card_image(deck, card, height=32).tobytes() for card in range(deck.n_cards)}
    assert len(images) == deck.n_cards


def test_wildcard_cards_differ_from_every_plain_card():
    plain = {card_image(D81, card).tobytes() for card in D81.key_to_card}
    wild = np.flatnonzero((D81.card_values < 0).any(axis=1))
    assert len(wild) == D81.n_cards - D81.n_keys
    assert all(card_image(D81, card).tobytes() not in plain for card in wild)


def test_extra_attributes_change_the_card():
    texts = ("01201", "01200", "01202", "0120*")
    images = {card_image(D243, D243.card_id(text)).tobytes() for text in texts}
    assert len(images) == len(texts)


def test_invalid_cards_are_refused():
    with pytest.raises(ValueError, match="card id"):
        card_image(D27, D27.n_cards)
    with pytest.raises(ValueError, match="height"):
        card_image(D27, 0, height=4)


def test_chosen_changes_the_picture_and_frames_right_green_wrong_red():
    query = parse_query(EIGHT_PAIRS, D27)
    right = int(np.flatnonzero(query.positives)[0])
    wrong = int(np.flatnonzero(~query.positives)[0])
    plain = render_rgb(query)
    with_right = render_rgb(query, chosen=right)
    assert with_right.shape == plain.shape and not np.array_equal(with_right, plain)
    assert has_colour(with_right, render._RIGHT_FRAME)
    assert not has_colour(with_right, render._WRONG_FRAME)
    # A wrong key is shown too, framed red.
    with_wrong = render_rgb(query, chosen=wrong)
    assert has_colour(with_wrong, render._WRONG_FRAME)
    assert not has_colour(with_wrong, render._RIGHT_FRAME)


def test_chosen_key_and_one_hot_selection_draw_the_same():
    query = parse_query("(0*2 112)", D27)
    key = int(np.flatnonzero(query.positives)[0])
    selection = np.zeros(D27.n_keys, dtype=np.int64)
    selection[key] = 1
    assert np.array_equal(render_rgb(query, chosen=key), render_rgb(query, chosen=selection))


def test_positives_override_the_answer():
    query = parse_query("(0*2 112)", D27)
    assert not np.array_equal(render_rgb(query), render_rgb(query, np.ones(D27.n_keys, bool)))
    empty = render_rgb(query, np.zeros(D27.n_keys, bool))  # the empty-set sign
    assert empty.dtype == np.uint8 and empty.ndim == 3


def test_invalid_arguments_are_refused():
    query = parse_query("(0*2 112)", D27)
    with pytest.raises(ValueError, match="chosen"):
        render_rgb(query, chosen=D27.n_keys)
    with pytest.raises(ValueError, match="chosen"):
        render_rgb(query, chosen=np.ones(3))
    with pytest.raises(ValueError, match="positives"):
        render_rgb(query, positives=np.ones(3, bool))


def test_render_is_deterministic():
    query = parse_query(EIGHT_PAIRS, D27)
    first = render_rgb(query, chosen=5)
    render._card_pixels.cache_clear()  # drawn afresh, not read back from the cache
    assert np.array_equal(first, render_rgb(query, chosen=5))


def test_all_81_keys_fit_in_2048():
    image = render_rgb(all_keys_query(D81), chosen=np.arange(D81.n_keys) % 2)
    assert image.shape[0] <= 2048 and image.shape[1] <= 2048


def test_oversized_pictures_are_scaled_down():
    image = np.zeros((5000, 1000, 3), dtype=np.uint8)
    small = render._fit(image)
    assert max(small.shape[:2]) <= 2048 and small.dtype == np.uint8


def has_colour(image: np.ndarray, colour) -> bool:
    return bool((image == np.array(colour, dtype=np.uint8)).all(axis=-1).any())
