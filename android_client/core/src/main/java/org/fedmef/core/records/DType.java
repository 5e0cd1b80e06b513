package org.fedmef.core.records;

import java.util.Locale;

/**
 * The numpy element types FedMef puts on the wire, with their {@code .npy} descriptor and size.
 *
 * <p>Names are numpy's dtype names ({@code "float32"}), which is also what Flower writes into an
 * {@code Array} object's {@code dtype} field; descriptors are what {@code np.save} writes into a
 * {@code .npy} header ({@code "<f4"}). Only little-endian layouts are supported.
 */
public enum DType {
    FLOAT32("float32", "<f4", 4),
    FLOAT64("float64", "<f8", 8),
    INT32("int32", "<i4", 4),
    INT64("int64", "<i8", 8),
    INT8("int8", "|i1", 1),
    UINT8("uint8", "|u1", 1),
    BOOL("bool", "|b1", 1);

    private final String numpyName;
    private final String descr;
    private final int itemSize;

    DType(String numpyName, String descr, int itemSize) {
        this.numpyName = numpyName;
        this.descr = descr;
        this.itemSize = itemSize;
    }

    /** numpy's name, e.g. {@code "float32"}. */
    public String numpyName() {
        return numpyName;
    }

    /** The {@code .npy} descriptor numpy writes, e.g. {@code "<f4"}. */
    public String descr() {
        return descr;
    }

    /** Bytes per element. */
    public int itemSize() {
        return itemSize;
    }

    /** Looks a dtype up by numpy name ({@code "float32"}); throws for anything else. */
    public static DType ofName(String name) {
        for (DType t : values()) {
            if (t.numpyName.equals(name)) {
                return t;
            }
        }
        throw new IllegalArgumentException("unsupported dtype: " + name);
    }

    /**
     * Looks a dtype up by {@code .npy} descriptor. One-byte types accept any byte-order mark
     * ({@code |}, {@code <}, {@code =}); wider types must be little-endian ({@code <}, or
     * {@code =} which numpy never writes but means native order, little-endian on our targets).
     */
    public static DType ofDescr(String descr) {
        if (descr == null || descr.length() < 2) {
            throw new IllegalArgumentException("bad .npy descr: " + descr);
        }
        char order = descr.charAt(0);
        String code = descr.substring(1).toLowerCase(Locale.ROOT);
        for (DType t : values()) {
            if (!t.descr.substring(1).equals(code)) {
                continue;
            }
            boolean ok = t.itemSize == 1 ? order == '|' || order == '<' || order == '=' : order == '<' || order == '=';
            if (ok) {
                return t;
            }
            throw new IllegalArgumentException("unsupported byte order in .npy descr: " + descr);
        }
        throw new IllegalArgumentException("unsupported .npy descr: " + descr);
    }
}
