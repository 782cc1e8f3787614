"""The environment every kernel test starts kernels in (imported by the test_*.py modules).

The project's kernel spec (kernel-lib/jupyter) is appended to JUPYTER_PATH, so that a
JUPYTER_PATH given by the caller can point at another kernel build; Jupyter's runtime, data and
config state stays in the project's scratch space, not in $HOME.
"""

import os

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
KERNELS = os.path.join(ROOT, "kernel-lib", "jupyter")

if KERNELS not in os.environ.get("JUPYTER_PATH", "").split(os.pathsep):
    os.environ["JUPYTER_PATH"] = os.pathsep.join(filter(None, [os.environ.get("JUPYTER_PATH"), KERNELS]))
for _var, _sub in (("JUPYTER_RUNTIME_DIR", "runtime"), ("JUPYTER_DATA_DIR", "data"),
                   ("JUPYTER_CONFIG_DIR", "config"), ("IPYTHONDIR", "ipython")):
    os.environ.setdefault(_var, os.path.join(ROOT, ".scratch", "jupyter", _sub))
    os.makedirs(os.environ[_var], exist_ok=True)
