"""The desktop editor (Qt). Everything Qt lives in this package; the engine stays Qt-free.

Modules that use Qt import app.ui.qtcompat first; engine_process is Qt-free (it
runs in the engine's child process).
"""
