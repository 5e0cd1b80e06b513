package org.fedmef.app.node;

import com.google.protobuf.ByteString;
import flwr.proto.FleetOuterClass;
import flwr.proto.Heartbeat;
import flwr.proto.MessageOuterClass;
import flwr.proto.MessageOuterClass.Metadata;
import java.io.IOException;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Deque;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.fedmef.core.codec.DecodedMessage;
import org.fedmef.core.codec.EncodedObject;
import org.fedmef.core.codec.ObjectCodec;
import org.fedmef.core.fleet.FleetException;
import org.fedmef.core.fleet.FleetTransport;
import org.fedmef.core.records.RecordDict;

/**
 * A SuperLink scripted as a {@link FleetTransport}: answers the Fleet RPCs the way flwr 1.41 does
 * (node id {@link #NODE_ID}), serves queued instructions and their objects, keeps every pushed
 * reply, and can refuse pushes.
 */
final class ScriptedSuperLink implements FleetTransport {
    static final long NODE_ID = 0xF00DCAFEL;
    final List<String> calls = Collections.synchronizedList(new ArrayList<String>());
    final List<Pushed> pushed = new ArrayList<>();
    /** Status codes answered to the next push-messages calls (then 200). */
    final Deque<Integer> pushFailures = new ArrayDeque<>();
    private final Deque<EncodedObject> queue = new ArrayDeque<>();
    private final Map<String, Metadata> metadata = new LinkedHashMap<>();
    private final Map<String, EncodedObject> objects = new LinkedHashMap<>();
    private FleetOuterClass.PushMessagesRequest pending;
    private final Map<String, ByteString> pushedObjects = new LinkedHashMap<>();

    /** A reply as the SuperLink stored it. */
    static final class Pushed {
        final Metadata metadata;
        final RecordDict content;
        final String error;

        Pushed(Metadata metadata, RecordDict content, String error) {
            this.metadata = metadata;
            this.content = content;
            this.error = error;
        }
    }

    /** Queues an instruction from the SuperLink (node 1) to this node; returns its metadata with id. */
    synchronized Metadata queue(String type, RecordDict content, double createdAt, double ttl) {
        Metadata m = Metadata.newBuilder().setRunId(5).setSrcNodeId(1).setDstNodeId(NODE_ID).setGroupId("1")
                .setTtl(ttl).setMessageType(type).setCreatedAt(createdAt).build();
        EncodedObject encoded = new ObjectCodec().encodeMessage(m, content);
        queue.add(encoded);
        metadata.put(encoded.id(), m.toBuilder().setMessageId(encoded.id()).build());
        objects.putAll(encoded.objectsPostOrder());
        return metadata.get(encoded.id());
    }

    synchronized int queued() {
        return queue.size();
    }

    @Override
    public synchronized byte[] post(String path, byte[] body, Map<String, String> headers) throws IOException {
        String rpc = path.substring("/v1/fleet/".length());
        calls.add(rpc);
        switch (rpc) {
            case "register-node":
                return FleetOuterClass.RegisterNodeFleetResponse.newBuilder().setNodeId(NODE_ID).build().toByteArray();
            case "activate-node":
                return FleetOuterClass.ActivateNodeResponse.newBuilder().setNodeId(NODE_ID).build().toByteArray();
            case "send-node-heartbeat":
                return Heartbeat.SendNodeHeartbeatResponse.newBuilder().setSuccess(true).build().toByteArray();
            case "pull-messages": {
                FleetOuterClass.PullMessagesResponse.Builder r = FleetOuterClass.PullMessagesResponse.newBuilder();
                EncodedObject next = queue.poll();
                if (next != null) {
                    r.addMessagesList(MessageOuterClass.Message.newBuilder().setMetadata(metadata.get(next.id())))
                            .addMessageObjectTrees(next.tree());
                }
                return r.build().toByteArray();
            }
            case "pull-object": {
                MessageOuterClass.PullObjectRequest request = MessageOuterClass.PullObjectRequest.parseFrom(body);
                EncodedObject o = objects.get(request.getObjectId());
                MessageOuterClass.PullObjectResponse.Builder r = MessageOuterClass.PullObjectResponse.newBuilder()
                        .setObjectFound(o != null).setObjectAvailable(o != null);
                if (o != null) {
                    r.setObjectContent(o.content());
                }
                return r.build().toByteArray();
            }
            case "confirm-message-received":
                return MessageOuterClass.ConfirmMessageReceivedResponse.getDefaultInstance().toByteArray();
            case "push-messages": {
                Integer failure = pushFailures.poll();
                if (failure != null) {
                    throw new FleetException(path, failure, -1, "scripted failure");
                }
                pending = FleetOuterClass.PushMessagesRequest.parseFrom(body);
                pushedObjects.clear();
                List<String> wanted = new ArrayList<>();
                collect(pending.getMessageObjectTrees(0), wanted);
                MessageOuterClass.Message message = pending.getMessagesList(0);
                if (message.hasError()) { // an error reply is a single object: store it now
                    pushed.add(new Pushed(message.getMetadata(), null, message.getError().getReason()));
                }
                return FleetOuterClass.PushMessagesResponse.newBuilder().addAllObjectsToPush(wanted)
                        .setSessionId("s").build().toByteArray();
            }
            case "push-object": {
                MessageOuterClass.PushObjectRequest request = MessageOuterClass.PushObjectRequest.parseFrom(body);
                pushedObjects.put(request.getObjectId(), request.getObjectContent());
                MessageOuterClass.Message message = pending.getMessagesList(0);
                if (!message.hasError() && request.getObjectId().equals(message.getMetadata().getMessageId())) {
                    Map<String, byte[]> contents = new LinkedHashMap<>();
                    for (Map.Entry<String, ByteString> e : pushedObjects.entrySet()) {
                        contents.put(e.getKey(), e.getValue().toByteArray());
                    }
                    try {
                        DecodedMessage decoded = new ObjectCodec().decodeMessage(request.getObjectId(), contents);
                        pushed.add(new Pushed(message.getMetadata(), decoded.content(), null));
                    } catch (Exception e) {
                        throw new IOException("pushed reply does not decode: " + e, e);
                    }
                }
                return MessageOuterClass.PushObjectResponse.newBuilder().setStored(true).build().toByteArray();
            }
            case "deactivate-node":
                return FleetOuterClass.DeactivateNodeResponse.getDefaultInstance().toByteArray();
            case "unregister-node":
                return FleetOuterClass.UnregisterNodeFleetResponse.getDefaultInstance().toByteArray();
            default:
                throw new FleetException(path, 404, -1, "Not Found");
        }
    }

    private static void collect(MessageOuterClass.ObjectTree tree, List<String> out) {
        if (!out.contains(tree.getObjectId())) {
            out.add(tree.getObjectId());
        }
        for (MessageOuterClass.ObjectTree c : tree.getChildrenList()) {
            collect(c, out);
        }
    }
}
