"""--lowvram: models live in RAM and move to the GPU only while a node uses them.

accelerate's model CPU offload hooks (what diffusers' enable_model_cpu_offload uses) hold each
module. Borrowing a main module (text encoder, U-Net, VAE, a LoadVAE file) offloads whatever is
on the device and moves the borrowed one there. A guest (a ControlNet) joins the module on the
device, as diffusers' offload keeps a ControlNet beside the U-Net, and leaves with it."""
import weakref

import torch

NOTE = "--lowvram: models stay in RAM and move to the GPU only while used (accelerate model CPU offload)"


class Offload:
    def __init__(self, device):
        self.device = torch.device(device)
        self.hooks = weakref.WeakKeyDictionary()  # module -> accelerate UserCpuOffloadHook
        self.on_device = []  # weakrefs to the modules on the device now

    def attach(self, comps):
        for part in ("text_encoder", "unet", "vae"):
            self._hook(comps[part])
        return NOTE

    def _hook(self, module):
        from accelerate import cpu_offload_with_hook
        if module not in self.hooks:
            _, self.hooks[module] = cpu_offload_with_hook(module, self.device)

    def use(self, module, guest=False):
        """Move `module` to the device; unless it is a guest, offload the modules there first."""
        self._hook(module)
        live = [m for m in (r() for r in self.on_device) if m is not None]
        if not guest and module not in live:
            for other in live:
                self.hooks[other].offload()
            live = []
        module.to(self.device)
        if module not in live:
            live.append(module)
        self.on_device = [weakref.ref(m) for m in live]
        return module

    def release(self):
        """Offload every module on the device (the end of a run)."""
        for module in (r() for r in self.on_device):
            if module is not None and module in self.hooks:
                self.hooks[module].offload()
        self.on_device = []
