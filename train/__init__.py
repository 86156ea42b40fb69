"""Supervised training of scorers (``python -m train``), for notebooks: ``train.train(...)``."""

from train.config import TrainConfig
from train.trainer import Trainer, train

__all__ = ["TrainConfig", "Trainer", "train"]
