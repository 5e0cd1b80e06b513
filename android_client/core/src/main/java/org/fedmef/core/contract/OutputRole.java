package org.fedmef.core.contract;

/** What a graph output holds (protocol §6, "Output roles"). */
public enum OutputRole {
    LOSS("loss"), UPDATE("update"), GROWTH_INDICES("growth-indices"), GROWTH_MAGNITUDES("growth-magnitudes"),
    LOSSES("losses"), CORRECT("correct");

    private final String wireName;

    OutputRole(String wireName) {
        this.wireName = wireName;
    }

    /** The role as the manifest spells it. */
    public String wireName() {
        return wireName;
    }

    /** The role named {@code name}, or a ContractException naming the output. */
    public static OutputRole of(String name, String output) {
        for (OutputRole role : values()) {
            if (role.wireName.equals(name)) {
                return role;
            }
        }
        throw new ContractException("manifest: output '" + output + "' has unknown role '" + name + "'");
    }
}
