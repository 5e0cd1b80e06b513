package org.fedmef.core.contract;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import org.junit.jupiter.api.Test;

/** Mask bits of protocol §2 (numpy packbits, bit order "big"): hand-built cases and shared vectors. */
class MaskBitsTest {
    @Test
    void firstElementIsTheMostSignificantBitAndTheLastByteIsZeroPadded() {
        boolean[] mask = {true, false, false, false, false, false, false, true, false, true};
        byte[] bits = MaskBits.pack(mask);
        assertArrayEquals(new byte[] {(byte) 0x81, (byte) 0x40}, bits);
        assertArrayEquals(mask, MaskBits.unpack(bits, 10));
        assertArrayEquals(new int[] {0, 7, 9}, MaskBits.positions(bits, 10));
    }

    @Test
    void paddingBitsAreIgnoredWhenReading() {
        assertArrayEquals(new int[] {1}, MaskBits.positions(new byte[] {(byte) 0x7F}, 2));
    }

    @Test
    void rejectsAWrongByteCount() {
        assertThrows(ContractException.class, () -> MaskBits.positions(new byte[3], 16));
        assertThrows(ContractException.class, () -> MaskBits.unpack(new byte[1], 9));
    }

    @Test
    void matchesTheSharedVectors() throws Exception {
        JsonArray cases = Vectors.json("maskbits.json").getAsJsonArray();
        assertTrue(cases.size() > 0);
        for (JsonElement c : cases) {
            JsonObject o = c.getAsJsonObject();
            JsonArray maskJson = o.getAsJsonArray("mask");
            boolean[] mask = new boolean[maskJson.size()];
            for (int i = 0; i < mask.length; i++) {
                mask[i] = maskJson.get(i).getAsInt() != 0;
            }
            JsonArray bitsJson = o.getAsJsonArray("bits");
            byte[] bits = new byte[bitsJson.size()];
            for (int i = 0; i < bits.length; i++) {
                bits[i] = (byte) bitsJson.get(i).getAsInt();
            }
            int[] positions = BatchOrderTest.intMatrix(wrap(o.getAsJsonArray("positions")))[0];
            String label = "shape " + o.get("shape");
            assertArrayEquals(bits, MaskBits.pack(mask), label);
            assertArrayEquals(mask, MaskBits.unpack(bits, mask.length), label);
            assertArrayEquals(positions, MaskBits.positions(bits, mask.length), label);
        }
    }

    private static JsonArray wrap(JsonArray row) {
        JsonArray rows = new JsonArray();
        rows.add(row);
        return rows;
    }
}
