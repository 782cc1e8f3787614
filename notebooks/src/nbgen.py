"""Shared by the notebook generator scripts in this folder.

    md, code, write = notebook("02-lift-study.ipynb")
    md(r'''# Title''')
    code(r'''const x = 1;''')
    write()

Writes notebooks/<name> without outputs (CI executes it with the cleanroom-ts kernel).
"""
import os

import nbformat as nbf

NOTEBOOKS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
METADATA = {
    "kernelspec": {"name": "cleanroom-ts", "display_name": "TypeScript (cleanroom-lab)", "language": "typescript"},
    "language_info": {"name": "typescript", "file_extension": ".ts", "mimetype": "text/typescript"},
}


def notebook(name, room=None):
    """Return (md, code, write) for notebooks/<name>.

    `room={"group": G, "args": [...]}` marks a party notebook: scripts/run-notebooks.py runs every
    notebook of group G at the same time, against one room server it starts with `args`.
    """
    cells = []

    def md(source):
        cells.append(nbf.v4.new_markdown_cell(source.strip("\n")))

    def code(source):
        cells.append(nbf.v4.new_code_cell(source.strip("\n")))

    def write():
        nb = nbf.v4.new_notebook()
        for i, cell in enumerate(cells):
            cell.id = f"cell-{i:03d}"  # stable ids: regenerating gives no diff
        nb.cells = cells
        nb.metadata = dict(METADATA, **({"cleanroom": {"room": room}} if room else {}))
        out = os.path.join(NOTEBOOKS, name)
        nbf.write(nb, out)
        print(f"wrote {os.path.relpath(out)} ({len(cells)} cells)")

    return md, code, write
