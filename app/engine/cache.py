"""In-memory cache of node outputs, keyed by cache key, least recently used first out.

It keeps within a byte budget for CPU memory and one for GPU memory: the tensors an entry holds
are measured when it is stored, and least recently used entries are dropped until the cache,
plus what `others()` reports (the loaded models), fits. A dropped entry is simply computed again
the next time it is needed; a run in progress keeps its own references to its inputs.
"""
from collections import OrderedDict
import dataclasses
import threading

MAX_WALK = 10000  # objects looked at when measuring one entry


def nbytes(value):
    """(cpu bytes, gpu bytes) of the tensors and arrays inside a node's outputs (shared storage once)."""
    cpu = gpu = 0
    seen, todo, looked = set(), [value], 0
    while todo and looked < MAX_WALK:
        v = todo.pop()
        looked += 1
        if id(v) in seen or v is None or isinstance(v, (str, bytes, int, float, bool)):
            continue
        seen.add(id(v))
        kind = type(v).__module__.split(".")[0]
        if kind == "torch" and hasattr(v, "untyped_storage"):
            storage = v.untyped_storage()
            ptr = storage.data_ptr()  # 0 for storage-less (meta) tensors: each counts
            key = ("storage", str(v.device), ptr) if ptr else ("tensor", id(v))
            if key in seen:
                continue
            seen.add(key)
            if v.device.type == "cpu":
                cpu += storage.nbytes()
            else:
                gpu += storage.nbytes()
        elif kind == "numpy" and hasattr(v, "nbytes"):
            cpu += int(v.nbytes)
        elif kind == "PIL" and hasattr(v, "size"):
            cpu += v.size[0] * v.size[1] * len(v.getbands())
        elif isinstance(v, dict):
            todo += list(v.values())
        elif isinstance(v, (list, tuple, set, frozenset)):
            todo += list(v)
        elif dataclasses.is_dataclass(v):
            todo += [getattr(v, f.name, None) for f in dataclasses.fields(v)]
    return cpu, gpu


class Cache:
    def __init__(self, max_entries=512, max_bytes=None, max_vram_bytes=None, others=None):
        self.max_entries = max_entries
        self.max_bytes, self.max_vram_bytes = max_bytes, max_vram_bytes  # None: no limit
        self.others = others or (lambda: (0, 0))  # (cpu, gpu) bytes held outside the cache
        self._items = OrderedDict()  # key -> (outputs, cpu bytes, gpu bytes)
        self._lock = threading.Lock()
        self.bytes = self.vram_bytes = 0
        self.evicted = 0

    def get(self, key):
        with self._lock:
            if key not in self._items:
                return None
            self._items.move_to_end(key)
            return self._items[key][0]

    def put(self, key, outputs):
        cpu, gpu = nbytes(outputs)
        with self._lock:
            self._drop(key)
            if ((self.max_bytes is not None and cpu > self.max_bytes)
                    or (self.max_vram_bytes is not None and gpu > self.max_vram_bytes)):
                return  # larger than the whole budget: not kept, nothing else pushed out for it
            self._items[key] = (outputs, cpu, gpu)
            self.bytes += cpu
            self.vram_bytes += gpu
            self._evict()

    def _drop(self, key):
        item = self._items.pop(key, None)
        if item is not None:
            self.bytes -= item[1]
            self.vram_bytes -= item[2]

    def _over(self):
        """(over the RAM budget, over the VRAM budget), counting what others hold."""
        other_cpu, other_gpu = self.others()
        return ((self.max_bytes is not None and self.bytes + other_cpu > self.max_bytes),
                (self.max_vram_bytes is not None and self.vram_bytes + other_gpu > self.max_vram_bytes))

    def _evict(self):
        """Drop least recently used entries: any beyond max_entries, then those holding the kind of
        memory that is over budget (an entry without tensors frees nothing, so it stays)."""
        while len(self._items) > self.max_entries:
            self._drop(next(iter(self._items)))
            self.evicted += 1
        while True:
            over_ram, over_vram = self._over()
            if not (over_ram or over_vram):
                return
            key = next((k for k, (_, cpu, gpu) in self._items.items()
                        if (over_ram and cpu) or (over_vram and gpu)), None)
            if key is None:
                return  # what is over is held by others (the models)
            self._drop(key)
            self.evicted += 1

    def trim(self):
        """Evict until within budget (after the budget or what others hold changed)."""
        with self._lock:
            self._evict()

    def stats(self):
        with self._lock:
            return {"entries": len(self._items), "ram_bytes": self.bytes, "vram_bytes": self.vram_bytes,
                    "evicted": self.evicted}

    def __contains__(self, key):
        with self._lock:
            return key in self._items

    def __len__(self):
        return len(self._items)

    def clear(self):
        with self._lock:
            self._items.clear()
            self.bytes = self.vram_bytes = 0
