"""Suite-wide settings: one torch thread (two threads fight over two cores here)."""

import torch

torch.set_num_threads(1)
