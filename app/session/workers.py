"""Sweeps over several worker processes (one per GPU, or N CPU workers) or Ray actors.

The dispatches plug into app.session.sweeping.run_sweep: each worker runs cells through its own
Session (models and node cache stay loaded across its cells) and writes into a private staging
folder; the lead takes the finished cells in run order and moves their files into the output
folder with the same numbering a one-process sweep gives, then writes sheets and manifest.

Cells go to the worker that holds their shared prefix: the cache keys of the model-using nodes
(text encoders, loaders...) that some but not all cells share, e.g. one prompt's TextEncode.
A worker that dies has its unfinished cells retried on the others.
"""
import os
import queue
import re
import shutil
import time
from pathlib import Path

from latentloom.app.core.errors import UserError

STAGING = ".latentloom-workers"
MODEL_TYPES = {"MODEL", "CLIP", "VAE"}
MAX_TRIES = 2  # a cell whose worker died this many times fails with a message


def worker_envs(count, device):
    """One environment per worker: CUDA_VISIBLE_DEVICES per GPU, or thread counts for CPU workers."""
    if count < 1:
        raise UserError(f"--workers {count}: give at least 1 worker")
    import torch
    if device in ("auto", "cuda") and torch.cuda.is_available():
        gpus = torch.cuda.device_count()
        if count > gpus:
            raise UserError(f"--workers {count}: more workers than devices (this machine has {gpus} CUDA "
                            f"device{'s' if gpus != 1 else ''}; one worker per GPU)")
        return [{"CUDA_VISIBLE_DEVICES": str(i)} for i in range(count)]
    if device == "cuda":
        raise UserError("--device cuda: no CUDA device is available")
    if device == "mps":
        if count > 1:
            raise UserError(f"--workers {count}: more workers than devices (one MPS device)")
        return [{}]
    cores = os.cpu_count() or 1
    if count > cores:
        raise UserError(f"--workers {count}: more workers than devices (this machine has {cores} CPU cores; "
                        "one worker per core at most)")
    # The lead's thread count: CPU kernels reduce in an order that depends on it, so equal threads
    # give pixels equal to a one-process sweep (set OMP_NUM_THREADS to trade that for throughput).
    threads = os.environ.get("OMP_NUM_THREADS") or str(_lead_threads())
    return [{"CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": threads} for _ in range(count)]


def _lead_threads():
    import torch
    return torch.get_num_threads()


def shared_prefixes(session, prepared, order):
    """Per cell (in run order): the (node, cache key) pairs of model-using nodes it shares with some
    but not all other cells. Keys are computed without running (upstream keys, not handle values)."""
    from latentloom.app.engine.keys import node_key
    from latentloom.app.engine.plan import plan, targets_of
    catalog, engine = session.catalog, session.engine
    per_cell = []
    for cell in order:
        wf = session.cell_workflow(prepared.workflow, cell)
        nodes = plan(wf, targets_of(wf, catalog))
        fps = engine.fingerprints(wf, nodes, engine.resolve_files(wf, nodes, prepared.base_dirs))
        keys = {}
        for nid in nodes:
            node = wf.nodes[nid]
            keys[nid] = node_key(catalog.get(node.type), node.params, fps[nid],
                                 {port: (keys[src], out) for port, (src, out) in node.inputs.items()})
        per_cell.append({(nid, k) for nid, k in keys.items() if _uses_models(catalog.get(wf.nodes[nid].type))})
    counts = {}
    for keys in per_cell:
        for item in keys:
            counts[item] = counts.get(item, 0) + 1
    return [tuple(sorted(i for i in keys if 1 < counts[i] < len(order))) for keys in per_cell]


def _uses_models(spec):
    return any(p.type in MODEL_TYPES for p in tuple(spec.inputs) + tuple(spec.outputs))


class Router:
    """Cells to workers: a cell goes where its shared prefix already went, else to the least loaded."""

    def __init__(self, prefixes):
        self.prefixes, self.owner, self.load = prefixes, {}, {}

    def pick(self, k, live):
        prefix = self.prefixes[k]
        w = self.owner.get(prefix) if prefix else None
        if w not in live:
            w = min(live, key=lambda i: (self.load.get(i, 0), i))
            if prefix:
                self.owner[prefix] = w
        self.load[w] = self.load.get(w, 0) + 1
        return w

    def forget(self, w):
        self.owner = {p: o for p, o in self.owner.items() if o != w}
        self.load.pop(w, None)


def commit_files(files, staging, output_dir):
    """Move staged files into the output folder, numbered as a one-process run numbers them."""
    from latentloom.app.engine.outputs import write_new
    out = []
    for f in files:
        path = Path(f)
        try:
            rel = path.resolve().relative_to(Path(staging).resolve())
        except ValueError:
            out.append(str(f))  # written outside the staging folder: leave it
            continue
        m = re.match(r"^(.*)_\d{5,}(\.[^.]*)$", rel.name)
        prefix, suffix = (m.group(1), m.group(2)) if m else (rel.stem, rel.suffix)
        final = write_new(output_dir, str(rel.parent / prefix), suffix,
                          lambda tmp, src=path: shutil.copyfile(src, tmp))
        path.unlink(missing_ok=True)
        out.append(str(final))
    return out


class _Ordered:
    """Finished cells, handed out in run order as soon as every earlier cell is in."""

    def __init__(self, order):
        self.order, self.done, self.next = order, {}, 0

    def add(self, k, res):
        self.done[k] = res

    def ready(self):
        while self.next in self.done:
            yield self.next, self.done.pop(self.next)
            self.next += 1

    @property
    def finished(self):
        return self.next >= len(self.order)


