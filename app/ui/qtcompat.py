"""Work-arounds for the installed Qt binding, in one place (every app.ui Qt module imports it first).

PySide6 6.12.0 with CPython 3.11 returns ``None``, ``True`` and ``False`` from
its wrappers without taking a reference (fine on CPython >= 3.12, where those
objects are immortal). Every ``setText()``, ``setValue()``, ``emit()``... then
steals one reference, and after a few thousand calls CPython aborts with
"none_dealloc: deallocating None" or "bool_dealloc". We probe for the leak at
import and, only when it is there, give the three singletons a reference count
so large that they can never reach zero, which is what newer CPythons do.
"""
import ctypes
import sys

from PySide6.QtCore import QObject, Signal

PROBES = 64
IMMORTAL = 1 << 50
applied = []


class _Probe(QObject):
    sig = Signal()


def _lost(obj, call):
    before = sys.getrefcount(obj)
    for _ in range(PROBES):
        call()
    return before - sys.getrefcount(obj)


def _immortalize(obj, lost=0):
    # ob_refcnt is the first field of every object in CPython's release builds
    ctypes.c_ssize_t.from_address(id(obj)).value += IMMORTAL + max(0, lost)


def _apply():
    if sys.implementation.name != "cpython" or sys.version_info >= (3, 12):
        return
    probe = _Probe()
    lost_none = _lost(None, lambda: probe.setObjectName("probe"))
    lost_true = _lost(True, probe.sig.emit)
    if lost_none >= PROBES or lost_true >= PROBES:
        for obj, lost in ((None, lost_none), (True, lost_true), (False, 0)):
            _immortalize(obj, lost)
            applied.append(obj)


_apply()
