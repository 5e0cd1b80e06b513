package org.fedmef.core.fleet;

import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.Signature;
import java.time.Clock;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Authenticates Fleet requests the way flwr 1.41's SuperLink checks them
 * ({@code superlink/routers/fleet/node_auth.py}): every request carries the node's public key
 * (base64 of its PEM bytes), an ISO-8601 UTC timestamp, and an ECDSA-SHA256 (DER) signature of the
 * timestamp's ASCII bytes. The SuperLink accepts timestamps from 5 s ahead to 305 s behind its
 * clock, so the device clock matters; the clock is passed in so tests can fix it.
 */
public final class RequestSigner {
    public static final String PUBLIC_KEY_HEADER = "flwr-public-key";
    public static final String TIMESTAMP_HEADER = "flwr-timestamp";
    public static final String SIGNATURE_HEADER = "flwr-signature";
    /** Python's {@code datetime.now(timezone.utc).isoformat()} shape. */
    private static final DateTimeFormatter ISO =
            DateTimeFormatter.ofPattern("uuuu-MM-dd'T'HH:mm:ss.SSSSSS'+00:00'").withZone(ZoneOffset.UTC);

    private final NodeKeys keys;
    private final Clock clock;
    private final String publicKeyHeader;

    public RequestSigner(NodeKeys keys, Clock clock) {
        this.keys = keys;
        this.clock = clock;
        this.publicKeyHeader = Base64.getEncoder().encodeToString(keys.publicKeyPem());
    }

    /** The three auth headers for a request sent now. */
    public Map<String, String> headers() {
        String timestamp = ISO.format(clock.instant());
        Map<String, String> headers = new LinkedHashMap<>();
        headers.put(PUBLIC_KEY_HEADER, publicKeyHeader);
        headers.put(TIMESTAMP_HEADER, timestamp);
        headers.put(SIGNATURE_HEADER, Base64.getEncoder().encodeToString(sign(timestamp)));
        return headers;
    }

    private byte[] sign(String timestamp) {
        try {
            Signature s = Signature.getInstance("SHA256withECDSA");
            s.initSign(keys.keyPair().getPrivate());
            s.update(timestamp.getBytes(StandardCharsets.US_ASCII));
            return s.sign();
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("cannot sign with the node key", e);
        }
    }
}
