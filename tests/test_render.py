"""Tests of the query pictures: shapes, distinct cards, highlighting, text, legend,
determinism, size, Pillow as an optional dependency, and ``python -m set_env``."""

import hashlib
import re
import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
from PIL import Image

import set_env.__main__
import set_env.render.cards as cards
import set_env.render.picture as pictures
from set_env.deck import Deck
from set_env.query import Query, Term, parse_query
from set_env.render import card_image, render_rgb, write_png

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
    green, red = pictures._RIGHT_FRAME, pictures._WRONG_FRAME
    # The key to the frames beside the answer's label shows both colours in every picture.
    assert colour_count(with_right, green) > colour_count(plain, green)
    assert colour_count(with_right, red) == colour_count(plain, red) > 0
    # A wrong key is shown too, framed red.
    with_wrong = render_rgb(query, chosen=wrong)
    assert colour_count(with_wrong, red) > colour_count(plain, red)
    assert colour_count(with_wrong, green) == colour_count(plain, green) > 0


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
    with pytest.raises(ValueError, match="env_id"):
        render_rgb(query, env_id=3)


def test_render_is_deterministic():
    query = parse_query(EIGHT_PAIRS, D27)
    first = render_rgb(query, chosen=5, env_id="SetUnion27-v0")
    for cached in (cards.card_picture, cards._symbol_ink, pictures._font):
        cached.cache_clear()  # drawn afresh, not read back from the caches
    assert np.array_equal(first, render_rgb(query, chosen=5, env_id="SetUnion27-v0"))


