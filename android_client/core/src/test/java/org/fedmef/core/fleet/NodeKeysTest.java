package org.fedmef.core.fleet;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonObject;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.FileSystems;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import org.fedmef.core.FleetVectors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class NodeKeysTest {
    @TempDir
    Path dir;

    @Test
    void wrapsAnExistingPairAndRefusesOtherAlgorithms() throws Exception {
        NodeKeys generated = NodeKeys.generate();
        NodeKeys wrapped = NodeKeys.of(generated.keyPair());
        assertEquals(generated.openSshPublicKey(), wrapped.openSshPublicKey());
        java.security.KeyPairGenerator rsa = java.security.KeyPairGenerator.getInstance("RSA");
        rsa.initialize(1024);
        org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                () -> NodeKeys.of(rsa.generateKeyPair()));
    }

    @Test
    void encodesKeysExactlyLikePythonCryptography() throws Exception {
        JsonObject v = FleetVectors.json().getAsJsonObject("signature");
        NodeKeys keys = NodeKeys.fromPem(v.get("private_key_pem").getAsString());
        assertEquals(v.get("private_key_pem").getAsString(), keys.privateKeyPem());
        assertEquals(v.get("public_key_pem").getAsString(), new String(keys.publicKeyPem(), StandardCharsets.US_ASCII));
        assertEquals(v.get("openssh").getAsString(), keys.openSshPublicKey());
    }

    @Test
    void savesWithOwnerOnlyPermissionsAndLoadsTheSameKey() throws IOException {
        Path file = dir.resolve("keys/node-key.pem");
        NodeKeys created = NodeKeys.loadOrCreate(file);
        NodeKeys loaded = NodeKeys.loadOrCreate(file);
        assertEquals(created.privateScalar(), loaded.privateScalar());
        assertArrayEquals(created.publicKeyPem(), loaded.publicKeyPem());
        if (FileSystems.getDefault().supportedFileAttributeViews().contains("posix")) {
            assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(file)));
        }
        assertThrows(FileAlreadyExistsException.class, () -> created.save(file));
    }

    @Test
    void publicKeyPemIsSixtyFourColumnSpki() {
        String pem = new String(NodeKeys.generate().publicKeyPem(), StandardCharsets.US_ASCII);
        String[] lines = pem.split("\n");
        assertEquals("-----BEGIN PUBLIC KEY-----", lines[0]);
        assertEquals(64, lines[1].length());
        assertEquals("-----END PUBLIC KEY-----", lines[lines.length - 1]);
        assertTrue(pem.endsWith("\n"));
    }

    @Test
    void rejectsKeysItCannotUse() throws IOException {
        assertThrows(IllegalArgumentException.class, () -> NodeKeys.fromPem("no pem here"));
        assertThrows(IllegalArgumentException.class,
                () -> NodeKeys.fromPem("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"));
        Path bad = dir.resolve("bad.pem");
        Files.write(bad, "-----BEGIN PRIVATE KEY-----\nMAA=\n-----END PRIVATE KEY-----\n".getBytes(StandardCharsets.US_ASCII));
        assertThrows(IOException.class, () -> NodeKeys.load(bad));
    }
}
