"""LoRA training on SD 1.x, after diffusers' train_text_to_image_lora recipe.

data.py reads a folder of captioned images; loop.py trains on copies of the store's modules;
kohya.py writes the kohya/A1111 file; log.py keeps the loss log and draws its curve.
"""
