package org.fedmef.core.contract;

/** Where a graph input's value comes from (protocol §6, "Input roles"). */
public enum InputRole {
    VALUES("values"), WEIGHT("weight"), POSITIONS("positions"), MASK("mask"), MARKED("marked"),
    PARAM("param"), DATA("data"), PLAN("plan"), COUNTER("counter");

    private final String wireName;

    InputRole(String wireName) {
        this.wireName = wireName;
    }

    /** The role as the manifest spells it. */
    public String wireName() {
        return wireName;
    }

    /** True for roles a layer's trainable weight takes ({@code values}, {@code weight}). */
    public boolean isLayerWeight() {
        return this == VALUES || this == WEIGHT;
    }

    /** True for roles that belong to one prunable layer and carry {@code layer} and {@code dense_shape}. */
    public boolean isPerLayer() {
        return this == VALUES || this == WEIGHT || this == POSITIONS || this == MASK || this == MARKED;
    }

    /** The role named {@code name}, or a ContractException naming the tensor. */
    public static InputRole of(String name, String tensor) {
        for (InputRole role : values()) {
            if (role.wireName.equals(name)) {
                return role;
            }
        }
        throw new ContractException("manifest: tensor '" + tensor + "' has unknown role '" + name + "'");
    }
}
