"""Tiny random-weight Stable Diffusion 1.x components, built offline for tests.

The VAE has four blocks so its scale factor is 8, as in real SD 1.x; the
tokenizer is the real CLIP BPE shipped in resources/.
"""
from pathlib import Path

import torch
from diffusers import AutoencoderKL, PNDMScheduler, StableDiffusionPipeline, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

ROOT = Path(__file__).resolve().parents[1]
TOKENIZER_DIR = ROOT / "resources" / "sd15" / "tokenizer"

SCHEDULER_CONFIG = dict(
    beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", num_train_timesteps=1000,
    skip_prk_steps=True, steps_offset=1, set_alpha_to_one=False, clip_sample=False,
)


def tiny_components(seed=0, in_channels=4):
    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        sample_size=8, in_channels=in_channels, out_channels=4, layers_per_block=1,
        block_out_channels=(32, 64), down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), cross_attention_dim=32,
        attention_head_dim=4, norm_num_groups=32,
    )
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, layers_per_block=1, norm_num_groups=8,
        block_out_channels=(8, 16, 16, 16), sample_size=64,
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
    )
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=49408, hidden_size=32, intermediate_size=37, num_hidden_layers=3,
        num_attention_heads=4, max_position_embeddings=77, bos_token_id=49406,
        eos_token_id=49407, pad_token_id=49407, projection_dim=32,
    ))
    # Random weights give outputs too flat to catch mistakes: widen them a little.
    with torch.no_grad():
        for p in unet.conv_out.parameters():
            p.mul_(20)
    tokenizer = CLIPTokenizer.from_pretrained(TOKENIZER_DIR)
    scheduler = PNDMScheduler.from_config(SCHEDULER_CONFIG)
    return dict(unet=unet, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer,
                scheduler=scheduler, safety_checker=None, feature_extractor=None)


def tiny_pipeline(seed=0, in_channels=4):
    return StableDiffusionPipeline(**tiny_components(seed, in_channels), requires_safety_checker=False)


def save_tiny_pipeline(path, seed=0, in_channels=4):
    pipe = tiny_pipeline(seed, in_channels)
    pipe.save_pretrained(path, safe_serialization=True)
    return pipe
