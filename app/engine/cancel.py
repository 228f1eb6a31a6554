"""Cooperative cancellation: checked between nodes and between sampler steps."""
import threading


class Cancelled(Exception):
    """The run was cancelled by the user."""


class CancelToken:
    def __init__(self):
        self._event = threading.Event()

    def cancel(self):
        self._event.set()

    @property
    def cancelled(self):
        return self._event.is_set()

    def check(self):
        if self._event.is_set():
            raise Cancelled("cancelled")
