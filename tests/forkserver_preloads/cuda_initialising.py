"""A preload module that initialises CUDA, as seen by torch (this machine has no GPU, so torch is told)."""

import torch

torch.cuda.is_initialized = lambda: True
