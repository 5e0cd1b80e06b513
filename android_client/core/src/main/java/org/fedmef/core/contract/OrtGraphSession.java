package org.fedmef.core.contract;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OnnxValue;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import org.fedmef.core.records.NdArray;

/**
 * One ONNX Runtime session. Feeds exactly the inputs the session reports (ONNX Runtime may drop
 * graph inputs the graph does not use) and fails when one of those is missing; requests the
 * manifest's outputs and copies them into {@link NdArray}s. Every input tensor and the result
 * are closed after each run.
 */
final class OrtGraphSession implements GraphSession {
    private final OrtEnvironment env;
    private final OrtSession session;
    private final String file;
    private final List<String> outputs;

    OrtGraphSession(OrtEnvironment env, OrtSession session, String file, List<String> outputs) {
        this.env = env;
        this.session = session;
        this.file = file;
        this.outputs = new ArrayList<>(outputs);
        Set<String> available = session.getOutputNames();
        for (String name : outputs) {
            if (!available.contains(name)) {
                close();
                throw new ContractException(file + ": the manifest lists output '" + name + "', which the graph lacks");
            }
        }
    }

    @Override
    public LinkedHashMap<String, NdArray> run(LinkedHashMap<String, NdArray> feeds) {
        try (TensorScope scope = new TensorScope()) {
            Map<String, OnnxTensor> inputs = new LinkedHashMap<>();
            for (String name : session.getInputNames()) {
                NdArray value = feeds.get(name);
                if (value == null) {
                    throw new ContractException(file + ": the graph takes input '" + name + "', which the feeds lack");
                }
                inputs.put(name, scope.add(OrtTensors.create(env, value)));
            }
            try (OrtSession.Result result = session.run(inputs, new LinkedHashSet<>(outputs))) {
                LinkedHashMap<String, NdArray> out = new LinkedHashMap<>();
                for (String name : outputs) {
                    out.put(name, copy(result.get(name), name));
                }
                return out;
            }
        } catch (OrtException e) {
            throw new TrainerException(file + ": onnxruntime failed: " + e.getMessage(), e);
        }
    }

    @Override
    public void close() {
        try {
            session.close();
        } catch (OrtException e) {
            throw new TrainerException(file + ": could not close the session: " + e.getMessage(), e);
        }
    }

    private NdArray copy(Optional<OnnxValue> value, String name) throws OrtException {
        if (!value.isPresent() || !(value.get() instanceof OnnxTensor)) {
            throw new ContractException(file + ": output '" + name + "' is missing or not a tensor");
        }
        return OrtTensors.copy((OnnxTensor) value.get());
    }
}
