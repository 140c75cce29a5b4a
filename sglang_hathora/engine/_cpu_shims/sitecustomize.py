"""Start-up hook for every Python process whose PYTHONPATH holds this folder (CPU mode only).

sglang spawns its scheduler and detokenizer as fresh interpreters: they inherit environment
variables but not sys.modules, so PYTHONPATH is how the CPU fixes reach them (cpu_compat.py).
"""

from sglang_hathora.engine.cpu_compat import install_torchvision_fix

install_torchvision_fix()
