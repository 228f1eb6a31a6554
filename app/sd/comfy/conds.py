"""ComfyUI conditionings as lists of entries, and how ComfyUI's sampler mixes them.

A ComfyUI conditioning is a list of [embeds, options] entries. Ours keeps the first entry in
Conditioning.embeds / .settings and any further ones in .extra, so a one-entry conditioning without
options is exactly what TextEncode makes (and samples as before).

At every model call ComfyUI (samplers.calc_cond_batch) predicts the denoised latent of every
active entry of each side and averages them per side: (0 + sum(x0_i * mult_i)) / (1e-37 + sum(mult_i)),
mult_i = strength_i. An entry with start_percent / end_percent is active while
percent_to_sigma(start) >= sigma >= percent_to_sigma(end). Entries run in one U-Net call when they
can be batched (can_concat_cond: same input, embeds whose lengths' least common multiple is at
most 4 times the shorter; they are repeated to it), each group taken, as ComfyUI takes it, from the
first entry left and in reverse order.
"""
from dataclasses import replace

import torch


def entries(cond):
    """[(embeds, options dict)], the first entry first."""
    return [(cond.embeds, dict(cond.settings))] + [(e, dict(o)) for e, o in cond.extra]


def several(cond):
    """True when the conditioning needs ComfyUI's entry mixing (more entries, or entry options)."""
    return bool(cond.settings or cond.extra)


def _pairs(options):
    return tuple(sorted(options.items()))


def with_entries(cond, items):
    (embeds, first), rest = items[0], items[1:]
    return replace(cond, embeds=embeds, settings=_pairs(first), extra=tuple((e, _pairs(o)) for e, o in rest))


def concat(to, source):
    """ConditioningConcat: the first entry of source appended on the token axis of every entry of to."""
    return with_entries(to, [(torch.cat((e, source.embeds), 1), o) for e, o in entries(to)])


def average(to, source, strength):
    """ConditioningAverage: to * strength + source * (1 - strength), source's first entry truncated or
    zero-padded to each entry's length."""
    out = []
    for e, o in entries(to):
        t0 = source.embeds[:, :e.shape[1]]
        if t0.shape[1] < e.shape[1]:
            pad = torch.zeros((1, e.shape[1] - t0.shape[1], e.shape[2]), dtype=t0.dtype, device=t0.device)
            t0 = torch.cat([t0, pad], dim=1)
        out.append((torch.mul(e, strength) + torch.mul(t0, 1.0 - strength), o))
    return with_entries(to, out)


def zero_out(cond):
    """ConditioningZeroOut: every entry's embeds become zeros (SD 1.x has no pooled output)."""
    return with_entries(cond, [(torch.zeros_like(e), o) for e, o in entries(cond)])
