"""VAE files of their own (LoadVAE): diffusers folders, or single .safetensors in the original layout
such as vae-ft-mse-840000-ema-pruned.safetensors (bare `encoder.*`/`decoder.*` keys or
`first_stage_model.*`), loaded offline with the shipped SD 1.x VAE config."""
import json
import logging
from pathlib import Path

from latentloom.app.core.errors import UserError
from latentloom.app.paths import RESOURCES
from latentloom.app.sd.safetensors_header import read_header

CONFIG_DIR = RESOURCES / "sd15" / "vae"
LDM_KEY = "decoder.conv_in.weight"


def _bad(name, why):
    return UserError(f"param 'path': {name} is not an SD 1.x VAE ({why})")


def _folder(path):
    """The folder holding the VAE's config.json: the folder itself or a pipeline's vae/."""
    for candidate in (path, path / "vae"):
        config = candidate / "config.json"
        if config.exists() and json.loads(config.read_text()).get("_class_name") == "AutoencoderKL":
            return candidate
    raise _bad(path.name, "no AutoencoderKL config.json in it or in its vae/ sub-folder")


def read(path, dtype):
    from diffusers import AutoencoderKL
    logging.getLogger("diffusers").setLevel(logging.ERROR)
    path = Path(path)
    if path.is_dir():
        folder = _folder(path)
        load = lambda: AutoencoderKL.from_pretrained(folder, torch_dtype=dtype, local_files_only=True)  # noqa: E731
    else:
        if path.suffix.lower() != ".safetensors":
            raise UserError(f"param 'path': {path.name}: unsupported VAE file type (use .safetensors or a "
                            "diffusers folder; .pt/.ckpt files can run code when loaded)")
        header = read_header(path, lambda why: _bad(path.name, why))
        if not any(k.endswith(LDM_KEY) for k in header):
            raise _bad(path.name, f"no {LDM_KEY}")
        load = lambda: AutoencoderKL.from_single_file(  # noqa: E731
            str(path), config=str(CONFIG_DIR), local_files_only=True, torch_dtype=dtype)
    try:
        return load()
    except Exception as e:
        raise _bad(path.name, f"{type(e).__name__}: {(str(e).splitlines() or [''])[0][:200]}") from e
