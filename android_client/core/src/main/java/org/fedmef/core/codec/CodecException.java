package org.fedmef.core.codec;

/** Malformed Flower object content: wrong id, bad header, unknown type, broken JSON/proto/.npy. */
public final class CodecException extends Exception {
    private static final long serialVersionUID = 1L;

    public CodecException(String message) {
        super(message);
    }

    public CodecException(String message, Throwable cause) {
        super(message, cause);
    }
}
