package org.fedmef.core.codec;

import com.google.protobuf.ByteString;
import com.google.protobuf.UnsafeByteOperations;
import flwr.proto.MessageOuterClass.ObjectTree;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * One deflated Flower object with its (unique) children: the unit the Fleet API pushes.
 *
 * <p>{@link #tree()} is the {@code ObjectTree} sent in PushMessages, {@link #objectsPostOrder()}
 * every object of the tree once, children before parents (the order PushObject needs).
 */
public final class EncodedObject {
    private final String id;
    private final String type;
    private final ByteString content;
    private final List<EncodedObject> children;

    /** Takes ownership of {@code content}: the caller must not change it afterwards. */
    EncodedObject(String type, byte[] content, List<EncodedObject> children) {
        this.type = type;
        this.id = ObjectBytes.sha256Hex(content);
        this.content = UnsafeByteOperations.unsafeWrap(content);
        this.children = Collections.unmodifiableList(children);
    }

    /** The object id: lowercase hex SHA-256 of {@link #content()}. */
    public String id() {
        return id;
    }

    /** Flower's object type, e.g. {@code "ArrayRecord"}. */
    public String type() {
        return type;
    }

    /** The object bytes (head, zero byte, body). */
    public ByteString content() {
        return content;
    }

    /** Unique children, in first-seen order (the order of the ids in the head). */
    public List<EncodedObject> children() {
        return children;
    }

    /** The {@code ObjectTree} of this object and its descendants. */
    public ObjectTree tree() {
        ObjectTree.Builder tree = ObjectTree.newBuilder().setObjectId(id);
        for (EncodedObject child : children) {
            tree.addChildren(child.tree());
        }
        return tree.build();
    }

    /** Every object of the tree once (by id), children before their parents; this one last. */
    public Map<String, EncodedObject> objectsPostOrder() {
        Map<String, EncodedObject> out = new LinkedHashMap<>();
        collect(out);
        return out;
    }

    private void collect(Map<String, EncodedObject> out) {
        for (EncodedObject child : children) {
            child.collect(out);
        }
        out.putIfAbsent(id, this);
    }

    @Override
    public String toString() {
        return type + " " + id;
    }
}
