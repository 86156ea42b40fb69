"""The analysis tools on small decks, against counts and ranks worked out by hand."""

import importlib
import json

import numpy as np
import pytest

from agents.checkpoint import FORMAT_VERSION, METADATA
from eval import analysis
from eval.analysis import main as analysis_cli
from eval.sets import make_eval_set
from set_env import rules
from set_env.files import write_json_atomic

PNG = b"\x89PNG\r\n\x1a\n"
NINE_CARDS = {"n_attributes": 2, "n_values": 3}  # the 3 x 3 grid of cards
THREE_CARDS = {"n_attributes": 1, "n_values": 3}


def run_cli(capsys, *argv) -> dict:
    analysis_cli(list(argv))
    return json.loads(capsys.readouterr().out)


def cli_error(capsys, *argv) -> str:
    with pytest.raises(SystemExit) as stop:
        analysis_cli(list(argv))
    assert stop.value.code == 2
    return capsys.readouterr().err


# --- subsets -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "kwargs", "expected"),
    [
        # classic: every pair completes to one card, and (c, c) to c itself: each singleton
        ("SetClassic27-v0", {}, 27),
        ("SetClassic27-v0", NINE_CARDS, 9),
        # wildcard: each attribute a value or *, i.e. one of 4 sub-cube sides: 4 ** a
        ("SetWildcard27-v0", {}, 64),
        ("SetWildcard27-v0", NINE_CARDS, 16),
        # shared: 9 single values; and two cards sharing two of three values: 3 * 9 unions
        ("SetShared27-v0", {}, 9 + 27),
        ("SetShared27-v0", NINE_CARDS, 6),  # two distinct cards share one value at most
        ("SetShatter27-v0", NINE_CARDS, 2**9 - 1),  # every non-empty subset
        ("SetShatter27-v0", {}, 2**27 - 1),
    ],
)
def test_exact_subsets_are_the_hand_counts(env, kwargs, expected):
    result = analysis.subsets(env, exact=True, env_kwargs=kwargs)
    assert result["distinct"] == expected
    assert result["log2"] == pytest.approx(np.log2(expected), abs=1e-4)
    assert result["draws"] is None and result["exact"] is True


@pytest.mark.parametrize("env", ["SetClassic27-v0", "SetWildcard27-v0", "SetShatter27-v0"])
def test_draws_find_every_subset_of_a_small_game_and_no_other(env):
    exact = analysis.subsets(env, exact=True, env_kwargs=NINE_CARDS)["distinct"]
    result = analysis.subsets(env, draws=30_000, seed=1, env_kwargs=NINE_CARDS)
    # 30k draws of at most 511 subsets: missing one has probability ~ 511 e^-58
    assert result["distinct"] == exact
    draws, distinct = np.array(result["growth"]).T
    assert draws[-1] == 30_000 and distinct[-1] == exact
    assert np.all(np.diff(distinct) >= 0) and np.all(distinct <= draws)


def test_drawn_answers_are_the_games_non_empty_answers():
    game = analysis.env_game("SetWildcard27-v0", NINE_CARDS)
    seen, _ = analysis.drawn_subsets(game, 5000)
    every = analysis.distinct_rows(rules.pack(game.enumerate(split=None).positives))
    assert seen.any(axis=1).all()
    assert set(seen[:, 0].tolist()) <= set(every[:, 0].tolist())


@pytest.mark.parametrize("split", ["train", "test", None])
def test_answer_chunks_are_n_non_empty_answers_of_the_split(split):
    game = analysis.env_game("SetWildcard27-v0", NINE_CARDS)
    chunks = list(game.answer_chunks(20_000, np.random.default_rng(0), split))
    answers = np.concatenate(chunks)
    assert len(answers) == 20_000 and len(chunks) > 1  # drawn a cache-sized chunk at a time
    assert answers.any(axis=1).all()
    of_split = rules.pack(game.enumerate(split=split).positives)[:, 0]
    assert set(answers[:, 0].tolist()) <= set(of_split.tolist())
    assert list(game.answer_chunks(0, np.random.default_rng(0))) == []
    with pytest.raises(ValueError, match="split must be one of"):
        next(game.answer_chunks(1, np.random.default_rng(0), "dev"))


