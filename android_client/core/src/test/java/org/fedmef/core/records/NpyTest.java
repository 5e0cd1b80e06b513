package org.fedmef.core.records;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import org.fedmef.core.FleetVectors;
import org.junit.jupiter.api.Test;

class NpyTest {
    @Test
    void writesExactlyWhatNumpySaves() throws Exception {
        Path dir = FleetVectors.dir().resolve("npy");
        int checked = 0;
        for (JsonElement e : FleetVectors.json().getAsJsonArray("npy")) {
            JsonObject v = e.getAsJsonObject();
            String name = v.get("name").getAsString();
            long[] shape = new long[v.getAsJsonArray("shape").size()];
            for (int i = 0; i < shape.length; i++) {
                shape[i] = v.getAsJsonArray("shape").get(i).getAsLong();
            }
            NdArray array = new NdArray(v.get("dtype").getAsString(), shape, FleetVectors.hex(v.get("data").getAsString()));
            byte[] saved = Files.readAllBytes(dir.resolve(name + ".npy"));
            assertArrayEquals(saved, Npy.write(array), name);
            assertEquals(array, Npy.read(saved), name);
            checked++;
        }
        assertEquals(14, checked);
    }

    @Test
    void roundTripsTypedValues() {
        NdArray floats = NdArray.ofFloats(new float[] {1.5f, -2f, 0f, 3.25f, 5f, 6f}, 2, 3);
        assertArrayEquals(new long[] {2, 3}, Npy.read(Npy.write(floats)).shape());
        assertArrayEquals(floats.toFloats(), Npy.read(Npy.write(floats)).toFloats());
        assertArrayEquals(new int[] {1, -1}, Npy.read(Npy.write(NdArray.ofInts(new int[] {1, -1}))).toInts());
        assertArrayEquals(new long[] {Long.MIN_VALUE}, Npy.read(Npy.write(NdArray.ofLongs(new long[] {Long.MIN_VALUE}))).toLongs());
        NdArray scalar = NdArray.ofFloats(new float[] {7f}).reshape();
        assertEquals(0, Npy.read(Npy.write(scalar)).shape().length);
        assertEquals(1, scalar.numel());
    }

    @Test
    void readsFormat2() {
        String header = "{'descr': '<i4', 'fortran_order': False, 'shape': (2,), }";
        ByteBuffer b = ByteBuffer.allocate(12 + header.length() + 1 + 8).order(ByteOrder.LITTLE_ENDIAN);
        b.put(new byte[] {(byte) 0x93, 'N', 'U', 'M', 'P', 'Y', 2, 0}).putInt(header.length() + 1);
        b.put((header + "\n").getBytes(StandardCharsets.US_ASCII)).putInt(4).putInt(-5);
        assertArrayEquals(new int[] {4, -5}, Npy.read(b.array()).toInts());
    }

    @Test
    void rejectsMalformedFiles() {
        byte[] good = Npy.write(NdArray.ofFloats(new float[] {1f, 2f}));
        assertThrows(IllegalArgumentException.class, () -> Npy.read(new byte[3]));
        assertThrows(IllegalArgumentException.class, () -> Npy.read(Arrays.copyOf(good, good.length - 1)));
        assertThrows(IllegalArgumentException.class, () -> Npy.read(Arrays.copyOf(good, 40)));
        byte[] bigEndian = good.clone();
        bigEndian[10 + "{'descr': '".length()] = '>';
        assertThrows(IllegalArgumentException.class, () -> Npy.read(bigEndian));
        byte[] fortran = new String(good, StandardCharsets.ISO_8859_1).replace("False", "True ")
                .getBytes(StandardCharsets.ISO_8859_1);
        assertThrows(IllegalArgumentException.class, () -> Npy.read(fortran));
        byte[] hugeHeader = good.clone();
        hugeHeader[8] = (byte) 0xFF;
        hugeHeader[9] = (byte) 0xFF;
        assertThrows(IllegalArgumentException.class, () -> Npy.read(hugeHeader));
    }

    @Test
    void ndArrayChecksSizesAndTypes() {
        assertThrows(IllegalArgumentException.class, () -> new NdArray("float32", new long[] {3}, new byte[8]));
        assertThrows(IllegalArgumentException.class, () -> new NdArray("complex64", new long[] {1}, new byte[8]));
        assertThrows(IllegalArgumentException.class, () -> NdArray.ofInts(new int[] {1, 2}).reshape(3));
        assertThrows(IllegalStateException.class, () -> NdArray.ofInts(new int[] {1}).toFloats());
        byte[] data = {1, 2};
        NdArray bytes = NdArray.ofBytes(data);
        data[0] = 9;
        assertEquals(1, bytes.toBytes()[0]);
        assertEquals(NdArray.ofBytes(new byte[] {1, 2}), bytes);
        assertEquals(NdArray.ofBytes(new byte[] {1, 2}).hashCode(), bytes.hashCode());
    }
}
