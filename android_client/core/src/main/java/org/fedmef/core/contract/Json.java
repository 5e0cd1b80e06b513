package org.fedmef.core.contract;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import java.math.BigDecimal;

/**
 * Typed, checked reads of manifest fields with gson: a missing or mistyped field becomes a
 * {@link ContractException} that names the field and where it was expected.
 */
final class Json {
    private Json() {
    }

    static String string(JsonObject o, String key, String where) {
        return string(require(o, key, where), where + " field '" + key + "'");
    }

    static String string(JsonElement e, String what) {
        if (!e.isJsonPrimitive() || !e.getAsJsonPrimitive().isString()) {
            throw new ContractException("manifest: " + what + " must be a string");
        }
        return e.getAsString();
    }

    static String optionalString(JsonObject o, String key, String where) {
        JsonElement e = o.get(key);
        return e == null || e.isJsonNull() ? null : string(o, key, where);
    }

    static long integer(JsonObject o, String key, String where) {
        return integer(require(o, key, where), where + " field '" + key + "'");
    }

    static long integer(JsonElement e, String what) {
        if (e.isJsonPrimitive() && e.getAsJsonPrimitive().isNumber()) {
            BigDecimal value = e.getAsBigDecimal();
            try {
                return value.longValueExact();
            } catch (ArithmeticException notIntegral) {
                // reported below
            }
        }
        throw new ContractException("manifest: " + what + " must be an integer, got " + e);
    }

    static JsonArray array(JsonObject o, String key, String where) {
        JsonElement e = require(o, key, where);
        if (!e.isJsonArray()) {
            throw new ContractException("manifest: " + where + " field '" + key + "' must be an array");
        }
        return e.getAsJsonArray();
    }

    static JsonObject object(JsonObject o, String key, String where) {
        JsonElement e = require(o, key, where);
        if (!e.isJsonObject()) {
            throw new ContractException("manifest: " + where + " field '" + key + "' must be an object");
        }
        return e.getAsJsonObject();
    }

    static long[] shape(JsonObject o, String key, String where) {
        JsonArray a = array(o, key, where);
        long[] shape = new long[a.size()];
        for (int i = 0; i < shape.length; i++) {
            shape[i] = integer(a.get(i), where + " " + key + "[" + i + "]");
            if (shape[i] < 0) {
                throw new ContractException("manifest: " + where + " " + key + " has a negative dimension");
            }
        }
        return shape;
    }

    static long[] optionalShape(JsonObject o, String key, String where) {
        JsonElement e = o.get(key);
        return e == null || e.isJsonNull() ? null : shape(o, key, where);
    }

    private static JsonElement require(JsonObject o, String key, String where) {
        JsonElement e = o.get(key);
        if (e == null || e.isJsonNull()) {
            throw new ContractException("manifest: " + where + " has no field '" + key + "'");
        }
        return e;
    }
}
