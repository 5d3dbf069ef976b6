package android.graphics;

/** Compile-only stub of the public API (not packed); constants as in the SDK. */
public class ImageFormat {
    public static final int UNKNOWN = 0;
    public static final int NV21 = 0x11;
    public static final int JPEG = 0x100;
    public static final int YUV_420_888 = 0x23;

    public ImageFormat() {
        throw new RuntimeException("stub");
    }
}
