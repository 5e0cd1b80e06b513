"""The eager PyTorch backend: the reference every exported graph must match (``fedmef.training``).

Same interface as ``rounds.GraphBackend`` — wire arrays and the plan in, sparse update out — but
the model is rebuilt from the run config and trained by ``training.local_train``. Imported only
when a node runs the ``torch`` backend, so a client running exported graphs never loads torch.
FedDST's local prune/regrow (``readjust/<layer>`` plan keys) runs here only: the reply then
carries the client's new masks ``m/<layer>``.
"""

from __future__ import annotations

import numpy as np
import torch

from fedmef import feddst, training, wire
from fedmef import protocol as p
from fedmef.config import RunConfig
from fedmef.task import make_model


class EagerBackend:
    def __init__(self, config: RunConfig):
        self.config = config
        # One intra-op thread: these small models gain nothing from more, and with simulated clients
        # sharing a busy machine two threads made a digits round ~10x slower (12 s vs 123 s measured).
        torch.set_num_threads(1)

    def _model(self, arrays: p.Arrays) -> torch.nn.Module:
        model = make_model(self.config)
        wire.decode_state(model, arrays)
        return model

    def train(self, arrays: p.Arrays, plan: dict, x: np.ndarray, y: np.ndarray) -> tuple[p.Arrays, float]:
        model, local = self._model(arrays), wire.decode_plan(plan, arrays)
        xs, ys = torch.from_numpy(x), torch.from_numpy(y)
        loss = training.local_train(model, xs, ys, local)
        batch = torch.from_numpy(p.growth_batch(len(x), local.batch_size, local.seed))
        if local.readjust_counts:
            feddst.readjust(model, xs[batch], ys[batch], local.readjust_counts)
        update = wire.encode_state(model, with_masks=bool(local.readjust_counts))
        if local.growth_counts:
            update |= wire.encode_growth(training.growth_signal(model, xs[batch], ys[batch], local.growth_counts))
        return update, loss

    def evaluate(self, arrays: p.Arrays, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
        return training.evaluate(self._model(arrays), torch.from_numpy(x), torch.from_numpy(y))
