package org.fedmef.core.codec;

import com.google.protobuf.ByteString;
import flwr.proto.Recorddict;
import flwr.proto.Recorddict.ConfigRecordValue;
import flwr.proto.Recorddict.MetricRecordValue;
import java.util.ArrayList;
import java.util.List;
import org.fedmef.core.records.ConfigRecord;
import org.fedmef.core.records.MetricRecord;

/**
 * ConfigRecord / MetricRecord to and from flwr's protobuf messages, typed as flwr 1.41's
 * {@code record_value_dict_to_proto} types them: integers as {@code sint64} (Java longs never
 * need flwr's {@code uint64}), floats as {@code double}; an empty list is a {@code bool_list} in
 * a ConfigRecord and a {@code double_list} in a MetricRecord (flwr's first allowed type).
 */
final class RecordProtos {
    private RecordProtos() {
    }

    static Recorddict.ConfigRecord toProto(ConfigRecord record) {
        Recorddict.ConfigRecord.Builder out = Recorddict.ConfigRecord.newBuilder();
        for (String key : record.keys()) {
            out.addItems(Recorddict.ConfigRecord.Item.newBuilder().setKey(key).setValue(configValue(record.get(key))));
        }
        return out.build();
    }

    static Recorddict.MetricRecord toProto(MetricRecord record) {
        Recorddict.MetricRecord.Builder out = Recorddict.MetricRecord.newBuilder();
        for (String key : record.keys()) {
            out.addItems(Recorddict.MetricRecord.Item.newBuilder().setKey(key).setValue(metricValue(record.get(key))));
        }
        return out.build();
    }

    static ConfigRecord fromProto(Recorddict.ConfigRecord proto) throws CodecException {
        ConfigRecord.Builder out = ConfigRecord.builder();
        for (Recorddict.ConfigRecord.Item item : proto.getItemsList()) {
            out.put(item.getKey(), configValue(item.getKey(), item.getValue()));
        }
        return out.build();
    }

    static MetricRecord fromProto(Recorddict.MetricRecord proto) throws CodecException {
        MetricRecord.Builder out = MetricRecord.builder();
        for (Recorddict.MetricRecord.Item item : proto.getItemsList()) {
            out.put(item.getKey(), metricValue(item.getKey(), item.getValue()));
        }
        return out.build();
    }

    private static ConfigRecordValue configValue(Object v) {
        ConfigRecordValue.Builder b = ConfigRecordValue.newBuilder();
        if (v instanceof Long) {
            return b.setSint64((Long) v).build();
        } else if (v instanceof Double) {
            return b.setDouble((Double) v).build();
        } else if (v instanceof Boolean) {
            return b.setBool((Boolean) v).build();
        } else if (v instanceof String) {
            return b.setString((String) v).build();
        } else if (v instanceof byte[]) {
            return b.setBytes(ByteString.copyFrom((byte[]) v)).build();
        }
        List<?> list = (List<?>) v;
        Object first = list.isEmpty() ? Boolean.FALSE : list.get(0);
        if (first instanceof Long) {
            return b.setSintList(Recorddict.SintList.newBuilder().addAllVals(cast(list, Long.class))).build();
        } else if (first instanceof Double) {
            return b.setDoubleList(Recorddict.DoubleList.newBuilder().addAllVals(cast(list, Double.class))).build();
        } else if (first instanceof Boolean) {
            return b.setBoolList(Recorddict.BoolList.newBuilder().addAllVals(cast(list, Boolean.class))).build();
        } else if (first instanceof String) {
            return b.setStringList(Recorddict.StringList.newBuilder().addAllVals(cast(list, String.class))).build();
        }
        Recorddict.BytesList.Builder bytes = Recorddict.BytesList.newBuilder();
        for (Object element : list) {
            bytes.addVals(ByteString.copyFrom((byte[]) element));
        }
        return b.setBytesList(bytes).build();
    }

    private static MetricRecordValue metricValue(Object v) {
        MetricRecordValue.Builder b = MetricRecordValue.newBuilder();
        if (v instanceof Long) {
            return b.setSint64((Long) v).build();
        } else if (v instanceof Double) {
            return b.setDouble((Double) v).build();
        }
        List<?> list = (List<?>) v;
        if (!list.isEmpty() && list.get(0) instanceof Long) {
            return b.setSintList(Recorddict.SintList.newBuilder().addAllVals(cast(list, Long.class))).build();
        }
        return b.setDoubleList(Recorddict.DoubleList.newBuilder().addAllVals(cast(list, Double.class))).build();
    }

    private static Object configValue(String key, ConfigRecordValue v) throws CodecException {
        switch (v.getValueCase()) {
            case DOUBLE:
                return v.getDouble();
            case SINT64:
                return v.getSint64();
            case UINT64:
                return unsigned(key, v.getUint64());
            case BOOL:
                return v.getBool();
            case STRING:
                return v.getString();
            case BYTES:
                return v.getBytes().toByteArray();
            case DOUBLE_LIST:
                return v.getDoubleList().getValsList();
            case SINT_LIST:
                return v.getSintList().getValsList();
            case UINT_LIST:
                return unsigned(key, v.getUintList().getValsList());
            case BOOL_LIST:
                return v.getBoolList().getValsList();
            case STRING_LIST:
                return v.getStringList().getValsList();
            case BYTES_LIST:
                List<byte[]> bytes = new ArrayList<>();
                for (ByteString b : v.getBytesList().getValsList()) {
                    bytes.add(b.toByteArray());
                }
                return bytes;
            default:
                throw new CodecException("ConfigRecord value '" + key + "' has no value");
        }
    }

    private static Object metricValue(String key, MetricRecordValue v) throws CodecException {
        switch (v.getValueCase()) {
            case DOUBLE:
                return v.getDouble();
            case SINT64:
                return v.getSint64();
            case UINT64:
                return unsigned(key, v.getUint64());
            case DOUBLE_LIST:
                return v.getDoubleList().getValsList();
            case SINT_LIST:
                return v.getSintList().getValsList();
            case UINT_LIST:
                return unsigned(key, v.getUintList().getValsList());
            default:
                throw new CodecException("MetricRecord value '" + key + "' has no value");
        }
    }

    /** flwr sends uint64 only for integers above 2^63-1, which a Java long cannot hold. */
    private static long unsigned(String key, long bits) throws CodecException {
        if (bits < 0) {
            throw new CodecException("value '" + key + "' is an unsigned integer above 2^63-1: "
                    + Long.toUnsignedString(bits) + " (not supported)");
        }
        return bits;
    }

    private static List<Long> unsigned(String key, List<Long> values) throws CodecException {
        for (long v : values) {
            unsigned(key, v);
        }
        return values;
    }

    private static <T> List<T> cast(List<?> list, Class<T> type) {
        List<T> out = new ArrayList<>(list.size());
        for (Object o : list) {
            out.add(type.cast(o));
        }
        return out;
    }
}
