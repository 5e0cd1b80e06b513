package org.fedmef.core.fleet;

import com.google.protobuf.ByteString;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.MessageLite;
import com.google.protobuf.Parser;
import flwr.proto.FleetOuterClass;
import flwr.proto.Heartbeat;
import flwr.proto.MessageOuterClass;
import flwr.proto.MessageOuterClass.Metadata;
import flwr.proto.MessageOuterClass.ObjectTree;
import flwr.proto.NodeOuterClass.Node;
import flwr.proto.Recorddict;
import java.io.IOException;
import java.time.Clock;
import java.util.ArrayDeque;
import java.util.Deque;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.logging.Logger;
import org.fedmef.core.codec.CodecException;
import org.fedmef.core.codec.DecodedMessage;
import org.fedmef.core.codec.EncodedObject;
import org.fedmef.core.codec.ObjectCodec;
import org.fedmef.core.records.RecordDict;

/**
 * A Flower 1.41 SuperNode's side of the Fleet API (docs: shared notes "fleet-protocol"; ground
 * truth: the reference raw_client.py): register, activate, heartbeat, pull an instruction and
 * its objects, confirm, push a reply and its objects, deactivate, unregister.
 *
 * <p>Every call is signed ({@link RequestSigner}) and retried per the {@link RetryPolicy}
 * (connection errors, 5xx, 429; never other 4xx). Not thread-safe except for the background
 * heartbeats, which only read the node id.
 */
public final class FleetClient implements AutoCloseable {
    /** Flower's error code for "this public key is already registered" (HTTP 412). */
    public static final int PUBLIC_KEY_ALREADY_IN_USE = 23;
    /** Flower's error code when the SuperLink only accepts admin-registered nodes (HTTP 412). */
    public static final int REGISTRATION_DISABLED = 2001;
    /** Flower's error code when no registered node has this key (HTTP 412). */
    public static final int NODE_ACTIVATION_FAILED = 2004;
    private static final String PATH = "/v1/fleet/";
    private static final Logger LOG = Logger.getLogger(FleetClient.class.getName());

    private final FleetTransport transport;
    private final NodeKeys keys;
    private final RequestSigner signer;
    private final ObjectCodec codec;
    private final Clock clock;
    private final RetryPolicy retry;
    private final Sleeper sleeper;
    private final double heartbeatInterval;
    private final int objectPollAttempts;
    private volatile long nodeId;
    private Heartbeats heartbeats;

    private FleetClient(Builder b) {
        this.transport = b.transport;
        this.keys = b.keys;
        this.clock = b.clock;
        this.signer = new RequestSigner(b.keys, b.clock);
        this.codec = b.codec;
        this.retry = b.retry;
        this.sleeper = b.sleeper;
        this.heartbeatInterval = b.heartbeatInterval;
        this.objectPollAttempts = b.objectPollAttempts;
    }

    public static Builder builder(FleetTransport transport, NodeKeys keys) {
        return new Builder(transport, keys);
    }

    /**
     * RegisterNode. Returns true when this call registered the node, false when the key was
     * already registered (by an earlier run or by an administrator) or the SuperLink refuses
     * self-registration (SuperNode authentication on: an admin ran {@code flwr supernode register});
     * in both cases {@link #activate()} is the next step.
     */
    public boolean register() throws IOException {
        try {
            call("register-node", FleetOuterClass.RegisterNodeFleetRequest.newBuilder()
                    .setPublicKey(ByteString.copyFrom(keys.publicKeyPem())).build(),
                    FleetOuterClass.RegisterNodeFleetResponse.parser());
            return true;
        } catch (FleetException e) {
            if (e.status() == 412 && (e.code() == PUBLIC_KEY_ALREADY_IN_USE || e.code() == REGISTRATION_DISABLED)) {
                LOG.info("not registering: " + e.getMessage());
                return false;
            }
            throw e;
        }
    }

