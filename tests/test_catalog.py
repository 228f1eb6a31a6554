"""Node declarations are checked when they register; a node returning too little fails on its node."""
import pytest

from latentloom.app.core.catalog import Catalog
from latentloom.app.core.spec import Out, Param
from latentloom.app.core.validate import load
from latentloom.app.engine.executor import Engine, NodeError


def test_unknown_param_kind_is_refused_at_registration():
    cat = Catalog()
    with pytest.raises(ValueError, match=r"node type 'X': params \['p'\] have an unknown kind"):
        cat.node("X", "test", "help", params=[Param("p", "colour", 0)])(lambda ctx, p: None)


def test_a_node_that_returns_too_little_fails_naming_itself(tmp_path):
    cat = Catalog()
    cat.node("Two", "test", "help", outputs=[Out("a", "IMAGE"), Out("b", "IMAGE")])(lambda ctx: {"a": 1})
    cat.node("Sink", "test", "help", inputs=[], output_node=True)(lambda ctx: {})
    doc = {"format": "latentloom.workflow", "version": 1, "nodes": {"two": {"type": "Two"}}}
    engine = Engine(cat, output_dir=tmp_path)
    with pytest.raises(NodeError) as err:
        engine.run(load(doc, cat), targets=["two"])
    assert str(err.value) == "node 'two' (Two) failed: node function returned no b"
