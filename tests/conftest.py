"""Test configuration: the hypothesis profiles of plastic.testing (``ci``
deterministic and bounded, ``thorough`` for long runs), chosen by
HYPOTHESIS_PROFILE; one torch thread per test process."""

import torch

from plastic.testing import register_profiles

register_profiles()
torch.set_num_threads(1)
