"""ComfyUI-compatible sampling: ComfyUI's noise, sigma schedules, k-diffusion samplers and rules.

Names only here (no torch import): the node catalog reads them.
"""
SAMPLERS = ("euler", "euler_ancestral", "heun", "dpm_2", "dpm_2_ancestral", "lms", "dpmpp_2m",
            "dpmpp_2m_sde", "dpmpp_sde", "ddim", "uni_pc", "uni_pc_bh2", "lcm", "ddpm", "deis")
SCHEDULES = ("normal", "karras", "exponential", "simple", "sgm_uniform", "ddim_uniform", "beta")
# Samplers that KSampler runs on one more step with the penultimate sigma dropped.
DROP_PENULTIMATE = ("dpm_2", "dpm_2_ancestral", "uni_pc", "uni_pc_bh2")
