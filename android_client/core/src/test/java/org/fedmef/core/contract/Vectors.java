package org.fedmef.core.contract;

import static org.junit.jupiter.api.Assertions.fail;

import com.google.gson.JsonElement;
import com.google.gson.JsonParser;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import org.fedmef.core.records.NdArray;
import org.fedmef.core.records.Npy;

/**
 * The shared test vectors written by the Python reference ({@code tests/vectors/}): the directory
 * comes from the system property {@code fedmef.vectors} (set by Surefire), else
 * {@code ../../tests/vectors} from the module directory. A missing file fails the test, naming it.
 */
final class Vectors {
    private Vectors() {
    }

    static Path dir() {
        String property = System.getProperty("fedmef.vectors");
        return property != null && !property.isEmpty() ? Paths.get(property) : Paths.get("../../tests/vectors");
    }

    /** {@code dir()/relative}, failing the test when it is missing. */
    static Path require(String relative) {
        Path path = dir().resolve(relative);
        if (!Files.exists(path)) {
            fail("shared test vector " + path.toAbsolutePath().normalize() + " is missing: the Python reference "
                    + "writes tests/vectors/ (artifacts/ is generated: run `make vectors`)");
        }
        return path;
    }

    /** The generated ONNX artifacts of the tiny model, failing with a hint when absent. */
    static Path artifacts() {
        Path path = dir().resolve("artifacts");
        if (!Files.isRegularFile(path.resolve("manifest.json"))) {
            fail("tests/vectors/artifacts/ is missing (" + path.toAbsolutePath().normalize()
                    + "): run `make vectors` to export the tiny model's graphs and manifest");
        }
        return path;
    }

    static JsonElement json(String relative) throws IOException {
        return JsonParser.parseString(text(require(relative)));
    }

    static String text(Path path) throws IOException {
        return new String(Files.readAllBytes(path), StandardCharsets.UTF_8);
    }

    static NdArray npy(Path path) throws IOException {
        return Npy.read(path);
    }
}
