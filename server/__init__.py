"""Server side of FedMef (``server``): Flower ServerApp, schedule, aggregation, run directory."""
