package android.content.res;

import android.os.ParcelFileDescriptor;

/** Compile-only stub of the public API (not packed). */
public class AssetFileDescriptor implements java.io.Closeable {
    public static final long UNKNOWN_LENGTH = -1L;

    public AssetFileDescriptor(ParcelFileDescriptor fd, long startOffset, long length) {
        throw new RuntimeException("stub");
    }

    public ParcelFileDescriptor getParcelFileDescriptor() {
        throw new RuntimeException("stub");
    }

    public java.io.FileDescriptor getFileDescriptor() {
        throw new RuntimeException("stub");
    }

    public long getStartOffset() {
        throw new RuntimeException("stub");
    }

    public long getLength() {
        throw new RuntimeException("stub");
    }

    public long getDeclaredLength() {
        throw new RuntimeException("stub");
    }

    @Override
    public void close() throws java.io.IOException {
        throw new RuntimeException("stub");
    }
}
