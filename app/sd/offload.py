"""--lowvram: models live in RAM and move to the GPU only while a node uses them.

accelerate's model CPU offload hooks (what diffusers' enable_model_cpu_offload uses) hold each
module; a borrow offloads the module used before and moves the borrowed one to the device."""
import weakref

import torch

NOTE = "--lowvram: models stay in RAM and move to the GPU only while used (accelerate model CPU offload)"


class Offload:
    def __init__(self, device):
        self.device = torch.device(device)
        self.hooks = weakref.WeakKeyDictionary()  # module -> accelerate UserCpuOffloadHook
        self.current = None  # weakref to the module on the device

    def attach(self, comps):
        from accelerate import cpu_offload_with_hook
        for part in ("text_encoder", "unet", "vae"):
            _, self.hooks[comps[part]] = cpu_offload_with_hook(comps[part], self.device)
        return NOTE

    def use(self, module):
        """Offload whatever module is on the device, then move `module` there."""
        current = self.current() if self.current is not None else None
        if current is not None and current is not module and current in self.hooks:
            self.hooks[current].offload()
        module.to(self.device)
        self.current = weakref.ref(module)

    def release(self):
        """Offload the module on the device (the end of a run)."""
        current = self.current() if self.current is not None else None
        if current is not None and current in self.hooks:
            self.hooks[current].offload()
        self.current = None
