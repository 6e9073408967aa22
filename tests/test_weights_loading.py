"""Loading: with both model.safetensors and pytorch_model.bin present the safetensors
weights are loaded (a .bin is a pickle: loading it can run code); a checkpoint with
only a .bin still loads. trust_remote_code stays off unless asked."""

import shutil

import pytest
import torch
from safetensors.torch import load_file

from conftest import make_lm


def first_weight(lm) -> torch.Tensor:
    return lm.model.get_input_embeddings().weight.detach().clone()


@pytest.fixture
def both_formats(tiny_checkpoints, tmp_path):
    ckpt = tmp_path / "both"
    shutil.copytree(tiny_checkpoints["llava_onevision"], ckpt)
    state = load_file(str(ckpt / "model.safetensors"))
    torch.save({k: v + 1.0 for k, v in state.items()}, ckpt / "pytorch_model.bin")  # every weight differs
    return ckpt


def test_safetensors_preferred_over_bin(both_formats):
    lm = make_lm(both_formats)
    safe = load_file(str(both_formats / "model.safetensors"))
    emb = next(v for k, v in safe.items() if k.endswith("embed_tokens.weight"))
    assert torch.equal(first_weight(lm), emb)
    assert lm.args.trust_remote_code is False


def test_bin_only_checkpoint_still_loads(both_formats):
    (both_formats / "model.safetensors").unlink()
    lm = make_lm(both_formats)
    state = torch.load(both_formats / "pytorch_model.bin", weights_only=True)
    emb = next(v for k, v in state.items() if k.endswith("embed_tokens.weight"))
    assert torch.equal(first_weight(lm), emb)
