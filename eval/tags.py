"""TensorBoard tag names: every writer in the library takes them from here."""

LOSS = "losses/train"
EVAL = {"kl": "eval/kl", "topk_overlap": "eval/topk_overlap", "entropy_bits": "eval/entropy_bits"}
LR = "charts/lr"
EXAMPLES_PER_S = "charts/examples_per_s"
GRAD_NORM = "charts/grad_norm"
LOSS_SCALE = "charts/loss_scale"
HPARAMS_TEXT = "hyperparameters"
