package org.fedmef.core.contract;

/** The runtime (ONNX Runtime, ExecuTorch) failed to load or run a graph; the message names the graph file. */
public class TrainerException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    public TrainerException(String message, Throwable cause) {
        super(message, cause);
    }
}
