package org.fedmef.core.contract;

import java.nio.file.Path;

/**
 * The runtime behind the contract: opens one exported graph file as a {@link GraphSession}.
 * Runtime-neutral: {@link OrtTrainer} runs ONNX files by input name; an ExecuTorch trainer
 * (Android app) takes the same feeds positionally, in the manifest's input order.
 */
public interface Trainer {
    /**
     * Opens graph {@code graph} of {@code manifest}, whose verified file is {@code file}.
     *
     * @throws ContractException when the runtime cannot run this manifest (wrong runtime, missing outputs)
     * @throws TrainerException  when the runtime fails to load the file
     */
    GraphSession open(Manifest manifest, String graph, Path file);
}
