"""In-memory cache of node outputs, keyed by cache key, least recently used first out."""
from collections import OrderedDict
import threading


class Cache:
    def __init__(self, max_entries=512):
        self.max_entries = max_entries
        self._items = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key):
        with self._lock:
            if key not in self._items:
                return None
            self._items.move_to_end(key)
            return self._items[key]

    def put(self, key, outputs):
        with self._lock:
            self._items[key] = outputs
            self._items.move_to_end(key)
            while len(self._items) > self.max_entries:
                self._items.popitem(last=False)

    def __contains__(self, key):
        with self._lock:
            return key in self._items

    def __len__(self):
        return len(self._items)

    def clear(self):
        with self._lock:
            self._items.clear()
