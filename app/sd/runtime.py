"""What node functions reach through ctx.env: the device and the shared model store."""
from app.sd.device import pick_device
from app.sd.models import ModelStore


class Runtime:
    def __init__(self, device="auto", allow_pickle=False, max_models=2):
        self.device = pick_device(device)
        self.store = ModelStore(self.device, allow_pickle=allow_pickle, max_models=max_models)
