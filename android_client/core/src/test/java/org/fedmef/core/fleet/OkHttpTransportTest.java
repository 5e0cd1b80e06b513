package org.fedmef.core.fleet;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.io.IOException;
import java.net.InetAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Collections;
import javax.net.ssl.SSLException;
import okhttp3.mockwebserver.MockResponse;
import okhttp3.mockwebserver.MockWebServer;
import okhttp3.mockwebserver.RecordedRequest;
import okhttp3.tls.HandshakeCertificates;
import okhttp3.tls.HeldCertificate;
import okio.Buffer;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** https trusting exactly the SuperLink's CA; HTTP/1.1; flwr's JSON errors mapped. */
class OkHttpTransportTest {
    @TempDir
    Path dir;
    private MockWebServer server;
    private HeldCertificate ca;

    @BeforeEach
    void start() throws IOException {
        ca = new HeldCertificate.Builder().certificateAuthority(0).commonName("FedMef test CA").build();
        HeldCertificate serverCert = new HeldCertificate.Builder().commonName("localhost")
                .addSubjectAlternativeName("localhost").signedBy(ca).build();
        server = new MockWebServer();
        server.useHttps(new HandshakeCertificates.Builder().heldCertificate(serverCert, ca.certificate()).build()
                .sslSocketFactory(), false);
        server.start(InetAddress.getByName("localhost"), 0);
    }

    @AfterEach
    void stop() throws IOException {
        server.shutdown();
    }

    private Path pem(HeldCertificate cert) throws IOException {
        Path file = dir.resolve(cert.certificate().getSubjectX500Principal().getName().hashCode() + ".pem");
        Files.write(file, cert.certificatePem().getBytes(StandardCharsets.US_ASCII));
        return file;
    }

    @Test
    void trustsTheGivenCa() throws Exception {
        server.enqueue(new MockResponse().setBody(new Buffer().write(new byte[] {1, 2, 3})));
        FleetTransport https = OkHttpTransport.tls("localhost:" + server.getPort(), pem(ca));
        assertArrayEquals(new byte[] {1, 2, 3}, https.post("/v1/fleet/x", new byte[] {9},
                Collections.singletonMap("flwr-timestamp", "t")));
        RecordedRequest r = server.takeRequest();
        assertEquals("HTTP/1.1", r.getRequestLine().substring(r.getRequestLine().lastIndexOf(' ') + 1));
        assertEquals("application/protobuf", r.getHeader("content-type"));
        assertEquals("t", r.getHeader("flwr-timestamp"));
        assertArrayEquals(new byte[] {9}, r.getBody().readByteArray());
    }

    @Test
    void refusesAServerSignedByAnotherCa() throws Exception {
        HeldCertificate other = new HeldCertificate.Builder().certificateAuthority(0).commonName("other CA").build();
        FleetTransport https = OkHttpTransport.tls("localhost:" + server.getPort(), pem(other));
        assertThrows(SSLException.class, () -> https.post("/v1/fleet/x", new byte[0], Collections.<String, String>emptyMap()));
    }

    @Test
    void mapsFlwrErrors() {
        FleetException e = OkHttpTransport.error("/p", 412,
                "{\"code\": 23, \"detail\": \"Public key already in use\"}".getBytes(StandardCharsets.UTF_8));
        assertEquals(412, e.status());
        assertEquals(23, e.code());
        assertEquals("Public key already in use", e.detail());
        FleetException html = OkHttpTransport.error("/p", 502, "<html>bad gateway</html>".getBytes(StandardCharsets.UTF_8));
        assertEquals(-1, html.code());
        assertEquals("<html>bad gateway</html>", html.detail());
        FleetException odd = OkHttpTransport.error("/p", 422, "{\"detail\": [{\"loc\": 1}]}".getBytes(StandardCharsets.UTF_8));
        assertEquals("[{\"loc\":1}]", odd.detail());
    }

    @Test
    void refusesAFileWithoutCertificates() throws IOException {
        Path empty = dir.resolve("empty.pem");
        Files.write(empty, new byte[0]);
        assertThrows(IOException.class, () -> OkHttpTransport.tls("localhost:1", empty));
    }
}
