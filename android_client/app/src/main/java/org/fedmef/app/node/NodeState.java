package org.fedmef.app.node;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Properties;

/**
 * What the node remembers about itself between process lives: the SuperLink it last joined, the
 * node id the SuperLink gave its key, and whether the key was registered (by this node or by an
 * administrator with {@code flwr supernode register}). The node never unregisters: flwr 1.41 does
 * not let an unregistered key register again, and the Keystore key outlives the process.
 */
public final class NodeState {
    private final String superlink;
    private final long nodeId;
    private final boolean registered;

    public NodeState(String superlink, long nodeId, boolean registered) {
        this.superlink = superlink == null ? "" : superlink;
        this.nodeId = nodeId;
        this.registered = registered;
    }

    /** Nothing known yet. */
    public static NodeState none() {
        return new NodeState("", 0, false);
    }

    public String superlink() {
        return superlink;
    }

    /** The SuperLink's id for this node (unsigned 64 bit), 0 when never activated. */
    public long nodeId() {
        return nodeId;
    }

    public boolean registered() {
        return registered;
    }

    /** Reads the state file; {@link #none()} when absent. */
    public static NodeState load(Path file) throws IOException {
        if (!Files.isRegularFile(file)) {
            return none();
        }
        Properties p = new Properties();
        try (InputStream in = Files.newInputStream(file)) {
            p.load(in);
        }
        try {
            return new NodeState(p.getProperty("superlink", ""),
                    Long.parseUnsignedLong(p.getProperty("node-id", "0")),
                    Boolean.parseBoolean(p.getProperty("registered", "false")));
        } catch (NumberFormatException e) {
            throw new IOException(file + ": bad node-id: " + e.getMessage(), e);
        }
    }

    /** Writes the state file atomically. */
    public void save(Path file) throws IOException {
        Properties p = new Properties();
        p.setProperty("superlink", superlink);
        p.setProperty("node-id", Long.toUnsignedString(nodeId));
        p.setProperty("registered", Boolean.toString(registered));
        Path dir = file.toAbsolutePath().getParent();
        Files.createDirectories(dir);
        Path temp = Files.createTempFile(dir, ".node-", ".tmp");
        try {
            try (OutputStream out = Files.newOutputStream(temp)) {
                p.store(out, "FedMef node state");
            }
            Files.move(temp, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } finally {
            Files.deleteIfExists(temp);
        }
    }

    @Override
    public String toString() {
        return nodeId == 0 ? "no node id yet"
                : "node " + Long.toUnsignedString(nodeId) + " at " + superlink + (registered ? " (registered)" : "");
    }
}
