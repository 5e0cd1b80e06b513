"""Python client of FedMef (``fedmef.client``): Flower ClientApp and its training backends."""
