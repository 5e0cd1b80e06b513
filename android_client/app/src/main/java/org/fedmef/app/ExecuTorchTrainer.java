package org.fedmef.app;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import org.fedmef.core.contract.ContractException;
import org.fedmef.core.contract.GraphSession;
import org.fedmef.core.contract.Manifest;
import org.fedmef.core.contract.Trainer;
import org.fedmef.core.contract.TrainerException;
import org.fedmef.core.records.DType;
import org.fedmef.core.records.NdArray;
import org.pytorch.executorch.EValue;
import org.pytorch.executorch.Module;
import org.pytorch.executorch.Tensor;

/**
 * {@link Trainer} on ExecuTorch's Android runtime ({@code org.pytorch:executorch-android}). The
 * exported step is a plain {@code forward} program: its inputs are taken positionally, in the
 * manifest's input order, and its outputs come back in the manifest's output order (protocol §6).
 * Scalars travel as 0-d tensors. Dtypes and shapes are checked against the manifest both ways;
 * nothing about the graphs is known here but what the manifest says.
 */
public final class ExecuTorchTrainer implements Trainer {
    /** The manifest runtime this trainer runs. */
    public static final String RUNTIME = "executorch";

    private final int threads;

    /** @param threads CPU threads for the runtime; 0 leaves ExecuTorch's default */
    public ExecuTorchTrainer(int threads) {
        if (threads < 0) {
            throw new IllegalArgumentException("threads must be >= 0, got " + threads);
        }
        this.threads = threads;
    }

    @Override
    public GraphSession open(Manifest manifest, String graph, Path file) {
        if (!RUNTIME.equals(manifest.runtime())) {
            throw new ContractException("manifest runtime '" + manifest.runtime() + "' cannot run on " + RUNTIME);
        }
        Manifest.Graph spec = manifest.graph(graph);
        Module module;
        try {
            module = Module.load(file.toAbsolutePath().toString(), Module.LOAD_MODE_MMAP, threads);
        } catch (RuntimeException e) {
            throw new TrainerException(spec.file() + ": ExecuTorch could not load the program: " + e.getMessage(), e);
        }
        return new Session(module, spec, manifest.inputs(graph));
    }

    /** One loaded program; not thread-safe (RoundRunner runs one graph at a time). */
    private static final class Session implements GraphSession {
        private final Module module;
        private final Manifest.Graph spec;
        private final List<Manifest.Tensor> inputs;

        Session(Module module, Manifest.Graph spec, List<Manifest.Tensor> inputs) {
            this.module = module;
            this.spec = spec;
            this.inputs = inputs;
        }

        @Override
        public LinkedHashMap<String, NdArray> run(LinkedHashMap<String, NdArray> feeds) {
            EValue[] args = new EValue[inputs.size()];
            for (int i = 0; i < args.length; i++) {
                Manifest.Tensor input = inputs.get(i);
                NdArray value = feeds.get(input.name());
                if (value == null) {
                    throw new ContractException(spec.file() + ": the graph takes input '" + input.name()
                            + "', which the feeds lack");
                }
                if (value.type() != input.dtype() || !Arrays.equals(value.shape(), input.shape())) {
                    throw new ContractException(spec.file() + ": input '" + input.name() + "' must be "
                            + input.dtype().numpyName() + " " + Arrays.toString(input.shape()) + ", got " + value);
                }
                args[i] = EValue.from(toTensor(input.name(), value));
            }
            EValue[] results;
            try {
                results = module.forward(args);
            } catch (RuntimeException e) {
                throw new TrainerException(spec.file() + ": ExecuTorch failed: " + e.getMessage(), e);
            }
            List<Manifest.Output> outputs = spec.outputs();
            if (results == null || results.length != outputs.size()) {
                throw new ContractException(spec.file() + ": the program returned "
                        + (results == null ? 0 : results.length) + " outputs, the manifest lists " + outputs.size());
            }
            LinkedHashMap<String, NdArray> out = new LinkedHashMap<>();
            for (int i = 0; i < results.length; i++) {
                Manifest.Output o = outputs.get(i);
                if (!results[i].isTensor()) {
                    throw new ContractException(spec.file() + ": output " + i + " ('" + o.name() + "') is not a tensor");
                }
                NdArray value = fromTensor(o.name(), results[i].toTensor());
                if (value.type() != o.dtype() || !Arrays.equals(value.shape(), o.shape())) {
                    throw new ContractException(spec.file() + ": output '" + o.name() + "' should be "
                            + o.dtype().numpyName() + " " + Arrays.toString(o.shape()) + ", got " + value);
                }
                out.put(o.name(), value);
            }
            return out;
        }

        @Override
        public void close() {
            try {
                module.destroy();
            } catch (IllegalStateException e) {
                throw new TrainerException(spec.file() + ": could not free the program: " + e.getMessage(), e);
            }
        }
    }

    static Tensor toTensor(String name, NdArray a) {
        long[] shape = a.shape();
        switch (a.type()) {
            case FLOAT32:
                return Tensor.fromBlob(a.toFloats(), shape);
            case INT32:
                return Tensor.fromBlob(a.toInts(), shape);
            case INT64:
                return Tensor.fromBlob(a.toLongs(), shape);
            case UINT8:
                return Tensor.fromBlobUnsigned(a.toBytes(), shape);
            case INT8:
                return Tensor.fromBlob(a.toBytes(), shape);
            default:
                throw new ContractException("input '" + name + "': ExecuTorch's Java API has no " + a.dtype() + " tensors");
        }
    }

    static NdArray fromTensor(String name, Tensor t) {
        long[] shape = t.shape();
        switch (t.dtype()) {
            case FLOAT:
                return NdArray.ofFloats(t.getDataAsFloatArray()).reshape(shape);
            case INT32:
                return NdArray.ofInts(t.getDataAsIntArray()).reshape(shape);
            case INT64:
                return NdArray.ofLongs(t.getDataAsLongArray()).reshape(shape);
            case UINT8:
                return NdArray.ofBytes(t.getDataAsUnsignedByteArray()).reshape(shape);
            case INT8:
                return new NdArray(DType.INT8.numpyName(), shape, t.getDataAsByteArray());
            default:
                throw new ContractException("output '" + name + "': unsupported ExecuTorch dtype " + t.dtype());
        }
    }
}
