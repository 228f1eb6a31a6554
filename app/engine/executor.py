"""Run a validated workflow: plan, key, serve from cache or execute, emit events."""
import time
from dataclasses import dataclass, field

from latentloom.app.core.errors import UserError
from latentloom.app.core.workflow import Problem, WorkflowError
from latentloom.app.engine import events as ev
from latentloom.app.engine.cache import Cache
from latentloom.app.engine.cancel import CancelToken, Cancelled
from latentloom.app.engine.files import FileProblem, Files, fingerprint
from latentloom.app.engine.keys import node_key
from latentloom.app.engine.plan import plan, targets_of


class NodeError(Exception):
    """A node failed at run time."""

    def __init__(self, node_id, type, message):
        self.node_id, self.type, self.message = node_id, type, message
        super().__init__(f"node {node_id!r} ({type}) failed: {message}")


@dataclass
class RunResult:
    executed: list = field(default_factory=list)
    cached: list = field(default_factory=list)
    outputs: list = field(default_factory=list)
    seconds: float = 0.0
    values: dict = field(default_factory=dict)  # node id -> outputs dict, for the nodes visited


class Context:
    """What a node function sees of the engine."""

    def __init__(self, engine, node_id, files, workflow, emit, cancel, result):
        self.engine, self.node_id, self.env = engine, node_id, engine.env
        self.output_dir = engine.output_dir
        self.workflow = workflow  # the JSON document being run, for embedding in outputs
        self._files, self._emit, self._cancel, self._result = files, emit, cancel, result

    def file(self, param):
        """The resolved file param: an absolute path, or a hub id."""
        r = self._files[0][param]
        return r.path or r.hub_id

    def refs(self, param):
        """{name: path} of the files named in a param's text (NodeSpec.refs) that were found."""
        prefix = param + ":"
        return {k[len(prefix):]: r.path for k, r in self._files[0].items() if k.startswith(prefix)}

    def fingerprint(self, param):
        """The file param's fingerprint (changes when the file does)."""
        return self._files[1][param]

    def progress(self, step, total, preview=None):
        self._cancel.check()
        self._emit(ev.NodeProgress(self.node_id, step, total, preview() if callable(preview) else preview))

    def check_cancel(self):
        """Raise Cancelled if the run was cancelled (for long operations inside a node)."""
        self._cancel.check()

    def log(self, message):
        self._emit(ev.NodeLog(self.node_id, message))

    def wrote(self, path):
        self._result.outputs.append(str(path))
        self._emit(ev.NodeOutput(self.node_id, str(path)))

    def show(self, images):
        """Hand PIL images to the face (the editor's image panel) without writing them."""
        self._emit(ev.NodeImage(self.node_id, tuple(images)))

    @property
    def wants_preview(self):
        return self.engine.previews


