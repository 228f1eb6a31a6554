"""Which nodes run after each kind of edit; events; failure and cancellation."""
import pytest

from latentloom.app.engine import events as ev
from latentloom.app.engine.cancel import CancelToken, Cancelled
from latentloom.app.engine.executor import NodeError
from tests.conftest import load_workflow

ALL = ["ckpt", "positive", "negative", "latent", "noise", "scheduler", "sampler", "decode", "save"]


def tiny(tiny_dir, **sets):
    base = {"ckpt.path": str(tiny_dir), "ckpt.dtype": "fp32", "sampler.steps": 2, "latent.width": 64,
            "latent.height": 64}
    base.update(sets)
    return load_workflow("txt2img.json", **base)


@pytest.fixture
def warm(engine, tiny_dir):
    first = engine.run(tiny(tiny_dir))
    assert first.executed == ALL and first.cached == []
    return engine


@pytest.mark.parametrize("edit,reran", [
    ({}, ["save"]),
    ({"noise.seed": 7}, ["noise", "sampler", "decode", "save"]),
    ({"positive.text": "another prompt"}, ["positive", "sampler", "decode", "save"]),
    ({"save.filename_prefix": "other"}, ["save"]),
    ({"sampler.cfg": 3.0}, ["sampler", "decode", "save"]),
    ({"scheduler.name": "ddim"}, ["scheduler", "sampler", "decode", "save"]),
    # Spelling out the spacing euler resolves to anyway gives an equal scheduler handle:
    # edges are keyed by handle value, so the sampler stays cached.
    ({"scheduler.spacing": "leading"}, ["scheduler", "save"]),
])
def test_only_the_edited_node_and_downstream_rerun(warm, tiny_dir, edit, reran):
    result = warm.run(tiny(tiny_dir, **edit))
    assert result.executed == reran
    assert sorted(result.cached) == sorted(set(ALL) - set(reran))
    assert len(result.outputs) == 1


def test_changing_the_checkpoint_reruns_everything_that_uses_it(warm, tiny_dir, tmp_path):
    import shutil
    other = tmp_path / "copy-of-tiny"
    shutil.copytree(tiny_dir, other)
    result = warm.run(tiny(tiny_dir, **{"ckpt.path": str(other)}))
    assert result.executed == ["ckpt", "positive", "negative", "scheduler", "sampler", "decode", "save"]
    assert result.cached == ["latent", "noise"]


def test_node_ids_and_ui_data_do_not_enter_cache_keys(warm, tiny_dir):
    wf = tiny(tiny_dir)
    wf.nodes["ckpt"].ui["pos"] = [1, 2]
    wf.ui["zoom"] = 3
    assert warm.run(wf).executed == ["save"]


def test_touching_the_checkpoint_file_reloads_it(engine, tiny_dir, runtime, tmp_path):
    import os
    import shutil
    path = tmp_path / "tiny"
    shutil.copytree(tiny_dir, path)
    engine.run(tiny(path))
    loads = runtime.store.loads
    weights = next(path.glob("unet/*.safetensors"))
    os.utime(weights, ns=(1, 1))
    result = engine.run(tiny(path))
    assert "ckpt" in result.executed and runtime.store.loads == loads + 1


def test_a_loaded_checkpoint_is_shared_between_workflows(runtime, tiny_dir, tmp_path):
    from latentloom.app.engine.executor import Engine
    from latentloom.nodes import catalog
    e1 = Engine(catalog, output_dir=tmp_path / "a", env=runtime)
    e2 = Engine(catalog, output_dir=tmp_path / "b", env=runtime)
    e1.run(tiny(tiny_dir))
    loads = runtime.store.loads
    e2.run(tiny(tiny_dir, **{"noise.seed": 99}))
    assert runtime.store.loads == loads


def test_events_in_order_with_progress_and_previews(engine, tiny_dir):
    seen = []
    engine.previews = True
    engine.run(tiny(tiny_dir, **{"sampler.steps": 3}), on_event=seen.append)
    kinds = [type(e).__name__ for e in seen]
    assert kinds[0] == "RunStarted" and kinds[-1] == "RunFinished"
    progress = [e for e in seen if isinstance(e, ev.NodeProgress)]
    assert [(p.step, p.total) for p in progress] == [(1, 3), (2, 3), (3, 3)]
    assert progress[0].preview.size == (8, 8)
    finished = [e.node_id for e in seen if isinstance(e, ev.NodeFinished)]
    assert finished == ALL
    assert all(e.seconds >= 0 for e in seen if isinstance(e, ev.NodeFinished))


def test_cancel_between_steps_keeps_cache_consistent_and_resumes(engine, tiny_dir):
    token = CancelToken()

    def on_event(e):
        if isinstance(e, ev.NodeProgress) and e.step == 2:
            token.cancel()

    wf = tiny(tiny_dir, **{"sampler.steps": 5})
    with pytest.raises(Cancelled):
        engine.run(wf, on_event=on_event, cancel=token)
    result = engine.run(wf)
    assert result.executed == ["sampler", "decode", "save"]
    assert sorted(result.cached) == sorted(["ckpt", "positive", "negative", "latent", "noise", "scheduler"])


def test_a_failing_node_stops_downstream_and_keeps_finished_work(engine, tiny_dir):
    seen = []
    wf = tiny(tiny_dir, **{"positive.clip_skip": 5})  # the tiny text encoder has 3 layers
    with pytest.raises(NodeError) as err:
        engine.run(wf, on_event=seen.append)
    assert err.value.node_id == "positive" and err.value.type == "TextEncode"
    assert "clip_skip 5 is too large" in err.value.message
    failed = [e for e in seen if isinstance(e, ev.NodeFailed)]
    assert [(f.node_id, f.type) for f in failed] == [("positive", "TextEncode")]
    started = [e.node_id for e in seen if isinstance(e, ev.NodeStarted)]
    assert "sampler" not in started
    assert seen[-1].status == "failed"
    result = engine.run(tiny(tiny_dir))
    assert "ckpt" in result.cached and "positive" in result.executed


def test_output_files_never_overwrite(engine, tiny_dir):
    a = engine.run(tiny(tiny_dir)).outputs
    b = engine.run(tiny(tiny_dir)).outputs
    assert [p.rsplit("/", 1)[1] for p in a + b] == ["txt2img_00001.png", "txt2img_00002.png"]


def test_symlinked_subfolder_cannot_lead_outside_the_output_folder(engine, tiny_dir, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (engine.output_dir).mkdir(parents=True)
    (engine.output_dir / "link").symlink_to(outside)
    with pytest.raises(NodeError, match="^node .save. \(SaveImage\) failed: filename_prefix .link/x. leads outside the output folder$"):
        engine.run(tiny(tiny_dir, **{"save.filename_prefix": "link/x"}))
    assert list(outside.iterdir()) == []
