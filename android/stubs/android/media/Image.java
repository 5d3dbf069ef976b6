package android.media;

import java.nio.ByteBuffer;

/** Compile-only stub of the public API (not packed). */
public abstract class Image implements AutoCloseable {
    Image() {
        throw new RuntimeException("stub");
    }

    public abstract int getFormat();

    public abstract int getWidth();

    public abstract int getHeight();

    public abstract long getTimestamp();

    public abstract Plane[] getPlanes();

    @Override
    public abstract void close();

    /** Compile-only stub of the public API (not packed). */
    public abstract static class Plane {
        Plane() {
            throw new RuntimeException("stub");
        }

        public abstract int getRowStride();

        public abstract int getPixelStride();

        public abstract ByteBuffer getBuffer();
    }
}
