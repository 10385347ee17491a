"""Write a stripped notebook from a compact spec (a Python file defining TITLE and CELLS).

CELLS is a list of (kind, source) with kind in {"md", "params", "code"}; "params" becomes the
single cell tagged ``parameters``. Usage::

    .venv/bin/python tools/make_notebook.py spec.py notebooks/NN_name.ipynb

Notebooks are the committed source; this is a convenience for writing them outside JupyterLab.
"""

import sys

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook


def main(spec_path: str, out_path: str) -> None:
    ns: dict = {}
    exec(open(spec_path, encoding="utf-8").read(), ns)
    cells = []
    for kind, src in ns["CELLS"]:
        src = src.strip("\n")
        if kind == "md":
            cells.append(new_markdown_cell(src))
        elif kind == "params":
            cells.append(new_code_cell(src, metadata={"tags": ["parameters"]}))
        else:
            cells.append(new_code_cell(src))
    nb = new_notebook(cells=cells, metadata={
        "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
        "title": ns.get("TITLE", ""),
    })
    nbformat.write(nb, out_path)


if __name__ == "__main__":
    main(*sys.argv[1:3])
