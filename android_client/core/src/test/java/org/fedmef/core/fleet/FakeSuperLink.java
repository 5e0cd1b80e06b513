package org.fedmef.core.fleet;

import com.google.protobuf.ByteString;
import com.google.protobuf.MessageLite;
import flwr.proto.FleetOuterClass;
import flwr.proto.Heartbeat;
import flwr.proto.MessageOuterClass;
import flwr.proto.MessageOuterClass.Metadata;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Deque;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import okhttp3.mockwebserver.Dispatcher;
import okhttp3.mockwebserver.MockResponse;
import okhttp3.mockwebserver.RecordedRequest;
import okio.Buffer;
import org.fedmef.core.codec.EncodedObject;
import org.fedmef.core.codec.ObjectCodec;
import org.fedmef.core.records.RecordDict;

/**
 * A scripted SuperLink for MockWebServer: answers each Fleet path like flwr 1.41 does, serves one
 * queued instruction and its objects, keeps what the node pushed, and can inject failures.
 */
final class FakeSuperLink extends Dispatcher {
    static final long NODE_ID = 0xF00DCAFEL;
    final List<RecordedRequest> requests = Collections.synchronizedList(new ArrayList<RecordedRequest>());
    final Map<String, ByteString> pushedObjects = new LinkedHashMap<>();
    final Deque<MockResponse> failures = new ArrayDeque<>();
    FleetOuterClass.PushMessagesRequest pushedMessage;
    private final Map<String, ByteString> corrupted = new LinkedHashMap<>();
    private EncodedObject instruction;
    private EncodedObject served;
    private Metadata instructionMetadata;
    int unavailablePulls;
    boolean storeObjects = true;
    List<String> objectsToPush;

    /** Queues one instruction sent by the SuperLink (node 1) to {@link #NODE_ID}. */
    Metadata queue(String type, RecordDict content, double createdAt) {
        Metadata metadata = Metadata.newBuilder().setRunId(-7L).setSrcNodeId(1).setDstNodeId(NODE_ID)
                .setGroupId("4").setTtl(600).setMessageType(type).setCreatedAt(createdAt).setSrcTaskId(77).build();
        instruction = new ObjectCodec().encodeMessage(metadata, content);
        instructionMetadata = metadata.toBuilder().setMessageId(instruction.id()).build();
        return instructionMetadata;
    }

    /** Replaces one object of the queued instruction by other bytes (a corrupt server). */
    void corrupt(String objectId, byte[] content) {
        corrupted.put(objectId, ByteString.copyFrom(content));
    }

    List<String> paths() {
        List<String> out = new ArrayList<>();
        synchronized (requests) {
            for (RecordedRequest r : requests) {
                out.add(r.getPath().substring("/v1/fleet/".length()));
            }
        }
        return out;
    }

    @Override
    public MockResponse dispatch(RecordedRequest request) {
        requests.add(request);
        synchronized (failures) {
            if (!failures.isEmpty()) {
                return failures.poll();
            }
        }
        try {
            byte[] body = request.getBody().clone().readByteArray();
            String rpc = request.getPath().substring("/v1/fleet/".length());
            switch (rpc) {
                case "register-node":
                    return ok(FleetOuterClass.RegisterNodeFleetResponse.newBuilder().setNodeId(NODE_ID).build());
                case "activate-node":
                    return ok(FleetOuterClass.ActivateNodeResponse.newBuilder().setNodeId(NODE_ID).build());
                case "send-node-heartbeat":
                    return ok(Heartbeat.SendNodeHeartbeatResponse.newBuilder().setSuccess(true).build());
                case "pull-messages":
                    return pullMessages();
                case "pull-object":
                    return pullObject(MessageOuterClass.PullObjectRequest.parseFrom(body));
                case "confirm-message-received":
                    return ok(MessageOuterClass.ConfirmMessageReceivedResponse.getDefaultInstance());
                case "push-messages":
                    return pushMessages(FleetOuterClass.PushMessagesRequest.parseFrom(body));
                case "push-object":
                    MessageOuterClass.PushObjectRequest push = MessageOuterClass.PushObjectRequest.parseFrom(body);
                    pushedObjects.put(push.getObjectId(), push.getObjectContent());
                    return ok(MessageOuterClass.PushObjectResponse.newBuilder().setStored(storeObjects).build());
                case "deactivate-node":
                    return ok(FleetOuterClass.DeactivateNodeResponse.getDefaultInstance());
                case "unregister-node":
                    return ok(FleetOuterClass.UnregisterNodeFleetResponse.getDefaultInstance());
                default:
                    return new MockResponse().setResponseCode(404).setBody("{\"detail\": \"Not Found\"}");
            }
        } catch (Exception e) {
            return new MockResponse().setResponseCode(500).setBody("{\"detail\": \"" + e + "\"}");
        }
    }

    private MockResponse pullMessages() {
        FleetOuterClass.PullMessagesResponse.Builder r = FleetOuterClass.PullMessagesResponse.newBuilder();
        if (instruction != null) {
            r.addMessagesList(MessageOuterClass.Message.newBuilder().setMetadata(instructionMetadata))
                    .addMessageObjectTrees(instruction.tree());
        }
        MockResponse response = ok(r.build());
        served = instruction;
        instruction = null;
        return response;
    }

    private MockResponse pullObject(MessageOuterClass.PullObjectRequest request) {
        if (unavailablePulls > 0) {
            unavailablePulls--;
            return ok(MessageOuterClass.PullObjectResponse.newBuilder().setObjectFound(true).setObjectAvailable(false).build());
        }
        EncodedObject o = served == null ? null : served.objectsPostOrder().get(request.getObjectId());
        if (o == null) {
            return ok(MessageOuterClass.PullObjectResponse.newBuilder().setObjectFound(false).build());
        }
        ByteString content = corrupted.containsKey(o.id()) ? corrupted.get(o.id()) : o.content();
        return ok(MessageOuterClass.PullObjectResponse.newBuilder().setObjectFound(true).setObjectAvailable(true)
                .setObjectContent(content).build());
    }

    private MockResponse pushMessages(FleetOuterClass.PushMessagesRequest request) {
        pushedMessage = request;
        List<String> wanted = new ArrayList<>();
        if (objectsToPush != null) {
            wanted.addAll(objectsToPush);
        } else {
            collect(request.getMessageObjectTrees(0), wanted);
        }
        return ok(FleetOuterClass.PushMessagesResponse.newBuilder().addAllObjectsToPush(wanted).setSessionId("s-1")
                .putResults(request.getMessagesList(0).getMetadata().getMessageId(), 0).build());
    }

    private static void collect(MessageOuterClass.ObjectTree tree, List<String> out) {
        if (!out.contains(tree.getObjectId())) {
            out.add(tree.getObjectId());
        }
        for (MessageOuterClass.ObjectTree c : tree.getChildrenList()) {
            collect(c, out);
        }
    }

    static MockResponse ok(MessageLite message) {
        return new MockResponse().setHeader("content-type", "application/protobuf")
                .setBody(new Buffer().write(message.toByteArray()));
    }

    static MockResponse error(int status, String json) {
        return new MockResponse().setResponseCode(status).setHeader("content-type", "application/json").setBody(json);
    }
}