    /**
     * ActivateNode: the SuperLink starts counting the node online; returns the node id.
     * Fails (412, code 2004) for a key with no live registration: never registered (with
     * SuperNode auth an admin must run {@code flwr supernode register}), or unregistered earlier —
     * flwr 1.41 keeps an unregistered key burnt until the SuperLink's state is reset.
     */
    public long activate() throws IOException {
        try {
            nodeId = call("activate-node", FleetOuterClass.ActivateNodeRequest.newBuilder()
                    .setPublicKey(ByteString.copyFrom(keys.publicKeyPem()))
                    .setHeartbeatInterval(heartbeatInterval).build(),
                    FleetOuterClass.ActivateNodeResponse.parser()).getNodeId();
            return nodeId;
        } catch (FleetException e) {
            if (e.status() == 412 && e.code() == NODE_ACTIVATION_FAILED) {
                throw new FleetException(PATH + "activate-node", 412, e.code(), e.detail()
                        + " (this key has no live registration: register it with `flwr supernode register`, or, if"
                        + " a node with this key unregistered before, use a new key: flwr does not reuse it)");
            }
            throw e;
        }
    }

    /** The node id from {@link #activate()} (0 before). */
    public long nodeId() {
        return nodeId;
    }

    /** One SendNodeHeartbeat; returns the SuperLink's {@code success}. */
    public boolean heartbeat() throws IOException {
        return call("send-node-heartbeat", Heartbeat.SendNodeHeartbeatRequest.newBuilder()
                .setNode(node()).setHeartbeatInterval(heartbeatInterval).build(),
                Heartbeat.SendNodeHeartbeatResponse.parser()).getSuccess();
    }

    /** Starts background heartbeats (after {@link #activate()}); {@link #close()} stops them. */
    public synchronized void startHeartbeats() {
        if (heartbeats == null) {
            heartbeats = new Heartbeats(() -> {
                if (!heartbeat()) {
                    LOG.warning("SuperLink answered the heartbeat with success=false");
                }
            }, heartbeatInterval, new Random());
            heartbeats.start();
        }
    }

    /** Stops background heartbeats. */
    public synchronized void stopHeartbeats() {
        if (heartbeats != null) {
            heartbeats.close();
            heartbeats = null;
        }
    }

    /**
     * PullMessages; for a message, PullObject for its whole tree (waiting while objects are not
     * yet available), then ConfirmMessageReceived. Returns null when nothing is waiting.
     */
    public Instruction pullMessage() throws IOException, InterruptedException {
        FleetOuterClass.PullMessagesResponse pulled = call("pull-messages",
                FleetOuterClass.PullMessagesRequest.newBuilder().setNode(node()).build(),
                FleetOuterClass.PullMessagesResponse.parser());
        if (pulled.getMessagesListCount() == 0) {
            return null;
        }
        if (pulled.getMessageObjectTreesCount() == 0) {
            throw new IOException("PullMessages returned a message without its object tree");
        }
        Metadata metadata = pulled.getMessagesList(0).getMetadata();
        ObjectTree tree = pulled.getMessageObjectTrees(0);
        if (!tree.getObjectId().equals(metadata.getMessageId())) {
            throw new IOException("message id " + metadata.getMessageId() + " is not its tree's root " + tree.getObjectId());
        }
        Map<String, byte[]> contents = pullObjects(metadata.getRunId(), tree);
        call("confirm-message-received", MessageOuterClass.ConfirmMessageReceivedRequest.newBuilder()
                .setNode(node()).setRunId(metadata.getRunId()).setMessageObjectId(metadata.getMessageId()).build(),
                MessageOuterClass.ConfirmMessageReceivedResponse.parser());
        long now = clock.millis();
        try {
            DecodedMessage decoded = codec.decodeMessage(metadata.getMessageId(), contents);
            if (decoded.hasError()) {
                return new Instruction(metadata, null, "instruction carries an error: " + decoded.error().getReason(), now);
            }
            return new Instruction(metadata, decoded.content(), null, now);
        } catch (CodecException e) {
            LOG.warning("cannot inflate message " + metadata.getMessageId() + ": " + e.getMessage());
            return new Instruction(metadata, null, e.getMessage(), now);
        }
    }

