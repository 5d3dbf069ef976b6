package dev.squeeze;

import java.util.Arrays;

/** Name, element type and shape of a model input or output. Immutable. */
public final class TensorInfo {
    private final String name;
    private final DType dtype;
    private final long[] shape;

    TensorInfo(String name, DType dtype, long[] shape) {
        this.name = name;
        this.dtype = dtype;
        this.shape = shape.clone();
    }

    public String name() {
        return name;
    }

    public DType dtype() {
        return dtype;
    }

    /** The dimensions (a copy). */
    public long[] shape() {
        return shape.clone();
    }

    public int rank() {
        return shape.length;
    }

    /** The product of the dimensions. */
    public long elementCount() {
        long n = 1;
        for (long d : shape) {
            n = Math.multiplyExact(n, d);
        }
        return n;
    }

    /** Bytes a buffer for this tensor must have: elements times element size. */
    public long byteSize() {
        return Math.multiplyExact(elementCount(), (long) dtype.byteSize());
    }

    @Override
    public String toString() {
        return name + " " + dtype + " " + Arrays.toString(shape);
    }
}