def test_draws_of_union_count_fewer_subsets_than_draws(capsys):
    result = run_cli(capsys, "subsets", "--env", "SetUnion27-v0", "--draws", "20000")
    assert result["env"] == "SetUnion27-v0" and result["draws"] == 20_000
    assert 10_000 < result["distinct"] < 20_000  # repeats, but most of 2^21+ subsets are new
    assert result["log2"] == pytest.approx(np.log2(result["distinct"]), abs=1e-4)


def test_subsets_cli_writes_its_figure(capsys, tmp_path):
    path = tmp_path / "subsets.png"
    result = run_cli(
        capsys, "subsets", "--env", "SetClassic27-v0", "--draws", "9000", "--plot", str(path)
    )
    assert result["distinct"] == 27
    assert path.read_bytes()[:8] == PNG


def test_subsets_errors(capsys):
    assert "error: cannot count the union game" in cli_error(
        capsys, "subsets", "--env", "SetUnion27-v0", "--exact"
    )
    assert "error: env 'SetNope27-v0'" in cli_error(
        capsys, "subsets", "--env", "SetNope27-v0", "--exact"
    )
    assert "draws must be an integer >= 1" in cli_error(
        capsys, "subsets", "--env", "SetUnion27-v0", "--draws", "0"
    )
    with pytest.raises(ValueError, match="not both"):
        analysis.subsets("SetClassic27-v0", draws=10, exact=True)


# --- rank ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("game", "attributes", "values", "rank"),
    [
        ("classic", 3, 3, 27),  # the singletons: an identity matrix
        ("classic", 1, 4, 4),
        ("wildcard", 1, 3, 3),  # {a}, the third card, and everything
        # shared: a union of value classes, i.e. any function of a - 1 attributes or fewer:
        # v^a - (v-1)^a dimensions; on two attributes, the 2v value classes less one relation
        ("shared", 2, 3, 5),
        ("shared", 2, 5, 9),
        ("shared", 3, 3, 27 - 8),
        ("shared", 4, 3, 81 - 16),
    ],
)
def test_rank_is_the_hand_worked_value(game, attributes, values, rank):
    result = analysis.rank(game, attributes, values)
    assert result["rank"] == rank
    assert result["keys"] == values**attributes


def test_rank_counts_the_distinct_queries():
    # classic on 27 cards: unordered pairs, repeats allowed: 27 * 28 / 2
    assert analysis.rank("classic", 3, 3)["queries"] == 378


def test_exact_rank_agrees_with_floating_point_and_is_exact():
    rng = np.random.default_rng(0)
    for shape in [(5, 9), (40, 12), (12, 40)]:
        matrix = rng.random(shape) < 0.4
        expected = np.linalg.matrix_rank(matrix.astype(float))
        assert analysis.exact_rank(matrix) == expected
    low_rank = (rng.random((30, 4)) < 0.5).astype(int) @ (rng.random((4, 20)) < 0.5)
    assert analysis.exact_rank(low_rank > 0) == np.linalg.matrix_rank((low_rank > 0) * 1.0)
    # [[1, 1], [1, -1]] has determinant -2: singular mod 2, so one prime is not enough
    assert analysis.rank_mod(np.array([[1, 1], [1, -1]]), 2) == 1
    assert analysis.rank_mod(np.array([[1, 1], [1, -1]]), 2**31 - 1) == 2


def test_rank_table_and_figures(capsys, tmp_path):
    path = tmp_path / "rank.png"
    result = run_cli(capsys, "rank", "--table", "--decks", "1x3,2x3", "--plot", str(path))
    table = {(r["game"], r["attributes"]): r["rank"] for r in result["table"]}
    assert table == {
        ("classic", 1): 3,
        ("wildcard", 1): 3,
        ("classic", 2): 9,
        ("wildcard", 2): 9,
        ("shared", 2): 5,
    }
    assert path.read_bytes()[:8] == PNG
    single = tmp_path / "matrix.png"
    result = run_cli(
        capsys,
        "rank",
        "--game",
        "shared",
        "--attributes",
        "2",
        "--values",
        "3",
        "--plot",
        str(single),
    )
    assert result == {
        "game": "shared",
        "attributes": 2,
        "values": 3,
        "queries": 18,
        "keys": 9,
        "rank": 5,
    }
    assert single.read_bytes()[:8] == PNG


