package org.fedmef.core.contract;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParseException;
import com.google.gson.JsonParser;
import java.math.BigDecimal;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Pattern;
import org.fedmef.core.records.DType;

/**
 * Turns manifest JSON into a {@link Manifest}, checking what {@code fedmef/manifest.schema.json}
 * and protocol §6 require: the schema version first, then fields, roles, dtypes, file names and
 * the cross-references (graph files are listed, graph inputs are tensors, {@code of} names an input).
 */
final class ManifestParser {
    private static final Pattern FILE_NAME = Pattern.compile("[A-Za-z0-9._-]{1,100}");
    private static final Pattern SHA256 = Pattern.compile("[0-9a-f]{64}");
    private static final String[] RUNTIMES = {"onnxruntime", "executorch"};
    private static final String[] GRAPHS = {Manifest.STEP, Manifest.GROWTH, Manifest.EVALUATE};
    private static final DType[] DTYPES = {DType.FLOAT32, DType.INT32, DType.INT64, DType.UINT8, DType.BOOL};

    private ManifestParser() {
    }

    static Manifest parse(String json) {
        JsonObject root = asObject(parseJson(json), "manifest");
        checkVersion(root);
        String runtime = Json.string(root, "runtime", "manifest");
        if (!contains(RUNTIMES, runtime)) {
            throw new ContractException("manifest: unknown runtime '" + runtime + "'");
        }
        long batchSize = Json.integer(root, "batch_size", "manifest");
        if (batchSize < 1 || batchSize > Integer.MAX_VALUE) {
            throw new ContractException("manifest: batch_size must be a positive int, got " + batchSize);
        }
        List<Manifest.FileEntry> files = files(Json.array(root, "files", "manifest"));
        List<Manifest.Tensor> tensors = tensors(Json.array(root, "tensors", "manifest"));
        Map<String, Manifest.Graph> graphs = graphs(Json.object(root, "graphs", "manifest"), files, tensors);
        return new Manifest(json, runtime, (int) batchSize, files, tensors, graphs);
    }

    private static JsonElement parseJson(String json) {
        if (json == null) {
            throw new ContractException("manifest is missing");
        }
        try {
            return JsonParser.parseString(json);
        } catch (JsonParseException e) {
            throw new ContractException("manifest is not JSON: " + e.getMessage(), e);
        }
    }

    private static void checkVersion(JsonObject root) {
        JsonElement v = root.get("schema_version");
        String found = v == null ? "none" : v.toString();
        boolean known = v != null && v.isJsonPrimitive() && v.getAsJsonPrimitive().isNumber()
                && v.getAsBigDecimal().compareTo(BigDecimal.valueOf(Manifest.SCHEMA_VERSION)) == 0;
        if (!known) {
            throw new ContractException("manifest schema_version " + found + " is not supported; this client reads "
                    + "schema_version " + Manifest.SCHEMA_VERSION);
        }
    }

    private static List<Manifest.FileEntry> files(JsonArray array) {
        List<Manifest.FileEntry> out = new ArrayList<>();
        Set<String> names = new HashSet<>();
        for (int i = 0; i < array.size(); i++) {
            String where = "files[" + i + "]";
            JsonObject f = asObject(array.get(i), where);
            String name = fileName(Json.string(f, "name", where), where);
            String sha = Json.string(f, "sha256", where);
            if (!SHA256.matcher(sha).matches()) {
                throw new ContractException("manifest: " + where + " (" + name + "): sha256 must be 64 lowercase hex digits");
            }
            long size = Json.integer(f, "size", where);
            if (size < 0) {
                throw new ContractException("manifest: " + where + " (" + name + "): negative size");
            }
            if (!names.add(name)) {
                throw new ContractException("manifest: file '" + name + "' is listed twice");
            }
            out.add(new Manifest.FileEntry(name, sha, size));
        }
        if (out.isEmpty()) {
            throw new ContractException("manifest: files is empty");
        }
        return out;
    }

    private static List<Manifest.Tensor> tensors(JsonArray array) {
        List<Manifest.Tensor> out = new ArrayList<>();
        Set<String> names = new HashSet<>();
        for (int i = 0; i < array.size(); i++) {
            JsonObject t = asObject(array.get(i), "tensors[" + i + "]");
            String name = Json.string(t, "name", "tensors[" + i + "]");
            String where = "tensor '" + name + "'";
            InputRole role = InputRole.of(Json.string(t, "role", where), name);
            DType dtype = dtype(Json.string(t, "dtype", where), where);
            long[] shape = Json.shape(t, "shape", where);
            String layer = role.isPerLayer() ? Json.string(t, "layer", where) : Json.optionalString(t, "layer", where);
            long[] dense = role.isPerLayer() ? Json.shape(t, "dense_shape", where) : Json.optionalShape(t, "dense_shape", where);
            if (!names.add(name)) {
                throw new ContractException("manifest: tensor '" + name + "' is listed twice");
            }
            out.add(new Manifest.Tensor(name, role, dtype, shape, layer, dense));
        }
        return out;
    }

