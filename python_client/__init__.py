"""Python client of FedMef (``python_client``): Flower ClientApp and its training backends."""
