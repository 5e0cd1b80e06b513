package org.fedmef.core.contract;

import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtLoggingLevel;
import ai.onnxruntime.OrtSession;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * {@link Trainer} on ONNX Runtime's Java API ({@code ai.onnxruntime}, the same API as
 * {@code onnxruntime-android}): one {@link OrtSession} per graph, with a configurable number of
 * intra-op threads, ONNX Runtime's CPU memory arena on or off, and warnings-and-above logging.
 *
 * <p>Constant folding is off, as in the Python client: it would turn the zero tensors the graphs
 * build at run time (dense scatters of the packed sparse weights) into dense constants held by the
 * session for its whole life, about the dense model's size per graph (ResNet18-NF: 52 MB in the
 * FedMef step graph, 125 MB over its three graphs), which is the memory FedMef saves.
 */
public final class OrtTrainer implements Trainer {
    /** The manifest runtime this trainer runs. */
    public static final String RUNTIME = "onnxruntime";
    /** ONNX Runtime's session config key listing graph transformers to skip (';'-separated). */
    static final String DISABLED_OPTIMIZERS = "optimization.disable_specified_optimizers";

    private final int intraOpThreads;
    private final boolean memoryArena;

    /** @param intraOpThreads threads per operator; 0 leaves ONNX Runtime's default */
    public OrtTrainer(int intraOpThreads) {
        this(intraOpThreads, true);
    }

    /**
     * @param intraOpThreads threads per operator; 0 leaves ONNX Runtime's default
     * @param memoryArena    ONNX Runtime's CPU arena and memory patterns (its default, on): off, every
     *                       tensor is allocated and freed on its own, so a device gets a step's memory
     *                       back after each run instead of the arena keeping its peak
     */
    public OrtTrainer(int intraOpThreads, boolean memoryArena) {
        if (intraOpThreads < 0) {
            throw new IllegalArgumentException("intra-op threads must be >= 0, got " + intraOpThreads);
        }
        this.intraOpThreads = intraOpThreads;
        this.memoryArena = memoryArena;
    }

    @Override
    public GraphSession open(Manifest manifest, String graph, Path file) {
        if (!RUNTIME.equals(manifest.runtime())) {
            throw new ContractException("manifest runtime '" + manifest.runtime() + "' cannot run on " + RUNTIME);
        }
        Manifest.Graph spec = manifest.graph(graph);
        List<String> outputs = new ArrayList<>();
        for (Manifest.Output o : spec.outputs()) {
            outputs.add(o.name());
        }
        OrtEnvironment env = OrtEnvironment.getEnvironment(OrtLoggingLevel.ORT_LOGGING_LEVEL_WARNING);
        try (OrtSession.SessionOptions options = sessionOptions()) {
            OrtSession session = env.createSession(file.toString(), options);
            return new OrtGraphSession(env, session, spec.file(), outputs);
        } catch (OrtException e) {
            throw new TrainerException(spec.file() + ": onnxruntime could not load the graph: " + e.getMessage(), e);
        }
    }

    /** The options every session of this trainer is created with (the caller closes them). */
    OrtSession.SessionOptions sessionOptions() throws OrtException {
        OrtSession.SessionOptions options = new OrtSession.SessionOptions();
        try {
            options.setSessionLogLevel(OrtLoggingLevel.ORT_LOGGING_LEVEL_WARNING);
            options.addConfigEntry(DISABLED_OPTIMIZERS, "ConstantFolding");
            if (intraOpThreads > 0) {
                options.setIntraOpNumThreads(intraOpThreads);
            }
            if (!memoryArena) {
                options.setCPUArenaAllocator(false);
                options.setMemoryPatternOptimization(false);
            }
            return options;
        } catch (OrtException | RuntimeException e) {
            options.close();
            throw e;
        }
    }
}