    private static Map<String, Manifest.Graph> graphs(JsonObject object, List<Manifest.FileEntry> files,
                                                      List<Manifest.Tensor> tensors) {
        Set<String> fileNames = new HashSet<>();
        for (Manifest.FileEntry f : files) {
            fileNames.add(f.name());
        }
        Set<String> tensorNames = new HashSet<>();
        for (Manifest.Tensor t : tensors) {
            tensorNames.add(t.name());
        }
        Map<String, Manifest.Graph> out = new LinkedHashMap<>();
        for (Map.Entry<String, JsonElement> e : object.entrySet()) {
            if (!contains(GRAPHS, e.getKey())) {
                throw new ContractException("manifest: unknown graph '" + e.getKey() + "'");
            }
            out.put(e.getKey(), graph(e.getKey(), asObject(e.getValue(), "graph " + e.getKey()), fileNames, tensorNames));
        }
        for (String required : new String[] {Manifest.STEP, Manifest.EVALUATE}) {
            if (!out.containsKey(required)) {
                throw new ContractException("manifest: graphs has no '" + required + "' graph");
            }
        }
        return out;
    }

    private static Manifest.Graph graph(String name, JsonObject g, Set<String> fileNames, Set<String> tensorNames) {
        String where = "graph '" + name + "'";
        String file = fileName(Json.string(g, "file", where), where);
        if (!fileNames.contains(file)) {
            throw new ContractException("manifest: " + where + " runs file '" + file + "', which files does not list");
        }
        List<String> inputs = new ArrayList<>();
        JsonArray in = Json.array(g, "inputs", where);
        for (int i = 0; i < in.size(); i++) {
            String input = Json.string(in.get(i), where + " inputs[" + i + "]");
            if (!tensorNames.contains(input)) {
                throw new ContractException("manifest: " + where + " takes input '" + input + "', which tensors does not list");
            }
            if (inputs.contains(input)) {
                throw new ContractException("manifest: " + where + " lists input '" + input + "' twice");
            }
            inputs.add(input);
        }
        List<Manifest.Output> outputs = new ArrayList<>();
        JsonArray outs = Json.array(g, "outputs", where);
        for (int i = 0; i < outs.size(); i++) {
            outputs.add(output(asObject(outs.get(i), where + " outputs[" + i + "]"), where, inputs));
        }
        if (outputs.isEmpty()) {
            throw new ContractException("manifest: " + where + " has no outputs");
        }
        return new Manifest.Graph(name, file, inputs, outputs);
    }

    private static Manifest.Output output(JsonObject o, String graph, List<String> inputs) {
        String name = Json.string(o, "name", graph + " output");
        String where = graph + " output '" + name + "'";
        OutputRole role = OutputRole.of(Json.string(o, "role", where), name);
        DType dtype = dtype(Json.string(o, "dtype", where), where);
        long[] shape = Json.shape(o, "shape", where);
        boolean growth = role == OutputRole.GROWTH_INDICES || role == OutputRole.GROWTH_MAGNITUDES;
        String of = role == OutputRole.UPDATE ? Json.string(o, "of", where) : Json.optionalString(o, "of", where);
        String layer = growth ? Json.string(o, "layer", where) : Json.optionalString(o, "layer", where);
        if (role == OutputRole.UPDATE && !inputs.contains(of)) {
            throw new ContractException("manifest: " + where + " updates '" + of + "', which is not an input of the graph");
        }
        return new Manifest.Output(name, role, dtype, shape, of, layer);
    }

    private static String fileName(String name, String where) {
        if (!FILE_NAME.matcher(name).matches() || name.equals(".") || name.equals("..")) {
            throw new ContractException("manifest: " + where + ": file name '" + name
                    + "' is not a plain name ([A-Za-z0-9._-]+, no directory part)");
        }
        return name;
    }

    private static DType dtype(String name, String where) {
        for (DType t : DTYPES) {
            if (t.numpyName().equals(name)) {
                return t;
            }
        }
        throw new ContractException("manifest: " + where + " has unknown dtype '" + name + "'");
    }

    private static JsonObject asObject(JsonElement e, String where) {
        if (e == null || !e.isJsonObject()) {
            throw new ContractException("manifest: " + where + " must be a JSON object");
        }
        return e.getAsJsonObject();
    }

    private static boolean contains(Object[] values, Object value) {
        for (Object v : values) {
            if (v.equals(value)) {
                return true;
            }
        }
        return false;
    }
}