def test_rank_table_lists_take_spaces_commas_or_both(capsys):
    spaced = run_cli(capsys, "rank-table", "--decks", "1x3", "2x3", "--games", "classic", "shared")
    commas = run_cli(capsys, "rank-table", "--decks", "1x3,2x3", "--games", "classic,shared")
    mixed = run_cli(capsys, "rank-table", "--decks", "1x3,", "2x3", "--games", "classic,", "shared")
    assert spaced == commas == mixed
    games_decks = {(r["game"], r["attributes"]) for r in spaced["table"]}
    assert games_decks == {("classic", 1), ("classic", 2), ("shared", 2)}


def test_rank_table_keeps_its_old_spelling(capsys):
    new = run_cli(capsys, "rank-table", "--decks", "2x3")
    analysis_cli(["rank", "--table", "--decks", "2x3"])
    old = capsys.readouterr()
    assert json.loads(old.out) == new
    assert "note: 'rank --table' is now 'rank-table'" in old.err


def test_list_flags_defaults_and_forms():
    parser = analysis.build_parser()
    table = parser.parse_args(["rank-table"])
    assert table.decks == [(2, 3), (3, 3), (2, 4), (2, 5), (3, 4), (4, 3)]
    assert table.games == list(analysis.RANK_GAMES)
    free = parser.parse_args(["free-embedding", "--env", "E"])
    assert free.dims == [1, 2, 4, 8, 16, 27]
    free = parser.parse_args(["free-embedding", "--env", "E", "--dims", "2", "4,8", "--steps", "9"])
    assert free.dims == [2, 4, 8] and free.steps == 9


def test_rank_markdown():
    text = analysis.markdown_table(analysis.rank_table([(2, 3)]))
    assert "| 2x3 | 9 | 9 (45) | 9 (108) | 5 (18) |" in text


def test_rank_errors(capsys):
    assert "game must be one of" in cli_error(
        capsys, "rank", "--game", "union", "--attributes", "3", "--values", "3"
    )
    assert "the following arguments are required: --attributes, --values" in cli_error(
        capsys, "rank", "--game", "classic"
    )
    assert "--decks: a deck is ATTRIBUTESxVALUES" in cli_error(
        capsys, "rank", "--table", "--decks", "27"
    )
    assert "n_values must be" in cli_error(capsys, "rank", "--table", "--decks", "3x2")
    assert "--games: unknown ['shatter']" in cli_error(
        capsys, "rank", "--table", "--games", "shatter"
    )
    assert "argument --games: expected at least one item" in cli_error(
        capsys, "rank-table", "--games", ","
    )


# --- pmi -----------------------------------------------------------------------------------


def test_joints_are_distributions():
    for name in analysis.PMI_DATASETS:
        p = analysis.joint(name)
        assert p.sum() == pytest.approx(1) and (p >= 0).all()
    dice = analysis.joint("dice")
    assert dice.shape == (11, 6)
    assert dice[0, 0] == pytest.approx(1 / 36)  # sum 2: both dice 1, max 1
    assert dice[5, 5] == pytest.approx(2 / 36)  # sum 7, max 6: (1, 6) and (6, 1)
    independent = analysis.joint("independent")
    assert analysis.pmi_table(independent) == pytest.approx(np.full((6, 6), 1 / 36))


def test_infonce_over_counts_is_the_batch_loss():
    import torch

    rng = np.random.default_rng(0)
    p = analysis.joint("dice")
    scores = torch.as_tensor(rng.normal(size=p.shape))
    x, y = np.divmod(rng.choice(p.size, size=50, p=p.ravel()), p.shape[1])
    logits = scores[x][:, y]  # (B, B)
    target = torch.arange(50)
    ce = torch.nn.functional.cross_entropy
    expected = (ce(logits, target) + ce(logits.T, target)) / 2
    counts = np.zeros(p.shape)
    np.add.at(counts, (x, y), 1)
    loss = analysis.pmi_loss("infonce", scores, None, torch.as_tensor(counts))
    assert loss.item() == pytest.approx(expected.item())


