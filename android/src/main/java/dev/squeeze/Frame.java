package dev.squeeze;

import java.nio.ByteBuffer;

/**
 * A camera frame as planes with their strides, the way CameraX's
 * {@code ImageProxy} and {@code android.media.Image} hand them out; read in
 * place by {@link Session#runFrame}. Immutable (the pixels are the caller's).
 */
public final class Frame {
    /** How the pixels are laid out (the C ABI's {@code SqzPixelFormat}). */
    public enum PixelFormat {
        /**
         * 8-bit 4:2:0 in three planes Y, U, V with their own strides:
         * Android's {@code YUV_420_888} as it comes (NV21/NV12 with
         * interleaved chroma, pixel stride 2, or I420, pixel stride 1).
         */
        YUV_420(0, 3),
        /** R, G, B, A bytes in one plane (CameraX {@code OUTPUT_IMAGE_FORMAT_RGBA_8888}). */
        RGBA(1, 1),
        /** B, G, R, A bytes in one plane. */
        BGRA(2, 1),
        /** R, G, B bytes in one plane. */
        RGB(3, 1);

        private final int code;
        private final int planes;

        PixelFormat(int code, int planes) {
            this.code = code;
            this.planes = planes;
        }

        public int code() {
            return code;
        }

        /** How many planes a frame of this format has. */
        public int planeCount() {
            return planes;
        }
    }

    /** One plane, as CameraX's {@code ImageProxy.PlaneProxy}: a direct buffer and its strides. */
    public static final class Plane {
        private final ByteBuffer buffer;
        private final int rowStride;
        private final int pixelStride;

        /** The buffer is used from address 0 to its capacity. */
        public Plane(ByteBuffer buffer, int rowStride, int pixelStride) {
            this.buffer = buffer;
            this.rowStride = rowStride;
            this.pixelStride = pixelStride;
        }

        public ByteBuffer buffer() {
            return buffer;
        }

        /** Bytes from one row to the next. */
        public int rowStride() {
            return rowStride;
        }

        /** Bytes from one pixel to the next within a row. */
        public int pixelStride() {
            return pixelStride;
        }
    }

    private final PixelFormat format;
    private final int width;
    private final int height;
    private final Plane[] planes;
    // What the native call takes, built once.
    private final ByteBuffer[] buffers;
    private final int[] strides;

    /**
     * A frame of {@code width} x {@code height} pixels. Plane contents and
     * strides are checked by the library when the frame is run
     * ({@link SqueezeException.Status#FRAME} if they do not fit; a null
     * buffer: {@link SqueezeException.Status#NULL_POINTER}).
     *
     * @throws IllegalArgumentException if the plane count is not the format's
     */
    public Frame(PixelFormat format, int width, int height, Plane... planes) {
        if (format == null) {
            throw new NullPointerException("format");
        }
        if (planes == null) {
            throw new NullPointerException("planes");
        }
        if (planes.length != format.planeCount()) {
            throw new IllegalArgumentException(
                    format + " takes " + format.planeCount() + " planes, not " + planes.length);
        }
        this.format = format;
        this.width = width;
        this.height = height;
        this.planes = planes.clone();
        this.buffers = new ByteBuffer[this.planes.length];
        this.strides = new int[2 * this.planes.length];
        for (int i = 0; i < this.planes.length; i++) {
            Plane p = this.planes[i];
            if (p == null) {
                throw new NullPointerException("planes[" + i + "]");
            }
            buffers[i] = p.buffer();
            strides[2 * i] = p.rowStride();
            strides[2 * i + 1] = p.pixelStride();
        }
    }

    /** A packed frame (RGBA, BGRA or RGB) in one plane with tightly packed pixels. */
    public static Frame packed(PixelFormat format, ByteBuffer pixels, int width, int height, int rowStride) {
        if (format == PixelFormat.YUV_420) {
            throw new IllegalArgumentException("YUV_420 has three planes");
        }
        int pixelStride = format == PixelFormat.RGB ? 3 : 4;
        return new Frame(format, width, height, new Plane(pixels, rowStride, pixelStride));
    }

    public PixelFormat format() {
        return format;
    }

    public int width() {
        return width;
    }

    public int height() {
        return height;
    }

    /** The planes (a copy of the array). */
    public Plane[] planes() {
        return planes.clone();
    }

    ByteBuffer[] buffers() {
        return buffers;
    }

    int[] strides() {
        return strides;
    }
}
