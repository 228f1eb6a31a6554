"""The session: the one place that opens documents, applies overrides, validates, builds the
runtime and runs workflows and sweeps. The CLI, the editor and the tests are faces over it."""
import copy
import os
from dataclasses import dataclass, field
from pathlib import Path

from latentloom.app.core import sweep as sweeps
from latentloom.app.core.validate import check as check_document
from latentloom.app.core.workflow import Problem, WorkflowError, scan
from latentloom.app.engine.executor import Engine
from latentloom.app.engine.memory import total_ram, workflow_problems
from latentloom.app.engine.plan import plan, targets_of
from latentloom.app.session.overrides import apply_sets, set_param
from latentloom.app.session.readers import Document, open_document


@dataclass
class Prepared:
    """A validated workflow, ready to run."""
    workflow: object                 # app.core.workflow.Workflow
    document: dict                   # what its outputs embed (input files made absolute)
    source: str = ""
    base_dirs: list = field(default_factory=list)
    axes: list = field(default_factory=list)   # sweep axes, when the document carries a sweep

    @property
    def is_sweep(self):
        return bool(self.axes)


def models_dirs_from(args_dirs=None):
    """--models folders, then LATENTLOOM_MODELS; ./models when neither is given."""
    dirs = list(args_dirs or [])
    env = os.environ.get("LATENTLOOM_MODELS")
    if env:
        dirs += [d for d in env.split(os.pathsep) if d]
    return dirs or ["models"]


RAM_FRACTION, VRAM_FRACTION = 0.5, 0.8  # default cache budgets: these fractions of the memory
GB = 1 << 30