    /** Replies with content. */
    public void pushReply(Instruction instruction, RecordDict content) throws IOException {
        Metadata metadata = ReplyMetadata.of(instruction.metadata(), nowSeconds());
        EncodedObject message = codec.encodeMessage(metadata, content);
        MessageOuterClass.Message wire = MessageOuterClass.Message.newBuilder()
                .setMetadata(metadata.toBuilder().setMessageId(message.id()))
                .setContent(Recorddict.RecordDict.getDefaultInstance()) // present but empty
                .build();
        push(instruction, message, wire);
    }

    /** Replies with a Flower error instead of content. */
    public void pushError(Instruction instruction, int code, String reason) throws IOException {
        Metadata metadata = ReplyMetadata.of(instruction.metadata(), nowSeconds());
        EncodedObject message = codec.encodeErrorMessage(metadata, code, reason);
        MessageOuterClass.Message wire = MessageOuterClass.Message.newBuilder()
                .setMetadata(metadata.toBuilder().setMessageId(message.id()))
                .setError(flwr.proto.ErrorOuterClass.Error.newBuilder().setCode(code).setReason(reason == null ? "" : reason))
                .build();
        push(instruction, message, wire);
    }

    /** DeactivateNode: the node goes offline (stops heartbeats first). */
    public void deactivate() throws IOException {
        stopHeartbeats();
        call("deactivate-node", FleetOuterClass.DeactivateNodeRequest.newBuilder().setNodeId(nodeId).build(),
                FleetOuterClass.DeactivateNodeResponse.parser());
    }

    /** UnregisterNode: only for a node that registered itself. */
    public void unregister() throws IOException {
        call("unregister-node", FleetOuterClass.UnregisterNodeFleetRequest.newBuilder().setNodeId(nodeId).build(),
                FleetOuterClass.UnregisterNodeFleetResponse.parser());
    }

    @Override
    public void close() {
        stopHeartbeats();
    }

    // ---- internals ----------------------------------------------------------------------

    private void push(Instruction instruction, EncodedObject message, MessageOuterClass.Message wire) throws IOException {
        double runtime = Math.max(0, (clock.millis() - instruction.receivedAtMillis()) / 1000.0);
        FleetOuterClass.PushMessagesResponse pushed = call("push-messages", FleetOuterClass.PushMessagesRequest.newBuilder()
                .setNode(node()).addMessagesList(wire).addMessageObjectTrees(message.tree())
                .addClientappRuntimeList(runtime).build(), FleetOuterClass.PushMessagesResponse.parser());
        Set<String> wanted = new HashSet<>(pushed.getObjectsToPushList());
        Map<String, EncodedObject> objects = message.objectsPostOrder();
        if (!objects.keySet().containsAll(wanted)) {
            wanted.removeAll(objects.keySet());
            throw new IOException("SuperLink asks for objects not in the reply: " + wanted);
        }
        for (EncodedObject o : objects.values()) { // children before parents
            if (!wanted.contains(o.id())) {
                continue;
            }
            MessageOuterClass.PushObjectResponse stored = call("push-object", MessageOuterClass.PushObjectRequest.newBuilder()
                    .setNode(node()).setRunId(instruction.runId()).setObjectId(o.id()).setObjectContent(o.content())
                    .setSessionId(pushed.getSessionId()).build(), MessageOuterClass.PushObjectResponse.parser());
            if (!stored.getStored()) {
                throw new IOException("SuperLink did not store " + o);
            }
        }
        LOG.info("pushed reply " + message.id() + " to " + instruction + " (" + wanted.size() + " objects)");
    }

    private Map<String, byte[]> pullObjects(long runId, ObjectTree root) throws IOException, InterruptedException {
        Map<String, byte[]> contents = new LinkedHashMap<>();
        Deque<ObjectTree> todo = new ArrayDeque<>();
        todo.push(root);
        while (!todo.isEmpty()) {
            ObjectTree tree = todo.pop();
            for (ObjectTree child : tree.getChildrenList()) {
                todo.push(child);
            }
            if (!contents.containsKey(tree.getObjectId())) {
                contents.put(tree.getObjectId(), pullObject(runId, tree.getObjectId()));
            }
        }
        return contents;
    }

