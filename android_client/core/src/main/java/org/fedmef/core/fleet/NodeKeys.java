package org.fedmef.core.fleet;

import java.io.ByteArrayOutputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.GeneralSecurityException;
import java.security.KeyFactory;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.interfaces.ECPrivateKey;
import java.security.interfaces.ECPublicKey;
import java.security.spec.ECGenParameterSpec;
import java.security.spec.PKCS8EncodedKeySpec;
import java.security.spec.X509EncodedKeySpec;
import java.util.Base64;

/**
 * The node's identity: an EC P-256 key pair, as Flower's SuperLink authenticates nodes.
 *
 * <p>Persisted as an unencrypted PKCS#8 PEM file (readable by the owner only where the file
 * system has POSIX permissions). The SuperLink knows the node by its public key as PEM
 * SubjectPublicKeyInfo bytes (64-column base64, as Python's {@code cryptography} writes it);
 * an administrator registers it with {@code flwr supernode register} from its OpenSSH line.
 */
public final class NodeKeys {
    private static final String SSH_KEY_TYPE = "ecdsa-sha2-nistp256";
    private final KeyPair pair;

    private NodeKeys(KeyPair pair) {
        this.pair = pair;
    }

    /**
     * An existing EC P-256 pair, e.g. one held by the Android Keystore: its private key may be
     * non-exportable, since signing only calls {@code SHA256withECDSA} with it.
     */
    public static NodeKeys of(KeyPair pair) {
        if (pair == null || !"EC".equals(pair.getPublic().getAlgorithm())) {
            throw new IllegalArgumentException("a node key must be an EC (P-256) key pair");
        }
        return new NodeKeys(pair);
    }

    /** A fresh random key pair. */
    public static NodeKeys generate() {
        try {
            KeyPairGenerator g = KeyPairGenerator.getInstance("EC");
            g.initialize(new ECGenParameterSpec("secp256r1"));
            return new NodeKeys(g.generateKeyPair());
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("EC P-256 unavailable", e);
        }
    }

    /** Parses a PKCS#8 PEM private key (P-256, with its public key, as OpenSSL/cryptography write). */
    public static NodeKeys fromPem(String pem) {
        byte[] der = Pem.decode(pem, "PRIVATE KEY");
        EcKeyDer.KeyParts parts = EcKeyDer.readPkcs8(der);
        try {
            KeyFactory f = KeyFactory.getInstance("EC");
            ECPrivateKey priv = (ECPrivateKey) f.generatePrivate(new PKCS8EncodedKeySpec(EcKeyDer.pkcs8(parts.s, parts.w)));
            ECPublicKey pub = (ECPublicKey) f.generatePublic(new X509EncodedKeySpec(EcKeyDer.subjectPublicKeyInfo(parts.w)));
            return new NodeKeys(new KeyPair(pub, priv));
        } catch (GeneralSecurityException e) {
            throw new IllegalArgumentException("unusable EC key: " + e.getMessage(), e);
        }
    }

    /** Loads the key file, or creates it (owner-only permissions) with a new key when absent. */
    public static NodeKeys loadOrCreate(Path file) throws IOException {
        if (Files.exists(file)) {
            return load(file);
        }
        NodeKeys keys = generate();
        keys.save(file);
        return keys;
    }

    /** Reads a PKCS#8 PEM key file. */
    public static NodeKeys load(Path file) throws IOException {
        try {
            return fromPem(new String(Files.readAllBytes(file), StandardCharsets.US_ASCII));
        } catch (IllegalArgumentException e) {
            throw new IOException(file + ": " + e.getMessage(), e);
        }
    }

    /** Writes the private key as PKCS#8 PEM to a new file, owner read/write only where supported. */
    public void save(Path file) throws IOException {
        if (Files.exists(file)) {
            throw new FileAlreadyExistsException(file.toString());
        }
        if (file.getParent() != null) {
            Files.createDirectories(file.getParent());
        }
        try {
            Files.createFile(file, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
        } catch (UnsupportedOperationException e) { // no POSIX permissions (e.g. Windows)
            Files.createFile(file);
        }
        try (OutputStream out = Files.newOutputStream(file, StandardOpenOption.TRUNCATE_EXISTING)) {
            out.write(privateKeyPem().getBytes(StandardCharsets.US_ASCII));
        }
    }

    /** PKCS#8 PEM of the private key (includes the public key, like OpenSSL's). */
    public String privateKeyPem() {
        ECPrivateKey priv = (ECPrivateKey) pair.getPrivate();
        return Pem.encode("PRIVATE KEY", EcKeyDer.pkcs8(priv.getS(), publicKey().getW()));
    }

    /** PEM SubjectPublicKeyInfo, the exact bytes the SuperLink stores and compares. */
    public byte[] publicKeyPem() {
        return Pem.encode("PUBLIC KEY", EcKeyDer.subjectPublicKeyInfo(publicKey().getW()))
                .getBytes(StandardCharsets.US_ASCII);
    }

    /** {@code ecdsa-sha2-nistp256 AAAA...}: the line {@code flwr supernode register} takes. */
    public String openSshPublicKey() {
        ByteArrayOutputStream blob = new ByteArrayOutputStream();
        try (DataOutputStream out = new DataOutputStream(blob)) {
            sshString(out, SSH_KEY_TYPE.getBytes(StandardCharsets.US_ASCII));
            sshString(out, "nistp256".getBytes(StandardCharsets.US_ASCII));
            sshString(out, EcKeyDer.uncompressed(publicKey().getW()));
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
        return SSH_KEY_TYPE + " " + Base64.getEncoder().encodeToString(blob.toByteArray());
    }

    /** The key pair. */
    public KeyPair keyPair() {
        return pair;
    }

    /** The public key. */
    public ECPublicKey publicKey() {
        return (ECPublicKey) pair.getPublic();
    }

    /** The private scalar, for tests comparing keys. */
    BigInteger privateScalar() {
        return ((ECPrivateKey) pair.getPrivate()).getS();
    }

    private static void sshString(DataOutputStream out, byte[] value) throws IOException {
        out.writeInt(value.length);
        out.write(value);
    }
}