def _worker_main(index, env, settings, prepared, output_dir, tasks, results):
    """A worker process: its own Session; runs cells until it gets None."""
    os.environ.update(env)
    from latentloom.app.session import Session
    from latentloom.app.session.sweeping import run_cell
    session = Session(output_dir=output_dir, **settings)
    session.runtime  # noqa: B018
    while True:
        task = tasks.get()
        if task is None:
            return
        k, cell = task
        res = run_cell(session, prepared, cell, emit=step_forwarder(lambda p, k=k: results.put((index, k, p))))
        results.put((index, k, {"files": res.files, "executed": res.executed, "cached": res.cached,
                                "seconds": res.seconds, "error": res.error}))


def step_forwarder(send):
    """An on_event for a worker's cell: sends its step progress (without the preview image) to the lead."""
    from latentloom.app.engine import events as ev

    def emit(e):
        if isinstance(e, ev.NodeProgress):
            send(ev.NodeProgress(e.node_id, e.step, e.total))
    return emit


class Front:
    """The lead's view of a sweep spread over workers: CellStarted once per cell, in run order, and
    the step progress of the cell the run order waits on (the others' steps are not shown)."""

    def __init__(self, order, emit):
        self.order, self.emit, self.started = order, emit, -1

    def start_upto(self, i):
        while self.started < min(i, len(self.order) - 1):
            self.started += 1
            self.emit(_started(self.started, len(self.order), self.order[self.started]))

    def progress(self, k, event, nxt):
        if k == nxt:
            self.start_upto(k)
            self.emit(event)


class LocalWorkers:
    """N local worker processes (spawned: torch does not survive fork)."""

    def __init__(self, count, device="auto"):
        self.count, self.device = count, device
        self.envs = worker_envs(count, device)
        self.on_result = None  # test hook: called as on_result(self, worker, k) after each result
        self.procs = {}
        self.pending = {}  # worker -> {run index: cell} sent and not answered
        self.retried = []  # run indexes of cells sent again after their worker died

    def cells(self, session, prepared, order, emit, cancel):
        import multiprocessing as mp
        from latentloom.app.session.sweeping import CellResult
        ctx = mp.get_context("spawn")
        staging = Path(session.output_dir) / STAGING / f"lead-{os.getpid()}"
        results = ctx.Queue()
        router = Router(shared_prefixes(session, prepared, order))
        tasks, pending, tries = {}, self.pending, {}
        settings = session.settings()
        device = "cuda" if self.envs[0].get("CUDA_VISIBLE_DEVICES") else settings["device"]
        settings["device"] = device

        def start(w):
            tasks[w] = ctx.Queue()
            p = ctx.Process(target=_worker_main, args=(w, self.envs[w % len(self.envs)], settings, prepared,
                                                       str(staging / f"w{w}"), tasks[w], results), daemon=True)
            p.start()
            self.procs[w] = p
            pending[w] = {}

        def send(k):
            w = router.pick(k, [i for i, p in self.procs.items() if p.is_alive()] or [self._restart(start)])
            pending[w][k] = order[k]
            tasks[w].put((k, order[k]))

        ordered, front = _Ordered(order), Front(order, emit)
        try:
            for w in range(self.count):
                start(w)
            for k in range(len(order)):
                send(k)
            while not ordered.finished:
                cancel.check()
                try:
                    w, k, data = results.get(timeout=0.5)
                except queue.Empty:
                    w = None
                self._retry_dead(pending, tries, router, send, order, ordered)
                if w is not None and not isinstance(data, dict):  # a step of a running cell
                    if k in pending.get(w, {}):
                        front.progress(k, data, ordered.next)
                    continue
                if w is not None and k in pending.get(w, {}):  # else: a late answer for a retried cell
                    del pending[w][k]
                    ordered.add(k, CellResult(order[k], worker=w, **data))
                for i, done in ordered.ready():  # files are numbered in run order, as one process does
                    if not done.error:
                        done.files = commit_files(done.files, staging / f"w{done.worker}", session.output_dir)
                    front.start_upto(i)
                    yield i, done
                if w is not None and self.on_result is not None:
                    self.on_result(self, w, k)
        finally:
            self._stop(tasks)
            shutil.rmtree(staging, ignore_errors=True)
            _remove_if_empty(staging.parent)

    def _restart(self, start):
        """Every worker died: start a fresh one (on the first worker's device)."""
        w = max(self.procs) + 1 if self.procs else 0
        start(w)
        return w

    def _retry_dead(self, pending, tries, router, send, order, ordered):
        from latentloom.app.session.sweeping import CellResult
        for w, p in list(self.procs.items()):
            if p.is_alive() or not pending.get(w):
                continue
            lost, pending[w] = pending[w], {}
            router.forget(w)
            for k in sorted(lost):
                tries[k] = tries.get(k, 0) + 1
                self.retried.append(k)
                if tries[k] >= MAX_TRIES:
                    ordered.add(k, CellResult(order[k], error=f"its worker died {tries[k]} times running it"))
                else:
                    send(k)

    def _stop(self, tasks):
        for w, p in self.procs.items():
            if p.is_alive():
                try:
                    tasks[w].put(None)
                except (OSError, ValueError):
                    pass
        deadline = time.monotonic() + 10
        for p in self.procs.values():
            p.join(timeout=max(0.1, deadline - time.monotonic()))
            if p.is_alive():
                p.kill()
                p.join()
        self.procs = {}


def _started(i, total, cell):
    from latentloom.app.engine import events as ev
    return ev.CellStarted(i, total, cell.values)


def _remove_if_empty(folder):
    try:
        folder.rmdir()
    except OSError:
        pass