    private byte[] pullObject(long runId, String objectId) throws IOException, InterruptedException {
        MessageOuterClass.PullObjectRequest request = MessageOuterClass.PullObjectRequest.newBuilder()
                .setNode(node()).setRunId(runId).setObjectId(objectId).build();
        for (int attempt = 1; attempt <= objectPollAttempts; attempt++) {
            MessageOuterClass.PullObjectResponse r = call("pull-object", request,
                    MessageOuterClass.PullObjectResponse.parser());
            if (!r.getObjectFound()) {
                throw new IOException("object " + objectId + " not found on the SuperLink");
            }
            if (r.getObjectAvailable()) {
                return r.getObjectContent().toByteArray();
            }
            sleeper.sleep(1000);
        }
        throw new IOException("object " + objectId + " still not available after " + objectPollAttempts + " tries");
    }

    private <T extends MessageLite> T call(String rpc, MessageLite request, Parser<T> parser) throws IOException {
        byte[] body = request.toByteArray();
        for (int attempt = 1; ; attempt++) {
            try {
                byte[] response = transport.post(PATH + rpc, body, signer.headers());
                return parser.parseFrom(response);
            } catch (InvalidProtocolBufferException e) {
                throw new IOException(rpc + ": malformed response: " + e.getMessage(), e);
            } catch (IOException e) {
                if (e instanceof FleetException && ((FleetException) e).status() == 401) {
                    throw new FleetException(PATH + rpc, 401, ((FleetException) e).code(), ((FleetException) e).detail()
                            + " (the request signature was refused: is the device clock right?)");
                }
                if (attempt >= retry.maxAttempts() || !RetryPolicy.retryable(e)) {
                    throw e;
                }
                long delay = retry.delayMillis(attempt);
                LOG.warning(rpc + " failed (" + e.getMessage() + "), try " + (attempt + 1) + " in " + delay + " ms");
                try {
                    sleeper.sleep(delay);
                } catch (InterruptedException interrupted) {
                    Thread.currentThread().interrupt();
                    throw new java.io.InterruptedIOException(rpc + " interrupted");
                }
            }
        }
    }

    private Node node() {
        return Node.newBuilder().setNodeId(nodeId).build();
    }

    private double nowSeconds() {
        return clock.millis() / 1000.0;
    }

    /** Settings with flwr's defaults; tests swap the transport, clock, retry policy and sleeper. */
    public static final class Builder {
        private final FleetTransport transport;
        private final NodeKeys keys;
        private Clock clock = Clock.systemUTC();
        private ObjectCodec codec = new ObjectCodec();
        private RetryPolicy retry = RetryPolicy.defaults();
        private Sleeper sleeper = Sleeper.system();
        private double heartbeatInterval = 30;
        private int objectPollAttempts = 60;

        private Builder(FleetTransport transport, NodeKeys keys) {
            this.transport = transport;
            this.keys = keys;
        }

        public Builder clock(Clock clock) {
            this.clock = clock;
            return this;
        }

        public Builder codec(ObjectCodec codec) {
            this.codec = codec;
            return this;
        }

        public Builder retry(RetryPolicy retry) {
            this.retry = retry;
            return this;
        }

        public Builder sleeper(Sleeper sleeper) {
            this.sleeper = sleeper;
            return this;
        }

        /** Seconds; the SuperLink accepts [10, 1800]. */
        public Builder heartbeatInterval(double seconds) {
            if (seconds < 10 || seconds > 1800) {
                throw new IllegalArgumentException("heartbeat interval must be in [10, 1800] s, got " + seconds);
            }
            this.heartbeatInterval = seconds;
            return this;
        }

        /** How often to ask for an object that is not yet available (1 s apart). */
        public Builder objectPollAttempts(int attempts) {
            this.objectPollAttempts = attempts;
            return this;
        }

        public FleetClient build() {
            return new FleetClient(this);
        }
    }
}
