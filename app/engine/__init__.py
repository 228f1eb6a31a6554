"""Plan, cache keys, cache, executor, events and cancellation. No Qt, no torch."""
