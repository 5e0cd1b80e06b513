package org.fedmef.app.node;

import flwr.proto.MessageOuterClass.Metadata;
import java.io.BufferedInputStream;
import java.io.BufferedOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.logging.Logger;
import org.fedmef.core.codec.CodecException;
import org.fedmef.core.codec.DecodedMessage;
import org.fedmef.core.codec.EncodedObject;
import org.fedmef.core.codec.ObjectCodec;
import org.fedmef.core.records.RecordDict;

/**
 * The reply of the instruction being answered, kept on app storage from the moment it is computed
 * until the SuperLink has it, so that a round's result survives the process being killed between
 * training and push (a round can take minutes; the push is the step that needs the network).
 *
 * <p>One entry at most (a node answers one instruction at a time), a directory
 * {@code <root>/pending/} holding {@code instruction.pb} (the instruction's metadata, serialized
 * flwr protobuf: what the reply's metadata is derived from) and {@code reply.objects} (the reply
 * content as Flower objects, encoded by core's {@link ObjectCodec}, so that decoding on restart
 * checks every object's SHA-256). Written to a temporary directory, synced, then renamed.
 */
public final class ReplyJournal {
    private static final Logger LOG = Logger.getLogger(ReplyJournal.class.getName());
    private static final String PENDING = "pending";
    private static final String INSTRUCTION = "instruction.pb";
    private static final String OBJECTS = "reply.objects";
    private static final int FORMAT = 1;

    private final Path root;
    private final ObjectCodec codec;

    public ReplyJournal(Path root) {
        this(root, new ObjectCodec());
    }

    public ReplyJournal(Path root, ObjectCodec codec) {
        this.root = root;
        this.codec = codec;
    }

    /** A reply computed but not yet confirmed pushed. */
    public static final class Pending {
        private final Metadata instruction;
        private final RecordDict reply;
        private final long receivedAtMillis;

        Pending(Metadata instruction, RecordDict reply, long receivedAtMillis) {
            this.instruction = instruction;
            this.reply = reply;
            this.receivedAtMillis = receivedAtMillis;
        }

        /** The instruction's metadata, message id included. */
        public Metadata instruction() {
            return instruction;
        }

        public RecordDict reply() {
            return reply;
        }

        /** When the instruction was pulled (this device's clock, ms since the epoch). */
        public long receivedAtMillis() {
            return receivedAtMillis;
        }

        /** Whether the instruction's TTL has run out at {@code nowMillis}: the SuperLink would refuse the reply. */
        public boolean expired(long nowMillis) {
            return instruction.getCreatedAt() + instruction.getTtl() <= nowMillis / 1000.0;
        }
    }

    /** Persists {@code reply} to {@code instruction}, replacing any earlier entry. */
    public void save(Metadata instruction, RecordDict reply, long receivedAtMillis) throws IOException {
        EncodedObject message = codec.encodeMessage(instruction, reply);
        Files.createDirectories(root);
        Path temp = Files.createTempDirectory(root, ".pending-");
        try {
            writeSynced(temp.resolve(INSTRUCTION), instruction.toByteArray());
            try (DataOutputStream out = new DataOutputStream(new BufferedOutputStream(
                    Files.newOutputStream(temp.resolve(OBJECTS)), 1 << 16))) {
                out.writeInt(FORMAT);
                out.writeLong(receivedAtMillis);
                writeString(out, message.id());
                Map<String, EncodedObject> objects = message.objectsPostOrder();
                out.writeInt(objects.size());
                for (EncodedObject o : objects.values()) {
                    writeString(out, o.id());
                    out.writeInt(o.content().size());
                    o.content().writeTo(out);
                }
            }
            sync(temp.resolve(OBJECTS));
            clear();
            Files.move(temp, root.resolve(PENDING), StandardCopyOption.ATOMIC_MOVE);
        } finally {
            deleteTree(temp);
        }
    }

    /** The pending reply, or null; an unreadable entry is logged and dropped (nothing could be pushed from it). */
    public Pending load() throws IOException {
        Path dir = root.resolve(PENDING);
        if (!Files.isDirectory(dir)) {
            return null;
        }
        try {
            Metadata instruction = Metadata.parseFrom(Files.readAllBytes(dir.resolve(INSTRUCTION)));
            try (DataInputStream in = new DataInputStream(new BufferedInputStream(
                    Files.newInputStream(dir.resolve(OBJECTS)), 1 << 16))) {
                int format = in.readInt();
                if (format != FORMAT) {
                    throw new IOException("unknown journal format " + format);
                }
                long receivedAt = in.readLong();
                String rootId = readString(in);
                int count = in.readInt();
                Map<String, byte[]> contents = new LinkedHashMap<>();
                for (int i = 0; i < count; i++) {
                    String id = readString(in);
                    byte[] bytes = new byte[in.readInt()];
                    in.readFully(bytes);
                    contents.put(id, bytes);
                }
                DecodedMessage decoded = codec.decodeMessage(rootId, contents);
                if (decoded.content() == null) {
                    throw new IOException("journaled reply has no content");
                }
                return new Pending(instruction, decoded.content(), receivedAt);
            }
        } catch (IOException | CodecException | RuntimeException e) { // truncated, corrupt or from another version
            LOG.warning("dropping an unreadable pending reply in " + dir + ": " + e);
            clear();
            return null;
        }
    }

    /** Forgets the pending reply (pushed, expired or refused). */
    public void clear() throws IOException {
        deleteTree(root.resolve(PENDING));
    }

    private static void writeSynced(Path file, byte[] bytes) throws IOException {
        try (OutputStream out = Files.newOutputStream(file)) {
            out.write(bytes);
        }
        sync(file);
    }

    private static void sync(Path file) throws IOException {
        try (FileChannel channel = FileChannel.open(file, StandardOpenOption.WRITE)) {
            channel.force(true);
        }
    }

    private static void writeString(DataOutputStream out, String s) throws IOException {
        byte[] bytes = s.getBytes(StandardCharsets.UTF_8);
        out.writeInt(bytes.length);
        out.write(bytes);
    }

    private static String readString(DataInputStream in) throws IOException {
        int n = in.readInt();
        if (n < 0 || n > 4096) {
            throw new EOFException("bad string length " + n);
        }
        byte[] bytes = new byte[n];
        in.readFully(bytes);
        return new String(bytes, StandardCharsets.UTF_8);
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
