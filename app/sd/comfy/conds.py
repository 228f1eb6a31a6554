"""ComfyUI conditionings as lists of entries, and how ComfyUI's sampler mixes them.

A ComfyUI conditioning is a list of [embeds, options] entries. Ours keeps the first entry in
Conditioning.embeds / .settings and any further ones in .extra, so a one-entry conditioning without
options is exactly what TextEncode makes (and samples as before).

At every model call ComfyUI (samplers.calc_cond_batch) predicts the denoised latent of every
active entry of each side and averages them per side, per pixel:
(0 + sum(x0_i * mult_i)) / (1e-37 + sum(mult_i)), mult_i = strength_i, times the mask or the
area's edge fade (get_area_and_mult; an area's entry sees only its crop). An entry with
start_percent / end_percent is active while percent_to_sigma(start) >= sigma >= percent_to_sigma(end).
Entries run in one U-Net call when they can be batched (can_concat_cond: same input size, embeds
whose lengths' least common multiple is at most 4 times the shorter; they are repeated to it),
each group taken, as ComfyUI takes it, from the first entry left and in reverse order. Before
sampling (process_conds) areas and masks are resolved to the latent and each area gets a twin on
the other side.
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
    area: tuple = None     # (height, width, y, x) in latent pixels
    mask: torch.Tensor = None  # [batch, height, width] at the latent's size
    mask_strength: float = 1.0

    def active(self, sigma):
        return not ((self.start is not None and sigma > self.start) or (self.end is not None and sigma < self.end))


def _resolve(options, dims, device):
    """resolve_areas_and_cond_masks_multidim: percentage areas to latent pixels, masks resized
    (bilinear) to the latent, set_area_to_bounds: the area is the mask's bounding box (at least 8)."""
    o = dict(options)
    area = o.get("area")
    if area is not None and area[0] == "percentage":
        a = area[1:]
        o["area"] = (tuple(max(1, round(a[d] * dims[d])) for d in range(2))
                     + tuple(round(a[d + 2] * dims[d]) for d in range(2)))
    if "mask" in o:
        mask = o["mask"].to(device=device)
        if mask.ndim == 2:
            mask = mask.unsqueeze(0)
        if tuple(mask.shape[1:]) != tuple(dims):
            mask = torch.nn.functional.interpolate(mask.unsqueeze(1), size=tuple(dims), mode="bilinear").squeeze(1)
        if o.get("set_area_to_bounds", False):
            bounds = torch.max(torch.abs(mask), dim=0).values
            if not bool((bounds != 0).any()):
                o["area"] = (8, 8, 0, 0)
            else:
                y, x = torch.where(bounds)
                o["area"] = (max(8, int(y.max() - y.min() + 1)), max(8, int(x.max() - x.min() + 1)),
                             int(y.min()), int(x.min()))
        o["mask"] = mask
    return o


def _inside(a, b):
    return all(a[2 + i] >= b[2 + i] and a[i] + a[2 + i] <= b[i] + b[2 + i] for i in range(2))


def _twin(side, entry):
    """create_cond_with_same_area_if_none: an area entry gets, on the other side, an entry with
    its options and the embeds of that side's smallest entry containing the area (else its first
    entry without area), unless that side has one of the same area."""
    options = entry[1]
    if "area" not in options:
        return
    smallest = None
    for e, o in side:
        if "area" in o:
            if _inside(options["area"], o["area"]):
                if smallest is None or "area" not in smallest[1] or \
                        math.prod(smallest[1]["area"][:2]) > math.prod(o["area"][:2]):
                    smallest = (e, o)
        elif smallest is None:
            smallest = (e, o)
    if smallest is None or smallest[1].get("area") == options["area"]:
        return
    side.append((smallest[0], dict(options)))


def prepare(positive, negative, ms, x, dtype, guided=False):
    """Both sides' entries as ComfyUI's process_conds leaves them for a latent like x."""
    dims, batch = tuple(x.shape[2:]), x.shape[0]
    sides = [[(e, _resolve(o, dims, x.device)) for e, o in entries(c)] for c in (positive, negative)]
    for k in (0, 1):
        for entry in sides[k]:
            _twin(sides[1 - k], entry)
    out = []
    for side in sides:
        out.append([])
        for embeds, o in side:
            if guided and "area" in o:
                raise UserError("a ControlNet with an area conditioning (ConditioningSetArea..., ConditioningSetMask "
                                "with mask bounds) is not supported: ComfyUI resizes the control image to each area")
            start = ms.percent_to_sigma(o["start_percent"]) if "start_percent" in o else None
            end = ms.percent_to_sigma(o["end_percent"]) if "end_percent" in o else None
            out[-1].append(Entry(embeds.to(device=x.device, dtype=dtype).repeat(batch, 1, 1), o.get("strength", 1.0),
                                 start, end, o.get("area"), o.get("mask"), o.get("mask_strength", 1.0)))
    return out


