package org.fedmef.app;

import android.content.Context;
import java.io.File;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Where the app keeps its state, all in its private storage ({@code filesDir}), so that a node
 * restarted after process death finds it: the settings, the node state, the reply journal, the
 * received graph files (by sha256), imported partitions and CA certificates, and a marker that
 * says the user wants the node running (set by Start, cleared by Stop).
 */
final class AppFiles {
    private AppFiles() {
    }

    static Path root(Context context) {
        return context.getFilesDir().toPath();
    }

    static Path settings(Context context) {
        return root(context).resolve("settings.properties");
    }

    static Path nodeState(Context context) {
        return root(context).resolve("node.properties");
    }

    static Path journal(Context context) {
        return root(context).resolve("journal");
    }

    static Path artifacts(Context context) {
        return root(context).resolve("artifacts");
    }

    static Path partitions(Context context) {
        return root(context).resolve("partitions");
    }

    static Path certificates(Context context) {
        return root(context).resolve("certificates");
    }

    /** Whether the user asked for the node to run (survives process death). */
    static boolean wanted(Context context) {
        return Files.exists(marker(context));
    }

    static void setWanted(Context context, boolean wanted) throws IOException {
        Path marker = marker(context);
        if (wanted) {
            Files.createDirectories(marker.getParent());
            if (!Files.exists(marker)) {
                Files.createFile(marker);
            }
        } else {
            Files.deleteIfExists(marker);
        }
    }

    private static Path marker(Context context) {
        return new File(context.getFilesDir(), "running").toPath();
    }
}
