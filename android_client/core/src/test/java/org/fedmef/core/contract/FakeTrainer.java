package org.fedmef.core.contract;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.fedmef.core.records.NdArray;

/**
 * A pure-Java {@link Trainer} for {@link TinyModel}'s graphs that records what it is fed. Step:
 * loss = the {@code step} counter, every {@code update} output = its input + lr. Growth:
 * indices 6..0, magnitudes 7..1. Evaluate: losses = y, correct = (y == 0).
 */
final class FakeTrainer implements Trainer {
    final List<String> opened = new ArrayList<>();
    final List<String> closed = new ArrayList<>();
    final List<Map<String, NdArray>> feeds = new ArrayList<>();
    final List<String> graphs = new ArrayList<>();

    @Override
    public GraphSession open(Manifest manifest, String graph, Path file) {
        opened.add(graph + ":" + file.getFileName());
        return new GraphSession() {
            @Override
            public LinkedHashMap<String, NdArray> run(LinkedHashMap<String, NdArray> in) {
                feeds.add(new LinkedHashMap<>(in));
                graphs.add(graph);
                LinkedHashMap<String, NdArray> out = new LinkedHashMap<>();
                for (Manifest.Output o : manifest.graph(graph).outputs()) {
                    out.put(o.name(), value(o, in));
                }
                return out;
            }

            @Override
            public void close() {
                closed.add(graph);
            }
        };
    }

    private static NdArray value(Manifest.Output o, Map<String, NdArray> in) {
        switch (o.role()) {
            case LOSS:
                return in.containsKey("step") ? in.get("step") : NdArray.ofFloats(new float[] {0}).reshape();
            case UPDATE: {
                float[] v = in.get(o.of()).toFloats();
                float lr = in.get("lr").toFloats()[0];
                for (int i = 0; i < v.length; i++) {
                    v[i] += lr;
                }
                return NdArray.ofFloats(v).reshape(o.shape());
            }
            case GROWTH_INDICES:
                return NdArray.ofInts(new int[] {6, 5, 4, 3, 2, 1, 0});
            case GROWTH_MAGNITUDES:
                return NdArray.ofFloats(new float[] {7, 6, 5, 4, 3, 2, 1});
            case LOSSES:
            case CORRECT: {
                long[] y = in.get("y").toLongs();
                float[] v = new float[y.length];
                for (int i = 0; i < y.length; i++) {
                    v[i] = o.role() == OutputRole.LOSSES ? y[i] : (y[i] == 0 ? 1 : 0);
                }
                return NdArray.ofFloats(v);
            }
            default:
                throw new IllegalStateException(o.name());
        }
    }
}