class Session:
    def __init__(self, catalog=None, models_dirs=("models",), output_dir="output", device="auto",
                 allow_pickle=False, previews=False, cache_ram=None, cache_vram=None, compile=False,
                 lowvram=False):
        """cache_ram / cache_vram: the budget in GB for cached node outputs and loaded models
        (None: RAM_FRACTION of the RAM, VRAM_FRACTION of the GPU's memory)."""
        if catalog is None:
            from latentloom.nodes import catalog
        self.catalog = catalog
        self.device, self.allow_pickle = device, allow_pickle
        self.compile, self.lowvram = compile, lowvram  # speed settings (app.sd.speed, app.sd.offload)
        self.engine = Engine(catalog, output_dir=str(output_dir), models_dirs=[str(d) for d in models_dirs],
                             env=None, previews=previews)
        self.cache_ram, self.cache_vram = cache_ram, cache_vram
        ram = int(cache_ram * GB) if cache_ram is not None else int(total_ram() * RAM_FRACTION) or None
        self.engine.cache.max_bytes = ram

    # -- settings ----------------------------------------------------------------------------
    @property
    def output_dir(self):
        return self.engine.output_dir

    def configure(self, output_dir=None, models_dirs=None, device=None, compile=None, lowvram=None):
        """New settings apply from the next run; a new device, compile or lowvram setting drops the
        runtime and the cache."""
        if output_dir is not None:
            self.engine.output_dir = str(output_dir)
        if models_dirs is not None:
            self.engine.models_dirs = [str(d) for d in models_dirs]
        changed = False
        for name, value in (("device", device), ("compile", compile), ("lowvram", lowvram)):
            if value is not None and value != getattr(self, name):
                setattr(self, name, value)
                changed = True
        if changed and self.engine.env is not None:
            self.engine.env = None
            self.engine.cache.clear()

    @property
    def runtime(self):
        """The torch runtime (device and model store), built on first use and kept."""
        if self.engine.env is None:
            from latentloom.app.sd.runtime import Runtime
            env = Runtime(self.device, allow_pickle=self.allow_pickle, compile=self.compile,
                          lowvram=self.lowvram)
            cache = self.engine.cache
            vram = int(self.cache_vram * GB) if self.cache_vram is not None else env.vram_budget(VRAM_FRACTION)
            env.store.max_bytes, env.store.max_vram_bytes = cache.max_bytes, vram
            cache.max_vram_bytes, cache.others = vram, env.store.nbytes
            self.engine.env = env
        return self.engine.env

    def cache_stats(self):
        """The cache's size and budgets, models included (for --report)."""
        stats = self.engine.cache.stats()
        store = self.engine.env.store if self.engine.env is not None else None
        cpu, gpu = store.nbytes() if store is not None else (0, 0)
        stats.update(models=len(store) if store is not None else 0, model_ram_bytes=cpu,
                     model_vram_bytes=gpu, ram_budget_bytes=self.engine.cache.max_bytes,
                     vram_budget_bytes=self.engine.cache.max_vram_bytes)
        return stats

    @property
    def loaded(self):
        return self.engine.env is not None

    # -- documents ---------------------------------------------------------------------------
    def open(self, path):
        """Read a document of any registered format (WorkflowError if it cannot be read)."""
        return open_document(path)

    def prepare(self, doc, sets=(), strict=True):
        """Overrides, validation and file checks on a Document (or a plain dict); all problems at once.

        Returns a Prepared; raises WorkflowError."""
        if not isinstance(doc, Document):
            doc = Document(doc, "", None, "dict")
        problems, fatal = scan(doc.data)
        if fatal:  # too deep to copy
            raise WorkflowError(problems, doc.source or None)
        data = copy.deepcopy(doc.data)
        problems, _ = apply_sets(data, list(sets), strict=strict)
        base_dirs = [doc.base_dir] if doc.base_dir else []
        wf, more = check_document(data, self.catalog)
        problems += more
        axes = []
        if wf is not None and wf.sweep is not None:
            axes, more = sweeps.parse(wf.sweep)
            problems += more or sweeps.check(axes, wf, self.catalog)
        if wf is not None and not problems:
            problems += self._check_runnable(wf, axes, base_dirs)
        if problems:
            raise WorkflowError(problems, doc.source or None)
        return Prepared(wf, self._document(wf, base_dirs), doc.source, base_dirs, axes)

    def load(self, path, sets=(), strict=True):
        return self.prepare(self.open(path), sets, strict)

    def load_all(self, paths, sets=()):
        """Several documents with shared --set: each set applies to every document that has its
        node, and is an error only when none has it. Returns ([Prepared], [WorkflowError])."""
        from latentloom.app.session.overrides import find_node, parse_set
        docs, errors = [], []
        for path in paths:
            try:
                docs.append(self.open(path))
            except WorkflowError as e:
                errors.append(e)
        unmatched = []
        for item in sets:
            parsed = parse_set(item)
            if isinstance(parsed, tuple) and docs and not any(find_node(d.data, parsed[0]) for d in docs):
                unmatched.append(Problem(parsed[0], None, f"--set {item!r}: no such node in any workflow"))
        if unmatched:
            errors.append(WorkflowError(unmatched, "--set"))
        prepared = []
        for d in docs:
            try:
                prepared.append(self.prepare(d, sets, strict=len(paths) == 1))
            except WorkflowError as e:
                errors.append(e)
        return prepared, errors

    def _check_runnable(self, wf, axes, base_dirs):
        """What `run` would refuse before running: no output node, files that do not resolve, pickle
        checkpoints without the opt-in, sizes that cannot fit in memory (in every sweep cell whose
        axes touch a file param or a latent size)."""
        targets = targets_of(wf, self.catalog)
        if not targets:
            return [Problem(None, None, "nothing to run: the workflow has no output node (such as SaveImage)")]
        problems = self._file_problems(wf, targets, base_dirs) or self._model_problems(wf, targets, base_dirs)
        if axes:
            seen = {str(p) for p in problems}
            for cell in sweeps.cells(axes):
                if not any(self._is_file(wf, n, p) or wf.nodes[n].type == "EmptyLatent" for n, p, _ in cell.sets):
                    continue
                cell_wf = self.cell_workflow(wf, cell)
                for p in (self._file_problems(cell_wf, targets, base_dirs)
                          or self._model_problems(cell_wf, targets, base_dirs)):
                    if str(p) not in seen:
                        seen.add(str(p))
                        problems.append(p)
        return problems

    def _model_problems(self, wf, targets, base_dirs):
        """Checkpoints read with pickle without the user's opt-in; sizes that cannot fit in memory
        with the checkpoints' weights."""
        from latentloom.app.engine.files import PICKLE_MESSAGE, pickle_weights, weights_bytes
        resolved = self.engine.resolve_files(wf, plan(wf, targets), base_dirs)
        problems, weights = [], 0
        for nid, files in resolved.items():
            spec = self.catalog.get(wf.nodes[nid].type)
            for name, r in files.items():
                if not r.path or spec.param(name).folder != "checkpoints":
                    continue
                weights += weights_bytes(r.path)
                found = [] if self.allow_pickle else pickle_weights(r.path)
                if found:
                    what = f"{Path(r.path).name}/{found[0]}" if Path(r.path).is_dir() else found[0]
                    problems.append(Problem(nid, f"param {name!r}", PICKLE_MESSAGE.format(what=what)))
        return problems + workflow_problems(wf, model_bytes=weights)

    def _is_file(self, wf, node_id, param):
        spec = self.catalog.get(wf.nodes[node_id].type)
        return spec.param(param).kind == "file"

    def _file_problems(self, wf, targets, base_dirs):
        try:
            self.engine.resolve_files(wf, plan(wf, targets), base_dirs)
        except WorkflowError as e:
            return e.problems
        return []

    def _document(self, wf, base_dirs):
        """The workflow as its outputs embed it: file params found beside the workflow or in the
        working folder become absolute paths, so the PNG re-runs from anywhere."""
        doc = wf.to_json()
        doc.pop("sweep", None)
        if not base_dirs:
            return doc
        try:
            resolved = self.engine.resolve_files(wf, list(wf.nodes), base_dirs)
        except WorkflowError:
            return doc
        models = [Path(d).expanduser().resolve() for d in self.engine.models_dirs]
        for nid, files in resolved.items():
            for name, r in files.items():
                if ":" in name or not r.path or Path(r.value).expanduser().is_absolute():  # ":": refs
                    continue
                path = Path(r.path)
                if not any(m == path or m in path.parents for m in models):
                    set_param(doc, nid, name, str(path))
        return doc

    def cell_workflow(self, wf, cell):
        """A sweep cell's plain workflow: the sweep's values set, no sweep block."""
        cell_wf = copy.deepcopy(wf)
        cell_wf.sweep = None
        for node_id, param, value in cell.sets:
            cell_wf.nodes[node_id].params[param] = value
        return cell_wf

    # -- running -----------------------------------------------------------------------------
    def run(self, prepared, on_event=None, cancel=None, targets=None, document=None):
        """Run one prepared workflow (not its sweep). Raises WorkflowError, NodeError or Cancelled."""
        self.runtime  # noqa: B018  (build it before the first node)
        return self.engine.run(prepared.workflow, targets=targets, on_event=on_event, cancel=cancel,
                               document=document if document is not None else prepared.document,
                               base_dirs=prepared.base_dirs)

    def sweep(self, prepared, on_event=None, cancel=None, dispatch=None):
        """Run every cell of a prepared sweep; see app.session.sweeping (dispatch: app.session.workers)."""
        from latentloom.app.session.sweeping import run_sweep
        return run_sweep(self, prepared, on_event=on_event, cancel=cancel, dispatch=dispatch)

    def settings(self):
        """What a worker process needs to build an equal session (app.session.workers)."""
        return dict(models_dirs=list(self.engine.models_dirs), device=self.device, allow_pickle=self.allow_pickle,
                    compile=self.compile, lowvram=self.lowvram, cache_ram=self.cache_ram, cache_vram=self.cache_vram)
