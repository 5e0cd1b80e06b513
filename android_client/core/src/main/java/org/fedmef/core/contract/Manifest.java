package org.fedmef.core.contract;

import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.fedmef.core.records.DType;

/**
 * A parsed and validated manifest of schema version 2 (protocol §6): the runtime, the static batch
 * size, every file with its sha256 and size, every graph input once ({@link Tensor}) and each
 * graph's file, input order and outputs. Immutable; {@link #json()} keeps the raw text.
 */
public final class Manifest {
    /** The only schema version this client reads. */
    public static final int SCHEMA_VERSION = 2;
    /** The graphs the contract names. */
    public static final String STEP = "step";
    public static final String GROWTH = "growth";
    public static final String EVALUATE = "evaluate";

    private final String json;
    private final String runtime;
    private final int batchSize;
    private final List<FileEntry> files;
    private final Map<String, Tensor> tensors;
    private final Map<String, Graph> graphs;

    Manifest(String json, String runtime, int batchSize, List<FileEntry> files, List<Tensor> tensors,
             Map<String, Graph> graphs) {
        this.json = json;
        this.runtime = runtime;
        this.batchSize = batchSize;
        this.files = Collections.unmodifiableList(new ArrayList<>(files));
        Map<String, Tensor> byName = new LinkedHashMap<>();
        for (Tensor t : tensors) {
            byName.put(t.name(), t);
        }
        this.tensors = Collections.unmodifiableMap(byName);
        this.graphs = Collections.unmodifiableMap(new LinkedHashMap<>(graphs));
    }

    /** Parses and validates manifest JSON; every problem is a {@link ContractException}. */
    public static Manifest parse(String json) {
        return ManifestParser.parse(json);
    }

    /** The raw JSON this manifest was parsed from. */
    public String json() {
        return json;
    }

    /** {@code onnxruntime} or {@code executorch}. */
    public String runtime() {
        return runtime;
    }

    /** The graphs' static batch size. */
    public int batchSize() {
        return batchSize;
    }

    /** Every file, in manifest order. */
    public List<FileEntry> files() {
        return files;
    }

    /** Every graph input, in manifest order, by name. */
    public Map<String, Tensor> tensors() {
        return tensors;
    }

    /** The input tensor {@code name}; a ContractException when the manifest has none. */
    public Tensor tensor(String name) {
        Tensor t = tensors.get(name);
        if (t == null) {
            throw new ContractException("manifest has no tensor '" + name + "'");
        }
        return t;
    }

    /** Whether the manifest lists graph {@code name}. */
    public boolean hasGraph(String name) {
        return graphs.containsKey(name);
    }

    /** Graph {@code name}; a ContractException when the manifest has none. */
    public Graph graph(String name) {
        Graph g = graphs.get(name);
        if (g == null) {
            throw new ContractException("manifest has no '" + name + "' graph");
        }
        return g;
    }

    /** The graph's inputs, in feeding order. */
    public List<Tensor> inputs(String graph) {
        List<Tensor> out = new ArrayList<>();
        for (String name : graph(graph).inputs()) {
            out.add(tensors.get(name));
        }
        return out;
    }

    /** The entry of the file graph {@code name} runs. */
    public FileEntry fileOf(String graph) {
        String file = graph(graph).file();
        for (FileEntry entry : files) {
            if (entry.name().equals(file)) {
                return entry;
            }
        }
        throw new ContractException("manifest lists no file '" + file + "'");
    }

    /** One file of the export: plain name, lowercase hex sha256, size in bytes. */
    public static final class FileEntry {
        private final String name;
        private final String sha256;
        private final long size;

        public FileEntry(String name, String sha256, long size) {
            this.name = name;
            this.sha256 = sha256;
            this.size = size;
        }

        public String name() {
            return name;
        }

        public String sha256() {
            return sha256;
        }

        public long size() {
            return size;
        }

        @Override
        public String toString() {
            return name + " (" + size + " bytes, sha256 " + sha256 + ")";
        }
    }

    /** A graph input: name, role, dtype, shape and, for a layer's tensors, the layer and its dense shape. */
    public static final class Tensor {
        private final String name;
        private final InputRole role;
        private final DType dtype;
        private final long[] shape;
        private final String layer;
        private final long[] denseShape;

        public Tensor(String name, InputRole role, DType dtype, long[] shape, String layer, long[] denseShape) {
            this.name = name;
            this.role = role;
            this.dtype = dtype;
            this.shape = shape.clone();
            this.layer = layer;
            this.denseShape = denseShape == null ? null : denseShape.clone();
        }

        public String name() {
            return name;
        }

        public InputRole role() {
            return role;
        }

        public DType dtype() {
            return dtype;
        }

        public long[] shape() {
            return shape.clone();
        }

        /** The prunable layer, or null for tensors that belong to none. */
        public String layer() {
            return layer;
        }

        /** The layer's dense weight shape, or null. */
        public long[] denseShape() {
            return denseShape == null ? null : denseShape.clone();
        }

        /** Number of elements of {@link #shape()}. */
        public long numel() {
            return Shapes.numel(shape);
        }

        /** Number of elements of {@link #denseShape()}. */
        public long denseNumel() {
            return Shapes.numel(denseShape);
        }
    }

    /** A graph output: name, role, dtype, shape, and the input it replaces ({@code of}) or its layer. */
    public static final class Output {
        private final String name;
        private final OutputRole role;
        private final DType dtype;
        private final long[] shape;
        private final String of;
        private final String layer;

        public Output(String name, OutputRole role, DType dtype, long[] shape, String of, String layer) {
            this.name = name;
            this.role = role;
            this.dtype = dtype;
            this.shape = shape.clone();
            this.of = of;
            this.layer = layer;
        }

        public String name() {
            return name;
        }

        public OutputRole role() {
            return role;
        }

        public DType dtype() {
            return dtype;
        }

        public long[] shape() {
            return shape.clone();
        }

        /** For an {@code update} output: the input it replaces; else null. */
        public String of() {
            return of;
        }

        /** For growth outputs: the layer; else null. */
        public String layer() {
            return layer;
        }
    }

    /** A graph: its file, its input names in feeding order, its outputs in order. */
    public static final class Graph {
        private final String name;
        private final String file;
        private final List<String> inputs;
        private final List<Output> outputs;

        public Graph(String name, String file, List<String> inputs, List<Output> outputs) {
            this.name = name;
            this.file = file;
            this.inputs = Collections.unmodifiableList(new ArrayList<>(inputs));
            this.outputs = Collections.unmodifiableList(new ArrayList<>(outputs));
        }

        public String name() {
            return name;
        }

        public String file() {
            return file;
        }

        public List<String> inputs() {
            return inputs;
        }

        public List<Output> outputs() {
            return outputs;
        }

        /** Output {@code name}; a ContractException when the graph has none. */
        public Output output(String outputName) {
            for (Output o : outputs) {
                if (o.name().equals(outputName)) {
                    return o;
                }
            }
            throw new ContractException("graph '" + name + "' has no output '" + outputName + "'");
        }
    }
}