def test_infonce_learns_the_pmi_and_likelihoods_the_joint(capsys, tmp_path):
    path = tmp_path / "pmi.png"
    result = run_cli(capsys, "pmi", "--steps", "1000", "--plot", str(path))
    assert set(result) == set(analysis.PMI_DATASETS)
    for name in analysis.PMI_DATASETS:
        nll, pseudo, infonce = (result[name][o] for o in analysis.PMI_OBJECTIVES)
        assert nll["kl_joint"] < 0.01 and nll["kl_pmi"] > 0.3
        assert infonce["kl_joint"] > 0.25
        if name == "dice":
            # The throw (1, 1) is alone in its row (sum 2) and column (max 1): the row- and
            # column-normalised objectives never weigh its score against another, so it stays
            # wherever the optimiser leaves it. Closer to their targets all the same.
            assert infonce["kl_pmi"] < infonce["kl_joint"] / 4
            assert pseudo["kl_joint"] < pseudo["kl_pmi"] / 4
        else:
            assert infonce["kl_pmi"] < 0.01
            assert pseudo["kl_joint"] < 0.01 and pseudo["kl_pmi"] > 0.3
    assert path.read_bytes()[:8] == PNG


def test_pmi_errors(capsys):
    assert "batch >= 2" in cli_error(capsys, "pmi", "--batch", "1")
    with pytest.raises(ValueError, match="dataset must be one of"):
        analysis.joint("coins")


# --- free embedding ------------------------------------------------------------------------


def test_free_embedding_has_a_critical_dimension():
    # wildcard on three cards: {a}, {the third} and all three. With d = 1 the logits are
    # lines q * k_i + b_i in q: all three equal only where they cross at one point, and then
    # the middle line is never alone on top; d = 2 fits all of them.
    result = analysis.free_embedding(
        "SetWildcard27-v0", dims=[1, 2], steps=600, env_kwargs=THREE_CARDS, split="all"
    )
    assert result["subsets"] == 4 and result["queries"] == 9
    assert result["dims"][1] > 0.05
    assert result["dims"][2] < 0.01
    assert result["critical_dim"] == 2


def test_free_embedding_fits_classic_at_full_dimension():
    result = analysis.free_embedding("SetClassic27-v0", dims=[27], steps=300, split="all")
    assert result["queries"] == 378 and result["subsets"] == 27
    assert result["dims"][27] < 0.01 and result["critical_dim"] == 27


def shatter_nine(family: str, dims, steps: int = 300, **size) -> dict:
    """free_embedding on shatter's 9-card deck: 9 keys, all 511 non-empty subsets, alike."""
    return analysis.free_embedding(
        "SetShatter27-v0",
        dims=dims,
        steps=steps,
        env_kwargs=NINE_CARDS,
        distribution="uniform",
        split="all",
        family=family,
        **size,
    )


def test_single_vectors_need_n_keys_minus_one_dimensions_to_shatter():
    # KL -> 0 needs every subset to be a face of the keys' hull: a simplex, d >= 9 - 1.
    # Measured at 300 steps: d = 7 stops at 0.014 (0.008 at 2000), d = 8 reaches 2e-4.
    result = shatter_nine("single", [7, 8])
    assert result["subsets"] == 2**9 - 1 and result["family"] == "single"
    assert result["dims"][7] > 0.005 and result["dims"][8] < 0.001
    assert result["floats_per_key"] == {7: 8, 8: 9} and "vectors" not in result


def test_multivector_shatters_in_fewer_dimensions():
    # Measured at 500 steps, m = 4: d = 2 stops at 0.080, d = 3 reaches 0.002 (13 floats a key).
    result = shatter_nine("multivector", [2, 3], steps=500, vectors=4)
    assert result["dims"][2] > 0.03 and result["dims"][3] < 0.006
    assert result["critical_dim"] == 3 and result["vectors"] == 4
    assert result["floats_per_key"] == {2: 9, 3: 13}


def test_mixture_shatters_in_fewer_dimensions():
    # Measured at 300 steps, P = 4: d = 1 stops at 0.034, d = 2 reaches 0.0005 (13 floats a key).
    result = shatter_nine("mixture", [1, 2], components=4)
    assert result["dims"][1] > 0.015 and result["dims"][2] < 0.002
    assert result["critical_dim"] == 2 and result["components"] == 4
    assert result["floats_per_key"] == {1: 9, 2: 13}


def test_one_vector_or_component_is_the_single_family():
    answers, weights, _ = analysis.answers_to_fit(
        "SetWildcard27-v0", env_kwargs=THREE_CARDS, split="all"
    )
    single = analysis.fit_free_embedding(answers, weights, 2, 50)
    for family in ("multivector", "mixture"):
        kl = analysis.fit_free_embedding(
            answers, weights, 2, 50, family=family, vectors=1, components=1
        )
        assert kl == pytest.approx(single, abs=1e-5)


