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
import math
from dataclasses import dataclass, replace

import torch

from latentloom.app.core.errors import UserError


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


def combine(first, second):
    """ConditioningCombine: the entries of both, first's first."""
    if first.guides != second.guides:
        raise UserError("the two conditionings carry different ControlNets: ComfyUI applies each entry's own, "
                        "Latent Loom applies them to every entry; apply the ControlNet after ConditioningCombine")
    return with_entries(first, entries(first) + entries(second))


def set_values(cond, **values):
    """ComfyUI's conditioning_set_values: the options set on every entry."""
    return with_entries(cond, [(e, {**o, **values}) for e, o in entries(cond)])


@dataclass
class Entry:
    embeds: torch.Tensor   # [batch, tokens, dim] on the U-Net's device and dtype
    strength: float
    start: float = None    # sigma bounds (percent_to_sigma), None: unbounded
    end: float = None

    def active(self, sigma):
        return not ((self.start is not None and sigma > self.start) or (self.end is not None and sigma < self.end))


def prepare(cond, ms, device, dtype, batch):
    """The sampler's view of a conditioning's entries (calculate_start_end_timesteps, process_cond)."""
    out = []
    for embeds, o in entries(cond):
        start = ms.percent_to_sigma(o["start_percent"]) if "start_percent" in o else None
        end = ms.percent_to_sigma(o["end_percent"]) if "end_percent" in o else None
        out.append(Entry(embeds.to(device=device, dtype=dtype).repeat(batch, 1, 1), o.get("strength", 1.0),
                         start, end))
    return out


def _can_concat(a, b):
    s1, s2 = a.embeds.shape, b.embeds.shape
    if s1 == s2:
        return True
    if s1[0] != s2[0] or s1[2] != s2[2]:
        return False
    return math.lcm(s1[1], s2[1]) // min(s1[1], s2[1]) <= 4


def _cat(embeds):
    length = math.lcm(*[e.shape[1] for e in embeds])
    return torch.cat([e.repeat(1, length // e.shape[1], 1) if e.shape[1] < length else e for e in embeds])


def mixed(eps, x, xc, sigma, sides):
    """Each side's denoised latent: sides is [cond entries, uncond entries or None (cfg 1)];
    eps(model input batch, embeds batch) -> the U-Net's float eps for it."""
    s = sigma.reshape(-1)[0]
    to_run = [(entry, i) for i, side in enumerate(sides) for entry in side or () if entry.active(s)]
    outs = [torch.zeros_like(x) for _ in sides]
    counts = [torch.ones_like(x) * 1e-37 for _ in sides]
    while to_run:
        first = to_run[0][0]
        picked = [k for k, (entry, _) in enumerate(to_run) if _can_concat(entry, first)]
        group = [to_run.pop(k) for k in reversed(picked)]
        n = len(group)
        x0 = torch.cat([x] * n) - eps(torch.cat([xc] * n), _cat([entry.embeds for entry, _ in group])) * sigma
        for (entry, side), chunk in zip(group, x0.chunk(n)):
            mult = torch.ones_like(x) * entry.strength
            outs[side] += chunk * mult
            counts[side] += mult
    return [out / count for out, count in zip(outs, counts)]