def _area_and_mult(entry, x):
    """get_area_and_mult: the area clamped to the latent, and the weight of each pixel: the mask
    (times mask_strength) or ones, times strength; an area without mask fades in over up to 8
    pixels at each edge that is not the latent's."""
    area, size = None, list(x.shape[2:])
    if entry.area is not None:
        area = list(entry.area)
        for i in range(2):
            area[i] = min(x.shape[i + 2] - area[2 + i], area[i])
            if area[i] <= 0:
                raise UserError(f"a conditioning area {tuple(entry.area)} lies outside the latent "
                                f"({x.shape[2]}x{x.shape[3]})")
        size = area[:2]
    shape = (x.shape[0], x.shape[1], *size)
    if entry.mask is not None:
        mask = entry.mask[:x.shape[0]]
        if area is not None:
            for i in range(2):
                mask = mask.narrow(i + 1, area[2 + i], area[i])
        if x.shape[0] % mask.shape[0]:
            raise UserError(f"a batch of {mask.shape[0]} conditioning masks does not divide the batch of {x.shape[0]}")
        mask = mask * entry.mask_strength
        mask = mask.unsqueeze(1).repeat((x.shape[0] // mask.shape[0], x.shape[1], 1, 1))
    else:
        mask = torch.ones(shape, dtype=x.dtype, device=x.device)
    mult = mask * entry.strength
    if entry.mask is None and area is not None:
        for i in range(2):
            rr = min(8, mult.shape[2 + i] // 4)
            if area[2 + i] != 0:
                for t in range(rr):
                    mult.narrow(i + 2, t, 1).mul_((1.0 / rr) * (t + 1))
            if area[i] + area[2 + i] < x.shape[i + 2]:
                for t in range(rr):
                    mult.narrow(i + 2, area[i] - 1 - t, 1).mul_((1.0 / rr) * (t + 1))
    return area, mult


def crop(t, area):
    """A latent-shaped tensor cut to an area (None: the whole)."""
    if area is not None:
        for i in range(2):
            t = t.narrow(i + 2, area[2 + i], area[i])
    return t


def _can_concat(a, b):
    if a[0].shape != b[0].shape:
        return False
    s1, s2 = a[1].embeds.shape, b[1].embeds.shape
    if s1 == s2:
        return True
    if s1[0] != s2[0] or s1[2] != s2[2]:
        return False
    return math.lcm(s1[1], s2[1]) // min(s1[1], s2[1]) <= 4


def _cat(embeds):
    length = math.lcm(*[e.shape[1] for e in embeds])
    return torch.cat([e.repeat(1, length // e.shape[1], 1) if e.shape[1] < length else e for e in embeds])


class Mixer:
    """Each side's denoised latent at a model call, as calc_cond_batch computes it."""

    def __init__(self, positive, negative, ms, dtype, guided):
        self.conds, self.ms, self.dtype, self.guided = (positive, negative), ms, dtype, guided
        self.sides = None

    def __call__(self, eps, x, xc, sigma, skip_uncond):
        """eps(model input batch, embeds batch, areas) -> the U-Net's float eps for it."""
        if self.sides is None:  # process_conds, once the latent's size is known
            self.sides = prepare(*self.conds, self.ms, x, self.dtype, self.guided)
        sides = [self.sides[0], None if skip_uncond else self.sides[1]]
        return mixed(eps, x, xc, sigma, sides)


def mixed(eps, x, xc, sigma, sides):
    """sides: [cond entries, uncond entries or None (cfg 1)]."""
    s = sigma.reshape(-1)[0]
    to_run = []
    for i, side in enumerate(sides):
        for entry in side or ():
            if entry.active(s):
                area, mult = _area_and_mult(entry, x)
                to_run.append((crop(x, area), entry, i, area, mult))
    outs = [torch.zeros_like(x) for _ in sides]
    counts = [torch.ones_like(x) * 1e-37 for _ in sides]
    while to_run:
        first = to_run[0]
        picked = [k for k, item in enumerate(to_run) if _can_concat(item, first)]
        group = [to_run.pop(k) for k in reversed(picked)]
        areas = [item[3] for item in group]
        model_in = torch.cat([crop(xc, a) for a in areas])
        x0 = torch.cat([item[0] for item in group]) - eps(model_in, _cat([item[1].embeds for item in group]),
                                                          areas) * sigma
        for (_, _, side, area, mult), chunk in zip(group, x0.chunk(len(group))):
            crop(outs[side], area).add_(chunk * mult)
            crop(counts[side], area).add_(mult)
    return [out / count for out, count in zip(outs, counts)]


def cropped(extra, areas, rows):
    """The inpainting model's extra input channels for a batch of entries of `rows` rows each
    (ComfyUI's c_concat: cut to each entry's area, repeated to its batch)."""
    if extra is None:
        return None
    return torch.cat([crop(extra, a).repeat(rows // extra.shape[0], 1, 1, 1) for a in areas])
