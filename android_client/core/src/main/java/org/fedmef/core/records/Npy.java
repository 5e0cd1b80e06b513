package org.fedmef.core.records;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Reads and writes numpy's {@code .npy} format (C order, little-endian).
 *
 * <p>Writing reproduces {@code np.save} byte for byte (format 1.0, keys sorted, numpy's spare
 * spaces after the dict so the first axis can grow to 21 digits, then spaces and a newline so
 * that magic + length + header is a multiple of 64). Byte identity matters: Flower's object ids
 * are SHA-256 hashes of these bytes. Reading accepts format 1.0, 2.0 and 3.0.
 */
public final class Npy {
    private static final byte[] MAGIC = {(byte) 0x93, 'N', 'U', 'M', 'P', 'Y'};
    private static final int ALIGN = 64;
    private static final int GROWTH_AXIS_MAX_DIGITS = 21;
    private static final Pattern DESCR = Pattern.compile("'descr'\\s*:\\s*'([^']*)'");
    private static final Pattern FORTRAN = Pattern.compile("'fortran_order'\\s*:\\s*(True|False)");
    private static final Pattern SHAPE = Pattern.compile("'shape'\\s*:\\s*\\(([^)]*)\\)");

    private Npy() {
    }

    /** The {@code .npy} file bytes of an array, identical to what {@code np.save} writes. */
    public static byte[] write(NdArray array) {
        byte[] header = header(array).getBytes(StandardCharsets.US_ASCII);
        if (header.length > 0xFFFF) {
            throw new IllegalArgumentException("header too long for .npy format 1.0: " + header.length);
        }
        ByteBuffer out = ByteBuffer.allocate(10 + header.length + array.byteSize()).order(ByteOrder.LITTLE_ENDIAN);
        out.put(MAGIC).put((byte) 1).put((byte) 0).putShort((short) header.length).put(header);
        out.put(array.toBytes());
        return out.array();
    }

    /** Parses {@code .npy} bytes; throws {@link IllegalArgumentException} on anything malformed. */
    public static NdArray read(byte[] bytes) {
        if (bytes.length < 10 || !Arrays.equals(Arrays.copyOf(bytes, 6), MAGIC)) {
            throw new IllegalArgumentException("not an .npy file (bad magic)");
        }
        ByteBuffer in = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
        int major = bytes[6];
        long headerLength;
        int start;
        if (major == 1) {
            headerLength = in.getShort(8) & 0xFFFF;
            start = 10;
        } else if (major == 2 || major == 3) {
            if (bytes.length < 12) {
                throw new IllegalArgumentException("truncated .npy header");
            }
            headerLength = in.getInt(8) & 0xFFFFFFFFL;
            start = 12;
        } else {
            throw new IllegalArgumentException("unsupported .npy format version " + major);
        }
        if (start + headerLength > bytes.length) {
            throw new IllegalArgumentException("truncated .npy header");
        }
        int dataStart = (int) (start + headerLength);
        String header = new String(bytes, start, (int) headerLength,
                major == 3 ? StandardCharsets.UTF_8 : StandardCharsets.ISO_8859_1);
        DType dtype = DType.ofDescr(find(DESCR, header, "descr"));
        if ("True".equals(find(FORTRAN, header, "fortran_order"))) {
            throw new IllegalArgumentException(".npy in Fortran order is not supported");
        }
        long[] shape = parseShape(find(SHAPE, header, "shape"));
        long expected = Math.multiplyExact(NdArray.numel(shape), (long) dtype.itemSize());
        if (bytes.length - dataStart != expected) {
            throw new IllegalArgumentException(".npy data has " + (bytes.length - dataStart) + " bytes, header "
                    + header.trim() + " needs " + expected);
        }
        return NdArray.wrap(dtype, shape, Arrays.copyOfRange(bytes, dataStart, bytes.length));
    }

    /** Reads a {@code .npy} file. */
    public static NdArray read(Path path) throws IOException {
        return read(Files.readAllBytes(path));
    }

    /** Writes a {@code .npy} file. */
    public static void write(NdArray array, Path path) throws IOException {
        Files.write(path, write(array));
    }

    /** numpy's {@code _write_array_header} + {@code _wrap_header} for format 1.0. */
    private static String header(NdArray array) {
        long[] shape = array.shape();
        StringBuilder dict = new StringBuilder()
                .append("{'descr': '").append(array.type().descr()).append("', ")
                .append("'fortran_order': False, ")
                .append("'shape': ").append(shapeRepr(shape)).append(", ")
                .append('}');
        if (shape.length > 0) {
            for (int i = Long.toString(shape[0]).length(); i < GROWTH_AXIS_MAX_DIGITS; i++) {
                dict.append(' ');
            }
        }
        int withNewline = dict.length() + 1;
        int pad = ALIGN - (MAGIC.length + 4 + withNewline) % ALIGN;
        for (int i = 0; i < pad; i++) {
            dict.append(' ');
        }
        return dict.append('\n').toString();
    }

    /** Python's repr of a shape tuple: {@code ()}, {@code (3,)}, {@code (2, 3)}. */
    private static String shapeRepr(long[] shape) {
        if (shape.length == 1) {
            return "(" + shape[0] + ",)";
        }
        StringBuilder s = new StringBuilder("(");
        for (int i = 0; i < shape.length; i++) {
            s.append(i == 0 ? "" : ", ").append(shape[i]);
        }
        return s.append(')').toString();
    }

    private static long[] parseShape(String inner) {
        String[] parts = inner.split(",");
        long[] dims = new long[parts.length];
        int n = 0;
        for (String part : parts) {
            String p = part.trim();
            if (p.isEmpty()) {
                continue;
            }
            if (p.endsWith("L")) {
                p = p.substring(0, p.length() - 1); // Python 2 longs in old files
            }
            try {
                dims[n++] = Long.parseLong(p);
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("bad .npy shape: (" + inner + ")", e);
            }
        }
        return Arrays.copyOf(dims, n);
    }

    private static String find(Pattern pattern, String header, String key) {
        Matcher m = pattern.matcher(header);
        if (!m.find()) {
            throw new IllegalArgumentException(".npy header has no '" + key + "': " + header.trim());
        }
        return m.group(1);
    }
}
