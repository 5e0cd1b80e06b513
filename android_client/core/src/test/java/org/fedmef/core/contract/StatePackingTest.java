package org.fedmef.core.contract;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import org.fedmef.core.records.ArrayRecord;
import org.fedmef.core.records.NdArray;
import org.junit.jupiter.api.Test;

/** Packing the wire state into graph inputs by role, and unpacking the reply (protocol §6). */
class StatePackingTest {
    private final Manifest manifest = TinyModel.manifest();
    private final StatePacking packing = new StatePacking(manifest);

    @Test
    void packsValuesPositionsAndMarkedOverTheActivePositions() {
        PackedState s = packing.pack(TinyModel.wire().build());
        assertArrayEquals(new float[] {1, 2, 3, 4, 5}, s.get("fc.weight").toFloats());
        assertArrayEquals(new int[] {0, 3, 5, 6, 11}, s.get("fc.positions").toInts());
        assertArrayEquals(new float[] {0, 1, 0, 0, 1}, s.get("fc.marked").toFloats()); // 4 is inactive: ignored
        assertArrayEquals(new float[] {0.5f, 0.25f, 0.125f}, s.get("fc.bias").toFloats());
    }

    @Test
    void packsADenseWeightMaskAndMarkedOverFlatIndices() {
        PackedState s = packing.pack(TinyModel.wire().build());
        assertArrayEquals(new float[] {0, 7, 8, 0}, s.get("conv.weight").toFloats());
        assertArrayEquals(new long[] {2, 1, 1, 2}, s.get("conv.weight").shape());
        assertArrayEquals(new float[] {0, 1, 1, 0}, s.get("conv.mask").toFloats());
        assertArrayEquals(new float[] {1, 0, 1, 0}, s.get("conv.marked").toFloats());
    }

    @Test
    void anAbsentMarkedSetIsAllZero() {
        ArrayRecord wire = without(TinyModel.wire().build(), "x/fc");
        assertArrayEquals(new float[5], packing.pack(wire).get("fc.marked").toFloats());
    }

    @Test
    void unpacksValuesAsIsAndDenseWeightsAtTheActivePositions() {
        PackedState s = packing.pack(TinyModel.wire().build());
        Map<String, NdArray> next = new LinkedHashMap<>();
        next.put("next/fc.weight", NdArray.ofFloats(new float[] {9, 8, 7, 6, 5}));
        next.put("next/conv.weight", NdArray.ofFloats(new float[] {1, 2, 3, 4}).reshape(2, 1, 1, 2));
        next.put("next/fc.bias", NdArray.ofFloats(new float[] {1, 1, 1}));
        next.put("loss", NdArray.ofFloats(new float[] {0}).reshape());
        LinkedHashMap<String, NdArray> update = packing.unpack("step", packing.apply("step", s, next));
        assertEquals(Arrays.asList("v/fc", "v/conv", "d/fc.bias"), Arrays.asList(update.keySet().toArray()));
        assertArrayEquals(new float[] {9, 8, 7, 6, 5}, update.get("v/fc").toFloats());
        assertArrayEquals(new float[] {2, 3}, update.get("v/conv").toFloats());
        assertArrayEquals(new long[] {3}, update.get("d/fc.bias").shape());
    }

    @Test
    void aStateArrayOfTheWrongShapeNamesTheTensor() {
        ArrayRecord wire = TinyModel.wire().put("d/fc.bias", NdArray.ofFloats(new float[] {1, 2})).build();
        assertMentions(assertThrows(ContractException.class, () -> packing.pack(wire)), "fc.bias", "[3]", "[2]");
        ArrayRecord values = TinyModel.wire().put("v/fc", NdArray.ofFloats(new float[] {1, 2, 3, 4})).build();
        assertMentions(assertThrows(ContractException.class, () -> packing.pack(values)), "v/fc", "fc.weight");
        ArrayRecord wide = TinyModel.wire().put("v/fc", NdArray.ofLongs(new long[] {1, 2, 3, 4, 5})).build();
        assertMentions(assertThrows(ContractException.class, () -> packing.pack(wide)), "v/fc", "float32");
    }

    @Test
    void aMaskWithAnotherActiveCountOrLengthIsRefused() {
        ArrayRecord moreActive = TinyModel.wire().put("m/fc", NdArray.ofBytes(new byte[] {(byte) 0x97, 0x10})).build();
        assertMentions(assertThrows(ContractException.class, () -> packing.pack(moreActive)), "v/fc", "6 active");
        ArrayRecord shortMask = TinyModel.wire().put("m/fc", NdArray.ofBytes(new byte[] {(byte) 0x96})).build();
        assertMentions(assertThrows(ContractException.class, () -> packing.pack(shortMask)), "m/fc");
        assertMentions(assertThrows(ContractException.class, () -> packing.pack(without(TinyModel.wire().build(), "m/conv"))),
                "m/conv");
    }

    @Test
    void aMarkedIndexOutsideTheLayerIsRefused() {
        ArrayRecord wire = TinyModel.wire().put("x/conv", NdArray.ofInts(new int[] {4})).build();
        assertMentions(assertThrows(ContractException.class, () -> packing.pack(wire)), "x/conv", "4");
    }

    @Test
    void anUpdateOfTheWrongShapeNamesTheOutput() {
        PackedState s = packing.pack(TinyModel.wire().build());
        Map<String, NdArray> next = new LinkedHashMap<>();
        next.put("next/fc.weight", NdArray.ofFloats(new float[] {9, 8, 7}));
        next.put("next/conv.weight", NdArray.ofFloats(new float[] {1, 2, 3, 4}).reshape(2, 1, 1, 2));
        next.put("next/fc.bias", NdArray.ofFloats(new float[] {1, 1, 1}));
        assertMentions(assertThrows(ContractException.class, () -> packing.apply("step", s, next)), "next/fc.weight");
    }

    @Test
    void packsTheSharedRoundLikeTheReference() throws Exception {
        Manifest shared = Manifest.parse(RoundVectors.manifestJson());
        PackedState s = new StatePacking(shared).pack(RoundVectors.state());
        Path inputs = Vectors.require("round/inputs");
        int checked = 0;
        for (String name : shared.graph("step").inputs()) {
            Path file = inputs.resolve(name + ".npy");
            if (Files.exists(file)) {
                assertEquals(Vectors.npy(file), s.get(name), name);
                checked++;
            }
        }
        assertTrue(checked >= 4, "expected packed inputs in " + inputs);
    }

    static ArrayRecord without(ArrayRecord record, String key) {
        ArrayRecord.Builder b = ArrayRecord.builder();
        for (Map.Entry<String, NdArray> e : record.asMap().entrySet()) {
            if (!e.getKey().equals(key)) {
                b.put(e.getKey(), e.getValue());
            }
        }
        return b.build();
    }

    static void assertMentions(Exception e, String... parts) {
        for (String part : parts) {
            assertTrue(e.getMessage().contains(part), "'" + e.getMessage() + "' should mention '" + part + "'");
        }
    }
}
