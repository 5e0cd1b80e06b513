package org.fedmef.core.fleet;

import java.io.IOException;
import java.util.Map;

/**
 * Moves one Fleet API call: POST serialized protobuf to a path, get the serialized response.
 * Implementations: {@link OkHttpTransport}; tests pass their own.
 */
public interface FleetTransport {
    /**
     * @param path    e.g. {@code /v1/fleet/pull-messages}
     * @param body    the serialized request
     * @param headers extra headers (the request signature)
     * @return the serialized response of a 2xx answer
     * @throws FleetException on an HTTP error status
     * @throws IOException    when the server could not be reached or the connection broke
     */
    byte[] post(String path, byte[] body, Map<String, String> headers) throws IOException;
}
