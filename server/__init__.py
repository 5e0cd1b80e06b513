"""Server side of FedMef (``fedmef.server``): Flower ServerApp, schedule, aggregation, run directory."""
