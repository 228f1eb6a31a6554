"""Errors whose message is meant for the user as it is."""


class UserError(Exception):
    """An expected failure (bad input, unsupported file): the message names the cause."""
