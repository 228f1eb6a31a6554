"""Port types: the kinds of value that travel along edges."""

MODEL = "MODEL"
CLIP = "CLIP"
VAE = "VAE"
CONDITIONING = "CONDITIONING"
LATENT = "LATENT"
NOISE = "NOISE"
SCHEDULER = "SCHEDULER"
IMAGE = "IMAGE"
MASK = "MASK"
CONTROL_NET = "CONTROL_NET"
LORA = "LORA"  # a LoRA file (from TrainLoRA), for LoadLoRA

# Editor colours (RGB) per port type; the view reads them, the engine ignores them.
COLORS = {
    MODEL: (180, 120, 230),
    CLIP: (250, 210, 60),
    VAE: (250, 110, 110),
    CONDITIONING: (240, 160, 60),
    LATENT: (240, 130, 200),
    NOISE: (150, 150, 150),
    SCHEDULER: (90, 200, 200),
    IMAGE: (100, 170, 250),
    MASK: (110, 210, 110),
    CONTROL_NET: (60, 160, 120),
    LORA: (200, 200, 120),
}


def compatible(output_type, input_type):
    return output_type == input_type