def test_free_embedding_bound_keys_single_as_before(monkeypatch, tmp_path):
    module = importlib.import_module("eval.analysis.free_embedding")
    keys = []
    monkeypatch.setattr(module, "_cached_bound", lambda key: keys.append(key) or 0.5)
    module.free_embedding_bound("SetClassic27-v0", [2])
    module.free_embedding_bound("SetClassic27-v0", [2], family="mixture", components=3)
    assert json.loads(keys[0])[-2:] == ["size_weighted", "test"]
    assert json.loads(keys[1])[-2:] == ["mixture", 3]


def test_free_embedding_fits_the_evaluation_sets_queries():
    # Finite games: every query of the split, weighted by answer size unless uniform.
    answers, weights, n = analysis.answers_to_fit("SetWildcard27-v0")
    test = make_eval_set("SetWildcard27-v0", 64).positives
    all_answers, all_weights, all_n = analysis.answers_to_fit("SetWildcard27-v0", split="all")
    assert all_n == 1377 and len(all_answers) == 64 and n < all_n
    _, uniform, _ = analysis.answers_to_fit("SetWildcard27-v0", distribution="uniform")
    assert uniform.sum() == n and weights.sum() > n
    assert {tuple(a) for a in test} <= {tuple(a) for a in answers}
    # Infinite games: the evaluation set itself, drawn from that distribution.
    shatter = make_eval_set("SetShatter27-v0", 64, distribution="uniform").positives
    answers, weights, n = analysis.answers_to_fit("SetShatter27-v0", 64, distribution="uniform")
    assert n == 64 and weights.sum() == 64
    assert {tuple(a) for a in answers} == {tuple(a) for a in shatter}


def test_free_embedding_cli_samples_test_queries_and_overlays_a_sweep(capsys, tmp_path):
    for name, agent, dim, kl in (
        ("a", "contrastive", 4, 0.3),
        ("b", "contrastive", 27, 0.01),
        ("c", "classifier", None, 0.001),
    ):
        (tmp_path / name).mkdir()
        state = {
            "format": FORMAT_VERSION,
            "env_id": "SetUnion27-v0",
            "agent": agent,
            "agent_config": {"dim": dim} if dim else {},
            "metrics": {"kl": kl},
        }
        write_json_atomic(tmp_path / name / METADATA, state)
    path = tmp_path / "free.png"
    result = run_cli(
        capsys,
        "free-embedding",
        "--env",
        "SetUnion27-v0",
        "--dims",
        "2,8",
        "--queries",
        "64",
        "--steps",
        "50",
        "--sweep",
        str(tmp_path),
        "--plot",
        str(path),
    )
    assert result["env"] == "SetUnion27-v0" and result["queries"] == 64
    assert set(result["dims"]) == {"2", "8"}
    assert result["sweep"] == {"4": 0.3, "27": 0.01}
    assert path.read_bytes()[:8] == PNG


def test_free_embedding_errors(capsys, tmp_path):
    assert "--dims must be positive integers" in cli_error(
        capsys, "free-embedding", "--env", "SetClassic27-v0", "--dims", "0,2"
    )
    assert "argument --dims: must be integers" in cli_error(
        capsys, "free-embedding", "--env", "SetClassic27-v0", "--dims", "two"
    )
    assert "--sweep: no contrastive run" in cli_error(
        capsys, "free-embedding", "--env", "SetClassic27-v0", "--sweep", str(tmp_path)
    )
    assert "--plot: folder" in cli_error(
        capsys, "free-embedding", "--env", "SetClassic27-v0", "--plot", str(tmp_path / "no/x.png")
    )
    assert "--vectors must be an integer >= 1" in cli_error(
        capsys,
        "free-embedding",
        "--env",
        "SetClassic27-v0",
        "--family",
        "multivector",
        "--vectors",
        "0",
    )
    assert "argument --family: invalid choice" in cli_error(
        capsys, "free-embedding", "--env", "SetClassic27-v0", "--family", "bag"
    )
    with pytest.raises(ValueError, match="--family must be one of single, multivector"):
        analysis.free_embedding("SetClassic27-v0", family="bag")
