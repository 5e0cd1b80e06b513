"""Tests of the FedMef package."""
