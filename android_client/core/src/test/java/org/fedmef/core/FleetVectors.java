package org.fedmef.core;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;

/**
 * The shared vectors written by flwr's own code ({@code tests/vectors/fleet.py}): found through
 * the {@code fleet.vectors} system property (set by surefire), else relative to the module.
 */
public final class FleetVectors {
    private FleetVectors() {
    }

    /** The vector folder. */
    public static Path dir() {
        String configured = System.getProperty("fleet.vectors");
        Path dir = configured != null ? Paths.get(configured) : Paths.get("..", "..", "tests", "vectors", "fleet");
        if (!Files.isRegularFile(dir.resolve("fleet.json"))) {
            throw new IllegalStateException("no fleet.json in " + dir.toAbsolutePath()
                    + ": run `python tests/vectors/fleet.py`");
        }
        return dir;
    }

    /** fleet.json, parsed. */
    public static JsonObject json() throws IOException {
        String text = new String(Files.readAllBytes(dir().resolve("fleet.json")), StandardCharsets.UTF_8);
        return JsonParser.parseString(text).getAsJsonObject();
    }

    /** Bytes from lowercase hex. */
    public static byte[] hex(String hex) {
        byte[] out = new byte[hex.length() / 2];
        for (int i = 0; i < out.length; i++) {
            out[i] = (byte) Integer.parseInt(hex.substring(2 * i, 2 * i + 2), 16);
        }
        return out;
    }
}
