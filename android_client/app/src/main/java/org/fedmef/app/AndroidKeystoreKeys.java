package org.fedmef.app;

import android.security.keystore.KeyGenParameterSpec;
import android.security.keystore.KeyProperties;
import java.io.IOException;
import java.security.GeneralSecurityException;
import java.security.KeyFactory;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.KeyStore;
import java.security.PrivateKey;
import java.security.PublicKey;
import java.security.cert.Certificate;
import java.security.spec.ECGenParameterSpec;
import java.security.spec.X509EncodedKeySpec;
import org.fedmef.core.fleet.NodeKeys;

/**
 * The node's identity: an EC P-256 key pair generated inside the Android Keystore (alias
 * {@value #ALIAS}), usable only for signing with SHA-256; the private key never leaves the
 * Keystore (hardware-backed where the phone has it). Core's request signer only calls
 * {@code Signature.getInstance("SHA256withECDSA").initSign(privateKey)}, which the Keystore
 * provider serves. {@link NodeKeys#openSshPublicKey()} gives the line an administrator registers
 * with {@code flwr supernode register}.
 */
public final class AndroidKeystoreKeys {
    public static final String ALIAS = "fedmef-node";
    private static final String PROVIDER = "AndroidKeyStore";

    private AndroidKeystoreKeys() {
    }

    /** The node keys, creating the Keystore entry on first use. */
    public static NodeKeys nodeKeys() throws GeneralSecurityException, IOException {
        return NodeKeys.of(loadOrCreate());
    }

    /** The Keystore pair; the public half converted to a plain {@code ECPublicKey} (what core encodes). */
    public static KeyPair loadOrCreate() throws GeneralSecurityException, IOException {
        KeyStore store = KeyStore.getInstance(PROVIDER);
        store.load(null);
        if (!store.containsAlias(ALIAS)) {
            KeyPairGenerator generator = KeyPairGenerator.getInstance(KeyProperties.KEY_ALGORITHM_EC, PROVIDER);
            generator.initialize(new KeyGenParameterSpec.Builder(ALIAS, KeyProperties.PURPOSE_SIGN)
                    .setAlgorithmParameterSpec(new ECGenParameterSpec("secp256r1"))
                    .setDigests(KeyProperties.DIGEST_SHA256)
                    .build());
            generator.generateKeyPair();
        }
        PrivateKey privateKey = (PrivateKey) store.getKey(ALIAS, null);
        Certificate certificate = store.getCertificate(ALIAS);
        if (privateKey == null || certificate == null) {
            throw new GeneralSecurityException("Keystore entry '" + ALIAS + "' is incomplete");
        }
        PublicKey publicKey = KeyFactory.getInstance(KeyProperties.KEY_ALGORITHM_EC)
                .generatePublic(new X509EncodedKeySpec(certificate.getPublicKey().getEncoded()));
        return new KeyPair(publicKey, privateKey);
    }

    /**
     * Deletes the key: the next start creates a new identity (needed after the key was
     * unregistered from a SuperLink, which flwr 1.41 never lets register again).
     */
    public static void delete() throws GeneralSecurityException, IOException {
        KeyStore store = KeyStore.getInstance(PROVIDER);
        store.load(null);
        store.deleteEntry(ALIAS);
    }
}