def test_render_is_the_same_in_a_fresh_process():
    code = (
        "import hashlib, sys; from set_env import Deck, parse_query; "
        "from set_env.render import render_rgb; "
        f"q = parse_query({EIGHT_PAIRS!r}, Deck(3, 3)); "
        "sys.stdout.write(hashlib.sha256(render_rgb(q, chosen=5).tobytes()).hexdigest())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    here = render_rgb(parse_query(EIGHT_PAIRS, D27), chosen=5)
    assert out.stdout == hashlib.sha256(here.tobytes()).hexdigest()


def test_all_81_keys_fit_in_2048():
    image = render_rgb(all_keys_query(D81), chosen=np.arange(D81.n_keys) % 2)
    assert image.shape[0] <= 2048 and image.shape[1] <= 2048


def test_oversized_pictures_are_scaled_down():
    small = pictures._fit(Image.new("RGB", (1000, 5000)))
    assert small.size == (334, 1667)  # a third, rounded up: a half would still be 2500 tall


# --- text, legend and size ---------------------------------------------------------------


def test_the_title_shows_the_env_id_and_the_query_text():
    first = render_rgb(parse_query("(012 112)", D27), env_id="SetClassic27-v0")
    other_text = render_rgb(parse_query("(012 110)", D27), env_id="SetClassic27-v0")
    other_id = render_rgb(parse_query("(012 112)", D27), env_id="SetShared27-v0")
    band = title_band(first)
    assert (band < 100).all(axis=-1).sum() > 500  # dark text, not a blank band
    assert not np.array_equal(band, title_band(other_text))
    assert not np.array_equal(band, title_band(other_id))
    # Without an env id the title is the query text alone, one line shorter.
    assert render_rgb(parse_query("(012 112)", D27)).shape[0] < first.shape[0]
    assert has_colour(first, pictures._LABEL_INK)  # the labels "query" and "answer"


def test_a_long_query_text_wraps_within_the_picture():
    image = render_rgb(all_keys_query(D27))  # {000,001,...,222}: 27 keys of text
    assert title_band(image).shape[0] > title_band(render_rgb(parse_query("{000}", D27))).shape[0]


@pytest.mark.parametrize(
    ("text", "chosen", "legend"),
    [
        ("(012 112)", None, False),
        ("{000,012,221}", None, False),
        ("(0*2 112)", None, True),
        ("<012 010> ^ (*** 1*1)", None, True),
        ("(012 112)", 0, False),  # the frames' key sits beside the answer's label
    ],
)
def test_a_legend_for_wildcard_queries_only(text, chosen, legend):
    # The legend sits below a second separator line.
    assert separator_lines(render_rgb(parse_query(text, D27), chosen=chosen)) == 1 + legend


def test_the_legend_explains_each_wildcard_attribute_of_the_query():
    assert len(pictures._wildcard_entries(parse_query("(0*2 112)", D27))) == 1  # fill
    assert len(pictures._wildcard_entries(parse_query(EIGHT_PAIRS, D27))) == 3
    assert len(pictures._wildcard_entries(parse_query("(0*2* 1120)", D81))) == 2  # fill, count


def test_pictures_are_at_least_twice_the_old_size():
    # The numpy renderer drew a classic query and its answer in 130 x 173 pixels, a query
    # card 64 pixels tall in a pair box of 64 + 2 * 6.
    image = render_rgb(parse_query("(111 202)", D27), chosen=2)
    assert image.shape[0] >= 2 * 173 and image.shape[1] >= 2 * 130
    pair_box = np.flatnonzero(row_has_colour(image, pictures._TERM_BOXES["pair"]))
    assert pair_box[-1] - pair_box[0] + 1 >= 2 * (64 + 2 * 6)


def test_the_env_draws_its_id_and_its_chosen_key():
    env = gym.make("SetUnion27-v0", render_mode="rgb_array")
    _, info = env.reset(seed=0)
    env.step(4)
    query = parse_query(info["query"], D27)
    assert np.array_equal(env.render(), render_rgb(query, chosen=4, env_id="SetUnion27-v0"))


# --- Pillow, matplotlib and PNG files ----------------------------------------------------


def test_without_pillow_a_picture_raises_dependency_not_installed(monkeypatch):
    monkeypatch.setitem(sys.modules, "PIL", None)  # import PIL now fails
    for module in ("set_env.render.cards", "set_env.render.picture"):
        monkeypatch.delitem(sys.modules, module)
    env = gym.make("SetUnion27-v0", render_mode="rgb_array")
    env.reset(seed=0)
    with pytest.raises(gym.error.DependencyNotInstalled, match="pip install pillow"):
        env.render()
    with pytest.raises(gym.error.DependencyNotInstalled, match="pip install pillow"):
        set_env.render.card_image(D27, 0)
    words = gym.make("SetUnion27-v0", render_mode="ansi")
    words.reset(seed=0)
    assert words.render().startswith("query: ")


def test_set_env_runs_without_importing_pillow():
    code = (
        "import sys, gymnasium as gym, set_env; "
        "env = gym.make('SetUnion27-v0', render_mode='ansi'); env.reset(seed=0); env.step(0); "
        "env.render(); print('PIL' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_pictures_need_no_matplotlib(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # Pillow's own font instead
    pictures._font.cache_clear()
    try:
        image = render_rgb(parse_query("(0*2 112)", D27), env_id="SetWildcard27-v0")
    finally:
        pictures._font.cache_clear()
    assert image.dtype == np.uint8 and (title_band(image) < 100).all(axis=-1).sum() > 500


def test_write_png_is_lossless(tmp_path):
    image = render_rgb(parse_query(EIGHT_PAIRS, D27), chosen=3)
    write_png(tmp_path / "query.png", image)
    assert np.array_equal(np.asarray(Image.open(tmp_path / "query.png").convert("RGB")), image)
    with pytest.raises(ValueError, match="image must be"):
        write_png(tmp_path / "grey.png", image[..., 0])
    with pytest.raises(ValueError, match="image must be"):
        write_png(tmp_path / "float.png", image.astype(float))


# --- python -m set_env ------------------------------------------------------------------


def test_main_help_names_the_program_every_flag_and_examples(capsys):
    with pytest.raises(SystemExit) as raised:
        set_env.__main__.main(["--help"])
    assert raised.value.code == 0
    text = capsys.readouterr().out
    assert text.startswith("usage: python -m set_env ")
    assert "--seed SEED" in text and "(default: 0)" in text
    assert "--deck {27,81}" in text and "(default: 27)" in text and "--png DIR" in text
    examples = text.split("\nexamples:\n")[1].splitlines()
    assert examples and all(line.strip().startswith("python -m set_env") for line in examples)


def test_main_shows_what_each_game_is(tmp_path, capsys):
    set_env.__main__.main(["--seed", "2", "--png", str(tmp_path)])
    shown = shown_queries(capsys.readouterr().out)
    assert len(shown) == 6 and all(seed >= 2 for seed, _, _ in shown.values())
    assert shown["SetClassic27-v0"][0] == shown["SetShared27-v0"][0] == 2
    assert "*" in shown["SetWildcard27-v0"][1] and "^" in shown["SetSymDiff27-v0"][1]
    for env_id in ("SetUnion27-v0", "SetSymDiff27-v0", "SetShatter27-v0"):
        assert 1 < shown[env_id][2] <= 13, env_id  # several answer keys, at most half
    # Each picture is the env's render of the query shown, its first answer key chosen.
    for env_id, (_, text, _) in shown.items():
        picture = np.asarray(Image.open(tmp_path / f"{env_id}.png").convert("RGB"))
        query = parse_query(text, D27)
        key = int(np.flatnonzero(query.positives)[0])
        assert np.array_equal(picture, render_rgb(query, chosen=key, env_id=env_id)), env_id


# --- helpers ------------------------------------------------------------------------------


def shown_queries(out: str) -> dict[str, tuple[int, str, int]]:
    """env id -> (seed, query text, answer size), read from python -m set_env's output."""
    shown = {}
    for block in out.split("== ")[1:]:
        lines = block.splitlines()
        env_id, seed = re.match(r"(\S+), seed (\d+)", lines[0]).groups()
        size = int(re.search(r"^answer \((\d+)\)", block, re.MULTILINE).group(1))
        shown[env_id] = (int(seed), lines[1].removeprefix("query: "), size)
    return shown


def title_band(image: np.ndarray) -> np.ndarray:
    """The rows above the query's first term box: the title, the query text, the label."""
    boxes = [row_has_colour(image, colour) for colour in pictures._TERM_BOXES.values()]
    return image[: np.flatnonzero(np.logical_or.reduce(boxes))[0]]


def separator_lines(image: np.ndarray) -> int:
    """How many separator lines cross the picture from margin to margin."""
    inside = image[:, pictures._MARGIN : -pictures._MARGIN]
    full = (inside == np.array(pictures._SEPARATOR, dtype=np.uint8)).all(axis=(1, 2))
    return int(full[0] + (full[1:] & ~full[:-1]).sum())


def row_has_colour(image: np.ndarray, colour) -> np.ndarray:
    """Rows with 50 or more pixels of ``colour``: a box's fill, not a grey of antialiased
    text."""
    return (image == np.array(colour, dtype=np.uint8)).all(axis=-1).sum(axis=1) >= 50


def has_colour(image: np.ndarray, colour) -> bool:
    return colour_count(image, colour) > 0


def colour_count(image: np.ndarray, colour) -> int:
    return int((image == np.array(colour, dtype=np.uint8)).all(axis=-1).sum())
