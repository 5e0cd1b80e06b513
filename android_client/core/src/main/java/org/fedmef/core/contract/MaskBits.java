package org.fedmef.core.contract;

/**
 * Bit-packed masks as {@code numpy.packbits} writes them (bit order "big", protocol §2): flat
 * element {@code i} is bit {@code 7 - (i mod 8)} of byte {@code i / 8}; the last byte is padded
 * with zero bits (padding bits are ignored when reading, as {@code numpy.unpackbits(count=)} does).
 */
public final class MaskBits {
    private MaskBits() {
    }

    /** The packed bytes of a 0/1 mask. */
    public static byte[] pack(boolean[] mask) {
        byte[] bits = new byte[byteCount(mask.length)];
        for (int i = 0; i < mask.length; i++) {
            if (mask[i]) {
                bits[i >>> 3] |= (byte) (0x80 >>> (i & 7));
            }
        }
        return bits;
    }

    /** The first {@code numel} mask elements of packed bytes. */
    public static boolean[] unpack(byte[] bits, int numel) {
        checkLength(bits, numel);
        boolean[] mask = new boolean[numel];
        for (int i = 0; i < numel; i++) {
            mask[i] = isSet(bits, i);
        }
        return mask;
    }

    /** The ascending flat indices of the set bits among the first {@code numel} elements. */
    public static int[] positions(byte[] bits, int numel) {
        checkLength(bits, numel);
        int count = 0;
        for (int i = 0; i < numel; i++) {
            if (isSet(bits, i)) {
                count++;
            }
        }
        int[] out = new int[count];
        int k = 0;
        for (int i = 0; i < numel; i++) {
            if (isSet(bits, i)) {
                out[k++] = i;
            }
        }
        return out;
    }

    /** {@code ceil(numel / 8)}: the packed length of a mask of {@code numel} elements. */
    public static int byteCount(int numel) {
        return (numel + 7) / 8;
    }

    private static boolean isSet(byte[] bits, int i) {
        return (bits[i >>> 3] & (0x80 >>> (i & 7))) != 0;
    }

    private static void checkLength(byte[] bits, int numel) {
        if (numel < 0 || bits.length != byteCount(numel)) {
            throw new ContractException("packed mask of " + bits.length + " bytes for " + numel
                    + " elements, expected " + byteCount(Math.max(numel, 0)) + " bytes");
        }
    }
}
