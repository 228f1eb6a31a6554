"""--ray ADDRESS|local: sweep cells on Ray actors, each keeping its models and node cache loaded.

The same routing as the local workers (app.session.workers.Router: a cell goes to the actor
holding its shared prefix). Actors send their files back as bytes, so the lead needs no shared
file system with the cluster; the lead numbers them into its output folder and writes sheets
and the manifest. A cell whose actor dies is retried on another actor (a new one if none is left).
Every node needs Latent Loom installed and the models at the same paths (or LATENTLOOM_MODELS).
"""
import os
import shutil
import tempfile
from pathlib import Path

from latentloom.app.core.errors import UserError
from latentloom.app.session.workers import MAX_TRIES, Front, Router, commit_files, shared_prefixes, step_forwarder

INSTALL = ("--ray needs Ray, which is not installed: pip install 'latentloom[ray]' "
           "(or pip install 'ray>=2.9')")


def require_ray():
    try:
        import ray
    except ImportError:
        raise UserError(INSTALL) from None
    return ray


class CellActor:
    """One Ray actor: a Session of its own, alive across cells."""

    def __init__(self, settings, prepared, cwd, threads=None, steps=None):
        if threads:  # the lead's CPU threads: equal threads, pixels equal to a one-process sweep
            import torch
            torch.set_num_threads(threads)
        if cwd and os.path.isdir(cwd):
            os.chdir(cwd)  # relative model folders, as the lead sees them (same machine or same layout)
        from latentloom.app.session import Session
        self.staging = tempfile.mkdtemp(prefix="latentloom-ray-")
        self.session = Session(output_dir=self.staging, **settings)
        self.prepared, self.steps = prepared, steps  # steps: a Ray queue for step progress, or None

    def run(self, k, cell):
        from latentloom.app.session.sweeping import run_cell
        emit = step_forwarder(lambda e: self.steps.put_nowait((k, e))) if self.steps is not None else None
        res = run_cell(self.session, self.prepared, cell, emit=emit)
        files = []
        for f in res.files:
            path = Path(f)
            files.append((str(path.relative_to(self.staging)), path.read_bytes()))
            path.unlink(missing_ok=True)
        return k, {"files": files, "executed": res.executed, "cached": res.cached, "seconds": res.seconds,
                   "error": res.error}

    def pid(self):
        return os.getpid()


class RayActors:
    def __init__(self, address, count=None, device="auto"):
        if count is not None and count < 1:
            raise UserError(f"--workers {count}: give at least 1 worker")
        self.ray = require_ray()
        self.address, self.count, self.device = address, count, device
        self.actors = {}
        self.on_result = None  # test hook: on_result(self, actor index, k)

    def _init(self):
        ray = self.ray
        if not ray.is_initialized():
            kw = dict(include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
            if self.address == "local":
                ray.init(num_cpus=self.count or None, **kw)
            else:
                ray.init(address=self.address, **kw)
        resources = ray.cluster_resources()
        gpus = int(resources.get("GPU", 0)) if self.device in ("auto", "cuda") else 0
        slots = gpus or int(resources.get("CPU", 1))
        count = self.count or slots
        if count > slots:
            raise UserError(f"--workers {count}: more workers than devices (the Ray cluster has {slots} "
                            f"{'GPUs' if gpus else 'CPUs'})")
        return count, gpus

    def cells(self, session, prepared, order, emit, cancel):
        ray = self.ray
        from latentloom.app.session.sweeping import CellResult
        count, gpus = self._init()
        settings = session.settings()
        settings["models_dirs"] = [str(Path(d).expanduser().resolve()) for d in settings["models_dirs"]]
        if gpus:
            settings["device"] = "cuda"
        remote = ray.remote(num_gpus=1 if gpus else 0, num_cpus=0 if gpus else 1, max_restarts=0)(CellActor)
        router = Router(shared_prefixes(session, prepared, order))
        from latentloom.app.session.workers import _lead_threads
        threads = int(os.environ.get("OMP_NUM_THREADS") or _lead_threads())
        staging = Path(tempfile.mkdtemp(prefix="latentloom-ray-lead-"))
        futures, tries, done, nxt = {}, {}, {}, 0
        from ray.util.queue import Queue
        steps, front = Queue(actor_options={"num_cpus": 0}), Front(order, emit)

        def start(a):
            self.actors[a] = remote.remote(settings, prepared, os.getcwd(), None if gpus else threads, steps)

        def send(k):
            live = list(self.actors) or [start(0) or 0]
            a = router.pick(k, live)
            futures[self.actors[a].run.remote(k, order[k])] = (a, k)

        try:
            for a in range(count):
                start(a)
            for k in range(len(order)):
                send(k)
            while nxt < len(order):
                cancel.check()
                ready, _ = ray.wait(list(futures), num_returns=1, timeout=0.5)
                for k, event in steps.get_nowait_batch(steps.qsize()):
                    front.progress(k, event, nxt)
                for f in ready:
                    a, k = futures.pop(f)
                    try:
                        _, data = ray.get(f)
                    except (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError):
                        self._lost(a, router)
                        tries[k] = tries.get(k, 0) + 1
                        if tries[k] >= MAX_TRIES:
                            done[k] = CellResult(order[k], error=f"its Ray actor died {tries[k]} times running it")
                        else:
                            send(k)
                        continue
                    written = []
                    for rel, blob in data.pop("files"):
                        path = staging / f"c{k}" / rel  # per cell: actors reuse their names
                        path.parent.mkdir(parents=True, exist_ok=True)
                        path.write_bytes(blob)
                        written.append(str(path))
                    done[k] = CellResult(order[k], worker=a, **data)
                    done[k].files = written
                    if self.on_result is not None:
                        self.on_result(self, a, k)
                while nxt in done:  # files are numbered in run order, as one process does
                    if not done[nxt].error:
                        done[nxt].files = commit_files(done[nxt].files, staging / f"c{nxt}", session.output_dir)
                    front.start_upto(nxt)
                    yield nxt, done.pop(nxt)
                    nxt += 1
        finally:
            for actor in self.actors.values():
                ray.kill(actor)
            self.actors = {}
            steps.shutdown()
            shutil.rmtree(staging, ignore_errors=True)

    def _lost(self, a, router):
        if a in self.actors:
            self.ray.kill(self.actors.pop(a))
            router.forget(a)
