"""pesc in a real Jupyter notebook: an ipykernel runs the cells, as in JupyterLab.

The progress bar must be a widget there (tqdm.auto picks it when ipywidgets is
importable), and the results must arrive in the notebook like anywhere else.
"""

import json
import sys

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")
pytest.importorskip("ipywidgets")

WIDGET = "application/vnd.jupyter.widget-view+json"


def run_notebook(*cells: str, tmp_path) -> list:
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in cells]
    # The kernel is this interpreter (the venv pesc is installed in), not
    # whatever "python3" a kernelspec on the machine names.
    client = _TolerantClient(notebook, timeout=120, kernel_name="python3", store_widget_state=False,
                                   resources={"metadata": {"path": str(tmp_path)}})
    client.kernel_manager_class = _this_interpreter_kernel_manager()
    client.execute()
    return notebook.cells


class _TolerantClient(nbclient.NotebookClient):
    """Debian's ipywidgets 6 opens widget comms without the state newer nbclients expect."""

    def on_comm_open_jupyter_widget(self, msg):
        if "state" not in msg["content"].get("data", {}):
            return None
        return super().on_comm_open_jupyter_widget(msg)


def _this_interpreter_kernel_manager():
    from jupyter_client.manager import KernelManager

    class ThisInterpreter(KernelManager):
        def format_kernel_cmd(self, extra_arguments=None):
            return [sys.executable, "-m", "ipykernel_launcher", "-f", self.connection_file]

    return ThisInterpreter


def test_progress_is_a_widget_and_values_come_back_in_rank_order(tmp_path):
    cells = run_notebook(
        "import pesc",
        "res = pesc.run(lambda rank: rank * rank, repetitions=40)\nprint(res.values == [r * r for r in range(40)])",
        tmp_path=tmp_path)
    run_cell = cells[1]
    widgets = [output for output in run_cell.outputs if WIDGET in output.get("data", {})]
    assert len(widgets) == 1, "not one progress widget in the cell's outputs: " + json.dumps(run_cell.outputs)[:2000]
    printed = "".join(output.get("text", "") for output in run_cell.outputs if output.output_type == "stream"
                      and output.name == "stdout")
    assert printed.strip() == "True"


def test_progress_false_draws_nothing_in_a_notebook(tmp_path):
    cells = run_notebook("import pesc\nres = pesc.run(lambda rank: rank, repetitions=5, progress=False)\n"
                         "print(res.values)", tmp_path=tmp_path)
    outputs = cells[0].outputs
    assert not [output for output in outputs if WIDGET in output.get("data", {})]
    assert [output.text for output in outputs if output.output_type == "stream"] == ["[0, 1, 2, 3, 4]\n"]
