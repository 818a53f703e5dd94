"""Fixtures for the training tests (helpers in training_helpers.py)."""

import pytest
import torch

from training_helpers import TinyConfig, TinyNet, write_class_folder, write_seg_folder


@pytest.fixture()
def class_folder(tmp_path):
    return write_class_folder(tmp_path / "cls")


@pytest.fixture()
def seg_folder(tmp_path):
    return write_seg_folder(tmp_path / "seg")


@pytest.fixture()
def tiny_net():
    def make(num_classes=3, seed=0):
        torch.manual_seed(seed)
        return TinyNet(TinyConfig(num_classes=num_classes))
    return make
