package org.fedmef.app;

import android.content.ContentResolver;
import android.content.Context;
import android.content.res.AssetManager;
import android.net.Uri;
import androidx.documentfile.provider.DocumentFile;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import org.fedmef.app.node.NodeSettings;
import org.fedmef.core.contract.DataSource;
import org.fedmef.core.contract.PartitionDataSource;

/**
 * The node's data share on the phone: a partition directory of protocol §8 read by core's
 * {@link PartitionDataSource}. It comes from the APK ({@code assets/partitions/<name>/}, filled
 * by {@code scripts/emulator-flow.sh} with {@code python -m fedmef.partitions}) or from a folder the
 * user imports through the system picker; either way it is copied to app storage first, because
 * core reads files. File names are not known here: every file of the folder is copied and core
 * checks what it needs.
 */
public final class AndroidDataSource {
    private static final String ASSETS = "partitions";

    private AndroidDataSource() {
    }

    /** {@code asset:<name>} for each bundled partition, then the path of each imported one. */
    public static List<String> available(Context context) throws IOException {
        List<String> out = new ArrayList<>();
        String[] bundled = context.getAssets().list(ASSETS);
        if (bundled != null) {
            Arrays.sort(bundled);
            for (String name : bundled) {
                out.add(NodeSettings.ASSET_PREFIX + name);
            }
        }
        Path imported = AppFiles.partitions(context).resolve("imported");
        if (Files.isDirectory(imported)) {
            List<String> dirs = new ArrayList<>();
            try (DirectoryStream<Path> children = Files.newDirectoryStream(imported)) {
                for (Path child : children) {
                    if (Files.isDirectory(child)) {
                        dirs.add(child.toString());
                    }
                }
            }
            Collections.sort(dirs);
            out.addAll(dirs);
        }
        return out;
    }

    /** Opens {@code partition} ({@code asset:<name>} or a directory path). */
    public static DataSource open(Context context, String partition) throws IOException {
        if (partition.startsWith(NodeSettings.ASSET_PREFIX)) {
            String name = partition.substring(NodeSettings.ASSET_PREFIX.length());
            return PartitionDataSource.open(copyAsset(context, name));
        }
        return PartitionDataSource.open(Paths.get(partition));
    }

    /** Copies a user-picked folder (a tree URI from ACTION_OPEN_DOCUMENT_TREE) to app storage; returns its path. */
    public static String importTree(Context context, Uri tree) throws IOException {
        DocumentFile folder = DocumentFile.fromTreeUri(context, tree);
        if (folder == null || !folder.isDirectory()) {
            throw new IOException("not a folder: " + tree);
        }
        String name = folder.getName() == null ? "partition" : folder.getName().replaceAll("[^A-Za-z0-9._-]", "_");
        Path target = AppFiles.partitions(context).resolve("imported").resolve(name);
        Path temp = staging(context);
        ContentResolver resolver = context.getContentResolver();
        try {
            for (DocumentFile file : folder.listFiles()) {
                if (!file.isFile() || file.getName() == null) {
                    continue;
                }
                try (InputStream in = resolver.openInputStream(file.getUri())) {
                    if (in == null) {
                        throw new IOException("cannot read " + file.getUri());
                    }
                    copy(in, temp.resolve(file.getName()));
                }
            }
            PartitionDataSource.open(temp); // refuse a folder that is not a partition, before keeping it
            replace(temp, target);
        } finally {
            deleteTree(temp);
        }
        return target.toString();
    }

    private static Path copyAsset(Context context, String name) throws IOException {
        AssetManager assets = context.getAssets();
        String dir = ASSETS + "/" + name;
        String[] files = assets.list(dir);
        if (files == null || files.length == 0) {
            throw new IOException("no bundled partition '" + name + "' (assets/" + dir + " is empty)");
        }
        Path target = AppFiles.partitions(context).resolve("bundled").resolve(name);
        Path temp = staging(context);
        try {
            for (String file : files) {
                try (InputStream in = assets.open(dir + "/" + file)) {
                    copy(in, temp.resolve(file));
                }
            }
            replace(temp, target);
        } finally {
            deleteTree(temp);
        }
        return target;
    }

    private static Path staging(Context context) throws IOException {
        Path root = AppFiles.partitions(context);
        Files.createDirectories(root);
        return Files.createTempDirectory(root, ".incoming-");
    }

    private static void copy(InputStream in, Path file) throws IOException {
        try (OutputStream out = Files.newOutputStream(file)) {
            byte[] buffer = new byte[1 << 16];
            int n;
            while ((n = in.read(buffer)) > 0) {
                out.write(buffer, 0, n);
            }
        }
    }

    private static void replace(Path staged, Path target) throws IOException {
        Files.createDirectories(target.getParent());
        deleteTree(target);
        Files.move(staged, target, StandardCopyOption.ATOMIC_MOVE);
    }

    private static void deleteTree(Path path) throws IOException {
        if (Files.isDirectory(path)) {
            try (DirectoryStream<Path> children = Files.newDirectoryStream(path)) {
                for (Path child : children) {
                    deleteTree(child);
                }
            }
        }
        Files.deleteIfExists(path);
    }
}
