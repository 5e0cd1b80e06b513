package org.fedmef.core.contract;

/**
 * An instruction, a manifest or a graph does not satisfy the FedMef client contract
 * ({@code docs/protocol.md}); the message says which field, tensor or file, so it can serve as
 * the one-line reason of an error reply.
 */
public class ContractException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    public ContractException(String message) {
        super(message);
    }

    public ContractException(String message, Throwable cause) {
        super(message, cause);
    }
}
