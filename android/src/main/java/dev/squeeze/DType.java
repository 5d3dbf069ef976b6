package dev.squeeze;

/** Element types of tensors, with the C ABI's {@code SqzDtype} codes. */
public enum DType {
    F32(0, 4),
    I64(1, 8),
    U8(2, 1),
    I8(3, 1),
    I32(4, 4);

    private final int code;
    private final int byteSize;

    DType(int code, int byteSize) {
        this.code = code;
        this.byteSize = byteSize;
    }

    /** The numeric {@code SqzDtype}. */
    public int code() {
        return code;
    }

    /** Bytes per element. */
    public int byteSize() {
        return byteSize;
    }

    /** The type for a numeric code. */
    public static DType fromCode(int code) {
        for (DType d : values()) {
            if (d.code == code) {
                return d;
            }
        }
        throw new IllegalArgumentException("unknown dtype code " + code);
    }
}
