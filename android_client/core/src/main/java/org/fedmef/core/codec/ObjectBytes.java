package org.fedmef.core.codec;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;

/**
 * The byte layout of one Flower object: {@code "<Type> <child ids, comma-joined> <body length>"}
 * in UTF-8, a zero byte, then the body. An object's id is the lowercase hex SHA-256 of all of it
 * (flwr 1.41 {@code supercore/inflatable/inflatable_object.py}).
 */
final class ObjectBytes {
    private static final char[] HEX = "0123456789abcdef".toCharArray();

    /** The parsed head and the body of an object. */
    static final class Parts {
        final String type;
        final List<String> children;
        final byte[] body;

        Parts(String type, List<String> children, byte[] body) {
            this.type = type;
            this.children = Collections.unmodifiableList(children);
            this.body = body;
        }
    }

    private ObjectBytes() {
    }

    /** Head + zero byte + body. */
    static byte[] build(String type, List<String> childIds, byte[] body) {
        StringBuilder head = new StringBuilder(type).append(' ');
        for (int i = 0; i < childIds.size(); i++) {
            head.append(i == 0 ? "" : ",").append(childIds.get(i));
        }
        head.append(' ').append(body.length);
        byte[] headBytes = head.toString().getBytes(StandardCharsets.UTF_8);
        ByteArrayOutputStream out = new ByteArrayOutputStream(headBytes.length + 1 + body.length);
        out.write(headBytes, 0, headBytes.length);
        out.write(0);
        out.write(body, 0, body.length);
        return out.toByteArray();
    }

    /** Splits an object into head values and body, checking the head's shape and the body length. */
    static Parts parse(byte[] content) throws CodecException {
        int zero = -1;
        for (int i = 0; i < content.length; i++) {
            if (content[i] == 0) {
                zero = i;
                break;
            }
        }
        if (zero < 0) {
            throw new CodecException("object has no head/body separator");
        }
        String head = new String(content, 0, zero, StandardCharsets.UTF_8);
        String[] values = head.split(" ", -1);
        if (values.length != 3 || values[0].isEmpty()) {
            throw new CodecException("bad object head: '" + head + "'");
        }
        List<String> children = new ArrayList<>();
        if (!values[1].isEmpty()) {
            for (String id : values[1].split(",", -1)) {
                if (!isObjectId(id)) {
                    throw new CodecException("bad child id in object head: '" + id + "'");
                }
                children.add(id);
            }
        }
        long length;
        try {
            length = Long.parseLong(values[2]);
        } catch (NumberFormatException e) {
            throw new CodecException("bad body length in object head: '" + head + "'", e);
        }
        byte[] body = Arrays.copyOfRange(content, zero + 1, content.length);
        if (length != body.length) {
            throw new CodecException(values[0] + " object: head says " + length + " body bytes, has " + body.length);
        }
        return new Parts(values[0], children, body);
    }

    /** Lowercase hex SHA-256. */
    static String sha256Hex(byte[] bytes) {
        try {
            byte[] digest = MessageDigest.getInstance("SHA-256").digest(bytes);
            char[] out = new char[digest.length * 2];
            for (int i = 0; i < digest.length; i++) {
                out[2 * i] = HEX[(digest[i] >> 4) & 0xF];
                out[2 * i + 1] = HEX[digest[i] & 0xF];
            }
            return new String(out);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 unavailable", e);
        }
    }

    /** Whether {@code id} looks like an object id (64 lowercase hex digits). */
    static boolean isObjectId(String id) {
        if (id == null || id.length() != 64) {
            return false;
        }
        for (int i = 0; i < id.length(); i++) {
            char c = id.charAt(i);
            if (!(c >= '0' && c <= '9' || c >= 'a' && c <= 'f')) {
                return false;
            }
        }
        return true;
    }
}
