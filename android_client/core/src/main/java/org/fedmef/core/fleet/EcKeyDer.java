package org.fedmef.core.fleet;

import java.io.ByteArrayOutputStream;
import java.math.BigInteger;
import java.security.spec.ECPoint;
import java.util.Arrays;

/**
 * DER layouts of a P-256 key, written the way OpenSSL and Python's {@code cryptography} write
 * them: SubjectPublicKeyInfo, and PKCS#8 with the public key inside the ECPrivateKey (Java's own
 * PKCS#8 encoding leaves it out, and Java cannot derive it from the private scalar).
 */
final class EcKeyDer {
    /** SEQUENCE { SEQUENCE { id-ecPublicKey, prime256v1 }, BIT STRING (65 bytes follow) }. */
    private static final byte[] SPKI_PREFIX = hex("3059301306072a8648ce3d020106082a8648ce3d030107034200");
    private static final byte[] EC_PUBLIC_KEY_OID = hex("2a8648ce3d0201");
    private static final byte[] P256_OID = hex("2a8648ce3d030107");

    /** A decoded PKCS#8 EC key: private scalar and uncompressed public point. */
    static final class KeyParts {
        final BigInteger s;
        final ECPoint w;

        KeyParts(BigInteger s, ECPoint w) {
            this.s = s;
            this.w = w;
        }
    }

    private EcKeyDer() {
    }

    static byte[] subjectPublicKeyInfo(ECPoint w) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        out.write(SPKI_PREFIX, 0, SPKI_PREFIX.length);
        byte[] point = uncompressed(w);
        out.write(point, 0, point.length);
        return out.toByteArray();
    }

    /** PKCS#8 { version 0, {ecPublicKey, prime256v1}, OCTET STRING ECPrivateKey {1, d, [1] pub} }. */
    static byte[] pkcs8(BigInteger s, ECPoint w) {
        byte[] publicBits = concat(new byte[] {0}, uncompressed(w));
        byte[] ecPrivateKey = tlv(0x30, concat(tlv(0x02, new byte[] {1}), tlv(0x04, fixed(s)),
                tlv(0xa1, tlv(0x03, publicBits))));
        byte[] algorithm = tlv(0x30, concat(tlv(0x06, EC_PUBLIC_KEY_OID), tlv(0x06, P256_OID)));
        return tlv(0x30, concat(tlv(0x02, new byte[] {0}), algorithm, tlv(0x04, ecPrivateKey)));
    }

    /** Reads a PKCS#8 P-256 key that carries its public key. */
    static KeyParts readPkcs8(byte[] der) {
        Reader top = new Reader(der).enter(0x30);
        top.expect(0x02);
        Reader algorithm = top.enter(0x30);
        if (!Arrays.equals(algorithm.expect(0x06), EC_PUBLIC_KEY_OID)) {
            throw new IllegalArgumentException("not an EC private key");
        }
        if (!Arrays.equals(algorithm.expect(0x06), P256_OID)) {
            throw new IllegalArgumentException("EC key is not on curve P-256");
        }
        Reader key = new Reader(top.expect(0x04)).enter(0x30);
        key.expect(0x02);
        BigInteger s = new BigInteger(1, key.expect(0x04));
        byte[] publicBits = null;
        while (key.hasMore()) {
            int tag = key.peekTag();
            byte[] value = key.expect(tag);
            if (tag == 0xa1) {
                publicBits = new Reader(value).expect(0x03);
            }
        }
        if (publicBits == null || publicBits.length != 66 || publicBits[0] != 0 || publicBits[1] != 4) {
            throw new IllegalArgumentException("PKCS#8 key has no uncompressed P-256 public key");
        }
        return new KeyParts(s, new ECPoint(new BigInteger(1, Arrays.copyOfRange(publicBits, 2, 34)),
                new BigInteger(1, Arrays.copyOfRange(publicBits, 34, 66))));
    }

    /** 0x04 || X || Y, 32 bytes each. */
    static byte[] uncompressed(ECPoint w) {
        return concat(new byte[] {4}, fixed(w.getAffineX()), fixed(w.getAffineY()));
    }

    private static byte[] fixed(BigInteger v) {
        byte[] raw = v.toByteArray();
        byte[] out = new byte[32];
        int n = Math.min(raw.length, 32);
        System.arraycopy(raw, raw.length - n, out, 32 - n, n);
        return out;
    }

    private static byte[] tlv(int tag, byte[] value) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        out.write(tag);
        if (value.length < 0x80) {
            out.write(value.length);
        } else if (value.length < 0x100) {
            out.write(0x81);
            out.write(value.length);
        } else {
            out.write(0x82);
            out.write(value.length >> 8);
            out.write(value.length & 0xff);
        }
        out.write(value, 0, value.length);
        return out.toByteArray();
    }

    private static byte[] concat(byte[]... parts) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        for (byte[] p : parts) {
            out.write(p, 0, p.length);
        }
        return out.toByteArray();
    }

    private static byte[] hex(String s) {
        byte[] out = new byte[s.length() / 2];
        for (int i = 0; i < out.length; i++) {
            out[i] = (byte) Integer.parseInt(s.substring(2 * i, 2 * i + 2), 16);
        }
        return out;
    }

    /** Walks DER TLVs; every malformation is an IllegalArgumentException. */
    private static final class Reader {
        private final byte[] der;
        private int pos;

        Reader(byte[] der) {
            this.der = der;
        }

        boolean hasMore() {
            return pos < der.length;
        }

        int peekTag() {
            need(1);
            return der[pos] & 0xff;
        }

        Reader enter(int tag) {
            return new Reader(expect(tag));
        }

        byte[] expect(int tag) {
            if (peekTag() != tag) {
                throw new IllegalArgumentException("bad key DER: expected tag " + tag + ", got " + peekTag());
            }
            pos++;
            need(1);
            int length = der[pos++] & 0xff;
            if (length >= 0x80) {
                int bytes = length & 0x7f;
                if (bytes < 1 || bytes > 2) {
                    throw new IllegalArgumentException("bad key DER length");
                }
                need(bytes);
                length = 0;
                for (int i = 0; i < bytes; i++) {
                    length = length << 8 | der[pos++] & 0xff;
                }
            }
            need(length);
            byte[] value = Arrays.copyOfRange(der, pos, pos + length);
            pos += length;
            return value;
        }

        private void need(int n) {
            if (pos + n > der.length) {
                throw new IllegalArgumentException("truncated key DER");
            }
        }
    }
}
