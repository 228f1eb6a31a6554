"""Checkpoint loading: folders, single files (4- and 9-channel), refusals, sharing."""
import pytest
import torch

from latentloom.app.core.errors import UserError
from latentloom.app.sd.models import ModelStore


def same_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_single_file_loads_the_same_weights_as_the_folder(tiny_single_file, tiny_pipe):
    path, config = tiny_single_file
    store = ModelStore("cpu")
    comps = store.get(store.load("id", str(path), str(config)))
    for name in ("unet", "vae", "text_encoder"):
        assert same_weights(comps[name], getattr(tiny_pipe, name)), name
    assert comps["inpaint"] is False


def test_9_channel_single_file_is_detected_as_inpainting(tmp_path):
    from tests.support.original_layout import save_original_checkpoint, write_config_dir
    from tests.tiny import tiny_pipeline
    pipe = tiny_pipeline(in_channels=9)
    save_original_checkpoint(pipe, tmp_path / "inpaint.safetensors")
    write_config_dir(pipe, tmp_path / "config")
    store = ModelStore("cpu")
    comps = store.get(store.load("id9", str(tmp_path / "inpaint.safetensors"), str(tmp_path / "config")))
    assert comps["inpaint"] is True and comps["unet"].config.in_channels == 9
    assert same_weights(comps["unet"], pipe.unet)


def test_same_identity_loads_once(tiny_dir):
    store = ModelStore("cpu")
    k1 = store.load("id", str(tiny_dir))
    k2 = store.load("id", str(tiny_dir))
    assert k1 == k2 and store.loads == 1


def test_evicted_checkpoints_reload_on_demand(tiny_dir):
    store = ModelStore("cpu", max_models=1)
    a = store.load("a", str(tiny_dir))
    store.load("b", str(tiny_dir))
    assert store.loads == 2
    assert store.get(a)["unet"] is not None and store.loads == 3


@pytest.mark.parametrize("name,content,message", [
    ("notes.txt", b"hello", "unsupported checkpoint file type"),
    ("broken.safetensors", b"\x08\x00\x00\x00\x00\x00\x00\x00{not json", "not a valid safetensors file"),
])
def test_bad_files_give_clear_errors(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(UserError, match=message):
        ModelStore("cpu").load("x", str(path))


def test_folder_that_is_not_a_model(tmp_path):
    with pytest.raises(UserError, match="not a diffusers model"):
        ModelStore("cpu").load("x", str(tmp_path))
