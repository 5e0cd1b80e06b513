"""Export of FedMef's local training step to on-device runtimes (ONNX Runtime, ExecuTorch)."""
