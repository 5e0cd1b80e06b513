package org.fedmef.core.contract;

import ai.onnxruntime.OnnxTensor;
import java.util.ArrayList;
import java.util.List;

/** Closes every ONNX tensor created inside a try-with-resources block, even when creating a later one fails. */
final class TensorScope implements AutoCloseable {
    private final List<OnnxTensor> tensors = new ArrayList<>();

    OnnxTensor add(OnnxTensor tensor) {
        tensors.add(tensor);
        return tensor;
    }

    @Override
    public void close() {
        for (OnnxTensor t : tensors) {
            t.close();
        }
        tensors.clear();
    }
}
