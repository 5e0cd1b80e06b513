package org.fedmef.core.contract;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.HashMap;
import java.util.Map;
import org.fedmef.core.records.ArrayRecord;
import org.fedmef.core.records.DType;
import org.fedmef.core.records.NdArray;

/**
 * The node's exported files, kept by content: {@code <root>/<sha256>} (protocol §6, "Files and
 * the store"). {@link #receive} writes the {@code file/<name>} arrays of an instruction's
 * {@code artifacts} record atomically (temporary file, then rename) and skips files already
 * present; {@link #verify} checks size and sha256 of every manifest file before a graph is loaded.
 */
public final class ArtifactStore {
    /** Key prefix of the files in the {@code artifacts} record. */
    public static final String FILE_PREFIX = "file/";

    private final Path root;

    public ArtifactStore(Path root) {
        this.root = root;
    }

    /** Where the file of {@code entry} lives (whether or not it is there). */
    public Path pathOf(Manifest.FileEntry entry) {
        return root.resolve(entry.sha256());
    }

    /** Stores every {@code file/<name>} of {@code artifacts}; each must be a manifest file with the listed bytes. */
    public void receive(Manifest manifest, ArrayRecord artifacts) throws IOException {
        Map<String, Manifest.FileEntry> byName = new HashMap<>();
        for (Manifest.FileEntry entry : manifest.files()) {
            byName.put(entry.name(), entry);
        }
        for (Map.Entry<String, NdArray> item : artifacts.asMap().entrySet()) {
            String key = item.getKey();
            if (!key.startsWith(FILE_PREFIX)) {
                throw new ContractException("artifacts: unexpected key '" + key + "' (expected file/<name>)");
            }
            String name = key.substring(FILE_PREFIX.length());
            Manifest.FileEntry entry = byName.get(name);
            if (entry == null) {
                throw new ArtifactException(name + ": sent in artifacts but not listed in the manifest");
            }
            write(entry, bytesOf(name, item.getValue()));
        }
    }

    /** Checks that every manifest file is stored with the listed size and sha256. */
    public void verify(Manifest manifest) throws IOException {
        for (Manifest.FileEntry entry : manifest.files()) {
            Path path = pathOf(entry);
            if (!Files.isRegularFile(path)) {
                throw new ArtifactException(entry.name() + ": missing, expected sha256 " + entry.sha256());
            }
            String actual = Sha256.of(path);
            long size = Files.size(path);
            if (!actual.equals(entry.sha256()) || size != entry.size()) {
                throw mismatch(entry, actual, size);
            }
        }
    }

    private void write(Manifest.FileEntry entry, byte[] bytes) throws IOException {
        String actual = Sha256.of(bytes);
        if (!actual.equals(entry.sha256()) || bytes.length != entry.size()) {
            throw mismatch(entry, actual, bytes.length);
        }
        Path target = pathOf(entry);
        if (Files.isRegularFile(target) && Files.size(target) == entry.size() && Sha256.of(target).equals(actual)) {
            return;
        }
        Files.createDirectories(root);
        Path temp = Files.createTempFile(root, ".incoming-", ".tmp");
        try {
            Files.write(temp, bytes);
            Files.move(temp, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } finally {
            Files.deleteIfExists(temp);
        }
    }

    private static byte[] bytesOf(String name, NdArray array) {
        if (array.type() != DType.UINT8 || array.shape().length != 1) {
            throw new ArtifactException(name + ": artifact must be a 1-D uint8 array, got " + array);
        }
        return array.toBytes();
    }

    private static ArtifactException mismatch(Manifest.FileEntry entry, String actual, long size) {
        return new ArtifactException(entry.name() + ": sha256 mismatch, expected " + entry.sha256() + ", got " + actual
                + " (" + size + " bytes, expected " + entry.size() + ")");
    }
}