class Engine:
    """One per process (or per editor window): shares its cache across runs and workflows."""

    def __init__(self, catalog, output_dir="output", models_dirs=(), env=None, cache=None, previews=True,
                 base_dirs=()):
        self.catalog = catalog
        self.base_dirs = list(base_dirs)  # also searched for relative file params (after models_dirs)
        self.output_dir = output_dir
        self.models_dirs = list(models_dirs)
        self.env = env
        self.cache = cache if cache is not None else Cache()
        self.previews = previews

    def resolve_files(self, wf, order, base_dirs=()):
        """Resolve every file param of the planned nodes; all problems at once."""
        files = Files(self.models_dirs, list(base_dirs) + self.base_dirs)
        resolved, problems = {}, []
        for nid in order:
            node, spec = wf.nodes[nid], self.catalog.get(wf.nodes[nid].type)
            resolved[nid] = {}
            overridden = spec.overridden(node.inputs)
            for p in spec.params:
                value = node.params.get(p.name, p.default)
                if p.kind != "file" or (not value and p.optional) or p.name in overridden:
                    continue
                try:
                    resolved[nid][p.name] = files.resolve(value, p.folder, hub_ok=p.hub)
                except FileProblem as e:
                    problems.append(Problem(nid, f"param {p.name!r}", str(e)))
            for ref in (spec.refs(dict(spec.defaults(), **node.params)) if spec.refs else ()):
                found = files.find(ref.candidates, ref.folder, walk=ref.walk)
                if found is not None:
                    resolved[nid][f"{ref.param}:{ref.name}"] = found
                elif ref.required:
                    problems.append(Problem(nid, f"param {ref.param!r}", f"{ref.what} {ref.name!r} not found: put "
                                            f"{' or '.join(ref.candidates)} into {files.where(ref.folder)}"))
        if problems:
            raise WorkflowError(problems)
        return resolved

    def fingerprints(self, wf, order, resolved, cancel=None):
        """Every file param's fingerprint; a file that cannot be read is a WorkflowError naming it."""
        fps, problems = {}, []
        for nid in order:
            spec = self.catalog.get(wf.nodes[nid].type)
            fps[nid] = {}
            for name, r in resolved[nid].items():
                param = spec.param(name)
                mode = param.fingerprint if param is not None else "stat"  # refs ("text:name")
                try:
                    fps[nid][name] = fingerprint(r, mode, cancel)
                except FileProblem as e:
                    problems.append(Problem(nid, f"param {name.split(':')[0]!r}", str(e)))
        if problems:
            raise WorkflowError(problems)
        return fps

    @staticmethod
    def key(spec, node, fps, keys, values):
        """A node's cache key, taken once its sources have run or come from the cache.

        An input whose value is a handle with a cache_token is keyed by that token rather than
        by its source node: a LoRA's strength_model changes the model handle, not the clip
        handle, so the text encoders downstream stay cached.
        """
        upstream = {}
        for port, (src, out) in node.inputs.items():
            token = getattr(values[src][out], "cache_token", None)
            upstream[port] = ("value", token) if token is not None else (keys[src], out)
        return node_key(spec, node.params, fps, upstream)

    def run(self, wf, targets=None, on_event=None, cancel=None, document=None, base_dirs=()):
        """Run a validated workflow. Raises WorkflowError, NodeError or Cancelled."""
        emit = on_event or (lambda e: None)
        cancel = cancel or CancelToken()
        t_run = time.perf_counter()
        targets = targets if targets is not None else targets_of(wf, self.catalog)
        if not targets:
            raise WorkflowError([Problem(None, None, "nothing to run: the workflow has no output node "
                                         "(such as SaveImage)")])
        order = plan(wf, targets)
        resolved = self.resolve_files(wf, order, base_dirs)
        fps = self.fingerprints(wf, order, resolved, cancel)
        keys = {}
        document = document if document is not None else wf.to_json()
        result = RunResult()
        emit(ev.RunStarted(tuple(order)))
        status = "failed"
        try:
            for nid in order:
                cancel.check()
                node = wf.nodes[nid]
                keys[nid] = self.key(self.catalog.get(node.type), node, fps[nid], keys, result.values)
                self._visit(wf, nid, keys[nid], (resolved[nid], fps[nid]), document, emit, cancel, result)
            status = "ok"
        except Cancelled:
            status = "cancelled"
            raise
        finally:
            if hasattr(self.env, "run_finished"):
                self.env.run_finished()  # e.g. --lowvram offloads what is still on the GPU
            result.seconds = time.perf_counter() - t_run
            emit(ev.RunFinished(status, result.seconds, tuple(result.executed), tuple(result.cached),
                                tuple(result.outputs)))
        return result

    def _visit(self, wf, nid, key, files, document, emit, cancel, result):
        node = wf.nodes[nid]
        spec = self.catalog.get(node.type)
        cached = None if spec.output_node else self.cache.get(key)
        if cached is not None:
            result.cached.append(nid)
            result.values[nid] = cached
            emit(ev.NodeCached(nid, spec.type))
            return
        emit(ev.NodeStarted(nid, spec.type))
        t0 = time.perf_counter()
        kwargs = {port: result.values[src][out] for port, (src, out) in node.inputs.items()}
        kwargs.update(node.params)
        ctx = Context(self, nid, files, document, emit, cancel, result)
        try:
            out = spec.fn(ctx, **kwargs)
        except Cancelled:
            raise
        except UserError as e:
            emit(ev.NodeFailed(nid, spec.type, str(e)))
            raise NodeError(nid, spec.type, str(e)) from e
        except Exception as e:  # a bug or a library error: keep one line for the user
            message = f"{type(e).__name__}: {(str(e).strip().splitlines() or [''])[0]}"
            emit(ev.NodeFailed(nid, spec.type, message))
            raise NodeError(nid, spec.type, message) from e
        try:
            outputs = self._outputs(spec, out)
        except ValueError as e:
            emit(ev.NodeFailed(nid, spec.type, str(e)))
            raise NodeError(nid, spec.type, str(e)) from e
        if not spec.output_node:
            self.cache.put(key, outputs)
        result.values[nid] = outputs
        result.executed.append(nid)
        emit(ev.NodeFinished(nid, spec.type, time.perf_counter() - t0))

    @staticmethod
    def _outputs(spec, out):
        names = [p.name for p in spec.outputs]
        if len(names) == 1 and not (isinstance(out, dict) and set(out) == set(names)):
            out = {names[0]: out}
        out = out or {}
        missing = [n for n in names if n not in out]
        if missing:
            raise ValueError(f"node function returned no {', '.join(missing)}")
        return out
