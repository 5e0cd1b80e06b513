"""FedMef: memory-efficient federated dynamic pruning (Huang et al., CVPR 2024).

``fedmef`` holds the algorithm in plain PyTorch and the client contract (``protocol``,
``manifest``), which imports neither torch nor Flower. The product's other folders are packages
of their own: ``server`` (Flower ServerApp), ``export`` (training-step export) and
``python_client`` (Flower ClientApp).
"""

__version__ = "0.1.0"
