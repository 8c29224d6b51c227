"""pesc in a real Jupyter notebook, executed by stock nbclient with its default settings.

Debian 12 ships ipywidgets 6, which stock nbclient cannot serve (KeyError
'state') and which prints "Widget Javascript not detected" without a live
front end: progress there must be a plain-text line, and a Results must show
as an HTML summary table.
"""

import json
import subprocess
import sys

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

WIDGET = "application/vnd.jupyter.widget-view+json"
NO_FRONT_END = "Widget Javascript not detected"


@pytest.fixture(autouse=True)
def python3_kernel_is_this_interpreter(tmp_path, monkeypatch):
    """Jupyter's "python3" kernel runs this interpreter (the venv pesc is installed in), not the one a
    kernelspec on the machine names (Debian's says /usr/bin/python3)."""
    spec = tmp_path / "jupyter" / "kernels" / "python3"
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(json.dumps({"argv": argv, "display_name": "pesc", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))


def run_notebook(*cells: str, tmp_path) -> list:
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in cells]
    client = nbclient.NotebookClient(notebook, resources={"metadata": {"path": str(tmp_path)}})
    client.execute()  # raises CellExecutionError if any cell fails
    return notebook.cells


def _ipywidgets_major() -> int:
    try:
        import ipywidgets
    except ImportError:
        return 0
    return int(ipywidgets.__version__.split(".")[0])


def _plain_texts(cell) -> list:
    return [output["data"]["text/plain"] for output in cell.outputs if "text/plain" in output.get("data", {})]


def _printed(cell, stream: str = "stdout") -> str:
    return "".join(output.get("text", "") for output in cell.outputs
                   if output.output_type == "stream" and output.name == stream)


def test_progress_is_plain_text_and_results_show_as_a_table(tmp_path):
    cells = run_notebook(
        "import pesc",
        "res = pesc.run(lambda rank: rank * rank, repetitions=40)\nprint(res.values == [r * r for r in range(40)])",
        "res",
        tmp_path=tmp_path)
    everything = json.dumps([cell.outputs for cell in cells])
    assert NO_FRONT_END not in everything
    run_cell = cells[1]
    assert _printed(run_cell).strip() == "True"
    assert "pesc: 40/40 ranks done" in _plain_texts(run_cell), json.dumps(run_cell.outputs)[:2000]
    widgets = [output for output in run_cell.outputs if WIDGET in output.get("data", {})]
    if _ipywidgets_major() < 7:
        assert not widgets, "a widget with ipywidgets older than 7: " + json.dumps(widgets)
    for widget in widgets:  # ipywidgets 7 or later: the widget keeps its text line beside it
        assert "text/plain" in widget["data"]
    shown = [output for output in cells[2].outputs if output.output_type == "execute_result"]
    assert len(shown) == 1
    table = shown[0]["data"]["text/html"]
    for expected in ("<table", "succeeded", "wall time", "<td>40</td>", "worker"):
        assert expected in table, table


def test_progress_false_draws_nothing_in_a_notebook(tmp_path):
    cells = run_notebook("import pesc\nres = pesc.run(lambda rank: rank, repetitions=5, progress=False)\n"
                         "print(res.values)", tmp_path=tmp_path)
    outputs = cells[0].outputs
    assert not [output for output in outputs if output.output_type == "display_data"]
    assert [output.text for output in outputs if output.output_type == "stream"] == ["[0, 1, 2, 3, 4]\n"]


def test_the_html_summary_counts_failures_by_class_and_shows_only_the_first_ranks():
    import pesc

    res = pesc.run(lambda rank: 1 // (rank - 1), repetitions=8, progress=False)
    table = res._repr_html_()
    assert "<td>failed</td><td>1</td>" in table and "<td>succeeded</td><td>7</td>" in table
    assert "first 5 of 8 ranks" in table and "<td>5</td>" not in table.split("first 5 of 8 ranks")[1]
    assert "<td>rank</td><td>1</td>" in table  # one failure, the rank's own fault


def test_jupyter_nbconvert_execute_runs_a_pesc_notebook(tmp_path):
    pytest.importorskip("nbconvert")
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell("import pesc\nres = pesc.run(lambda rank: rank, repetitions=6)"),
                      nbformat.v4.new_code_cell("res")]
    path = tmp_path / "job.ipynb"
    nbformat.write(notebook, path)
    # The route the README's users take: "python -m nbconvert" is "jupyter nbconvert".
    done = subprocess.run([sys.executable, "-m", "nbconvert", "--to", "notebook", "--execute", "--stdout",
                           str(path)], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert NO_FRONT_END not in done.stdout
    executed = nbformat.reads(done.stdout, as_version=4)
    assert "pesc: 6/6 ranks done" in _plain_texts(executed.cells[0])
    assert "<table" in executed.cells[1].outputs[0]["data"]["text/html"]


def test_a_widget_display_carries_a_text_plain_line_that_ends_with_the_final_count(monkeypatch):
    """The ipywidgets 7+ route, which Debian 12 cannot run for real: a stand-in ipywidgets."""
    import types

    from pesc import _progress

    class StandInWidget:
        def __init__(self, *args, **traits):
            self.__dict__.update(traits)
            self.model_id = "model-1"

    stand_in = types.ModuleType("ipywidgets")
    stand_in.__version__ = "8.1.0"
    stand_in.IntProgress = stand_in.HTML = stand_in.HBox = StandInWidget
    monkeypatch.setitem(sys.modules, "ipywidgets", stand_in)
    drawn = []
    handle = types.SimpleNamespace(update=lambda bundle, raw: drawn.append(bundle))
    monkeypatch.setattr("IPython.display.display", lambda bundle, raw, display_id: drawn.append(bundle) or handle)
    bar = _progress._NotebookBar(3, 0, "pesc", widgets=True)
    for count in (1, 2, 3):
        bar.update(count)
    bar.close()
    assert drawn[0] == {"text/plain": "pesc: 0/3 ranks done",
                        WIDGET: {"version_major": 2, "version_minor": 0, "model_id": "model-1"}}
    assert drawn[-1]["text/plain"] == "pesc: 3/3 ranks done" and WIDGET in drawn[-1]
