package org.fedmef.core.contract;

import com.google.gson.JsonElement;
import com.google.gson.JsonParseException;
import com.google.gson.JsonParser;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.fedmef.core.records.DType;
import org.fedmef.core.records.NdArray;
import org.fedmef.core.records.Npy;

/**
 * A data share exported by {@code python -m fedmef.data.export_partition} (protocol §8):
 * {@code train_x.npy} (float32 N×C×H×W), {@code train_y.npy} (int64 N), {@code val_x.npy},
 * {@code val_y.npy} and {@code partition.json}. Both splits are read once, when opened, in file order.
 */
public final class PartitionDataSource implements DataSource {
    private final Samples train;
    private final Samples validation;
    private final String description;

    private PartitionDataSource(Samples train, Samples validation, String description) {
        this.train = train;
        this.validation = validation;
        this.description = description;
    }

    /** Reads the partition directory {@code dir}. */
    public static PartitionDataSource open(Path dir) throws IOException {
        Path info = dir.resolve("partition.json");
        String description = new String(Files.readAllBytes(info), StandardCharsets.UTF_8);
        try {
            JsonElement json = JsonParser.parseString(description);
            if (!json.isJsonObject()) {
                throw new ContractException(info + ": expected a JSON object");
            }
        } catch (JsonParseException e) {
            throw new ContractException(info + " is not JSON: " + e.getMessage(), e);
        }
        return new PartitionDataSource(split(dir, "train"), split(dir, "val"), description.trim());
    }

    @Override
    public Samples train() {
        return train;
    }

    @Override
    public Samples validation() {
        return validation;
    }

    /** The raw {@code partition.json} ({@code dataset}, {@code partition_id}, {@code num_partitions}, {@code seed}). */
    public String description() {
        return description;
    }

    private static Samples split(Path dir, String name) throws IOException {
        NdArray x = read(dir.resolve(name + "_x.npy"));
        NdArray y = read(dir.resolve(name + "_y.npy"));
        if (x.type() != DType.FLOAT32 || x.shape().length < 2) {
            throw new ContractException(name + "_x.npy: expected float32 N×C×H×W, got " + x);
        }
        if (y.type() != DType.INT64 || y.shape().length != 1) {
            throw new ContractException(name + "_y.npy: expected int64 of shape (N,), got " + y);
        }
        return new Samples(x.toFloats(), x.shape(), y.toLongs());
    }

    private static NdArray read(Path path) throws IOException {
        try {
            return Npy.read(path);
        } catch (IllegalArgumentException e) {
            throw new ContractException(path.getFileName() + ": " + e.getMessage(), e);
        }
    }
}
