package org.fedmef.core.fleet;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonObject;
import java.nio.charset.StandardCharsets;
import java.security.Signature;
import java.time.Clock;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.Base64;
import java.util.Map;
import org.fedmef.core.FleetVectors;
import org.junit.jupiter.api.Test;

/** Against a signature made by Python's cryptography over a fixed timestamp (tests/vectors/fleet.py). */
class RequestSignerTest {
    @Test
    void headersMatchWhatFlwrChecks() throws Exception {
        JsonObject v = FleetVectors.json().getAsJsonObject("signature");
        NodeKeys keys = NodeKeys.fromPem(v.get("private_key_pem").getAsString());
        String timestamp = v.get("timestamp").getAsString();
        Clock clock = Clock.fixed(Instant.parse(timestamp.replace("+00:00", "Z")), ZoneOffset.UTC);

        Map<String, String> headers = new RequestSigner(keys, clock).headers();
        assertEquals(v.get("public_key_header").getAsString(), headers.get(RequestSigner.PUBLIC_KEY_HEADER));
        assertEquals(timestamp, headers.get(RequestSigner.TIMESTAMP_HEADER));
        assertTrue(verify(keys, timestamp, headers.get(RequestSigner.SIGNATURE_HEADER)));
        assertTrue(verify(keys, timestamp, v.get("signature").getAsString()), "Python's signature verifies in Java");
        assertFalse(verify(keys, timestamp + " ", headers.get(RequestSigner.SIGNATURE_HEADER)));
    }

    @Test
    void timestampIsUtcIsoWithMicroseconds() {
        Clock clock = Clock.fixed(Instant.parse("2026-03-04T05:06:07Z"), ZoneOffset.ofHours(5));
        assertEquals("2026-03-04T05:06:07.000000+00:00",
                new RequestSigner(NodeKeys.generate(), clock).headers().get(RequestSigner.TIMESTAMP_HEADER));
    }

    private static boolean verify(NodeKeys keys, String timestamp, String signature) throws Exception {
        Signature s = Signature.getInstance("SHA256withECDSA");
        s.initVerify(keys.publicKey());
        s.update(timestamp.getBytes(StandardCharsets.US_ASCII));
        return s.verify(Base64.getDecoder().decode(signature));
    }
}
