"""What a comfyui-mode Scheduler node passes to the Sampler: the sampler and scheduler names and
the checkpoint's beta schedule (its cache identity)."""
import json
from dataclasses import dataclass

from latentloom.app.sd.handles import Handle

BETA_KEYS = ("num_train_timesteps", "beta_start", "beta_end", "beta_schedule")


@dataclass(frozen=True)
class ComfySchedule(Handle):
    sampler: str
    scheduler: str
    betas_json: str
    add_noise: bool = True
    start_at_step: int = 0
    end_at_step: int = 10000
    return_with_leftover_noise: bool = False
    keep_penultimate: bool = False
    comfyui = True

    @property
    def config(self):
        return json.loads(self.betas_json)


def describe(sampler, scheduler, base_config, add_noise=True, start_at_step=0, end_at_step=10000,
             return_with_leftover_noise=False, keep_penultimate=False):
    betas = {k: base_config[k] for k in BETA_KEYS if k in base_config}
    return ComfySchedule(sampler, scheduler, json.dumps(betas, sort_keys=True), add_noise, start_at_step,
                         end_at_step, return_with_leftover_noise, keep_penultimate)
