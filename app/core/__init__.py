"""Graph model, port types, node specs, workflow format and validation. No torch, no Qt."""
