package org.fedmef.app.node;

import org.fedmef.app.ExecuTorchTrainer;
import org.fedmef.core.contract.OrtTrainer;
import org.fedmef.core.contract.Trainer;

/**
 * The runtime that runs the server's exported graphs on this phone. The server decides which
 * runtime it exports for (run config {@code backend}); a node whose backend does not match the
 * manifest's {@code runtime} answers every instruction with an error reply naming both.
 */
public enum Backend {
    /** ONNX Runtime ({@code onnxruntime-android}), core's {@link OrtTrainer}. */
    ORT(OrtTrainer.RUNTIME),
    /** ExecuTorch ({@code executorch-android}), the app's {@link ExecuTorchTrainer}. */
    EXECUTORCH(ExecuTorchTrainer.RUNTIME);

    private final String runtime;

    Backend(String runtime) {
        this.runtime = runtime;
    }

    /** The manifest's name for this runtime. */
    public String runtime() {
        return runtime;
    }

    /** A trainer with {@code threads} intra-op threads (0: the runtime's default). */
    public Trainer trainer(int threads) {
        return this == ORT ? new OrtTrainer(threads) : new ExecuTorchTrainer(threads);
    }
}
