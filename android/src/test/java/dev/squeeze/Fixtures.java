package dev.squeeze;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The deterministic inputs of the Java tests, and {@code .npy} reading and
 * writing. {@code scripts/test-java.sh} runs {@link #main} to write the
 * inputs, then the Rust CLI on them for the reference outputs; the tests
 * find both in the directory named by the system property
 * {@value #DIR_PROPERTY}.
 */
public final class Fixtures {
    static final String DIR_PROPERTY = "squeeze.test.dir";
    /** The tiny classifier's input: [1, 3, 64, 64] f32. */
    static final long[] INPUT_SHAPE = {1, 3, 64, 64};
    /** The camera frame's size (wider than tall, so rotation matters). */
    static final int W = 96;
    static final int H = 80;

    private Fixtures() {}

    static Path dir() {
        String dir = System.getProperty(DIR_PROPERTY);
        if (dir == null || dir.isEmpty()) {
            throw new IllegalStateException("set -D" + DIR_PROPERTY
                    + "=DIR (scripts/test-java.sh makes the fixtures there)");
        }
        return Paths.get(dir);
    }

    static Path file(String name) {
        return dir().resolve(name);
    }

    /** x[i] = ((i * 37) % 101) / 100. */
    static float[] input() {
        float[] x = new float[3 * 64 * 64];
        for (int i = 0; i < x.length; i++) {
            x[i] = ((i * 37) % 101) / 100f;
        }
        return x;
    }

    /** A W x H RGBA frame, tightly packed. */
    static byte[] rgba() {
        byte[] p = new byte[W * H * 4];
        for (int y = 0; y < H; y++) {
            for (int x = 0; x < W; x++) {
                int i = 4 * (y * W + x);
                p[i] = (byte) (x * 5 + y * 3);
                p[i + 1] = (byte) (x * 2 + y * 7 + 40);
                p[i + 2] = (byte) ((x * x + 3 * y) % 256);
                p[i + 3] = (byte) 255;
            }
        }
        return p;
    }

    /** A W x H NV21 frame: Y, then V and U interleaved at half resolution. */
    static byte[] nv21() {
        byte[] p = new byte[W * H + W * H / 2];
        for (int y = 0; y < H; y++) {
            for (int x = 0; x < W; x++) {
                p[y * W + x] = (byte) (x * 3 + y * 2 + (x * y) % 17);
            }
        }
        for (int y = 0; y < H / 2; y++) {
            for (int x = 0; x < W / 2; x++) {
                int i = W * H + y * W + 2 * x;
                p[i] = (byte) (128 + (x - y) * 2); // V
                p[i + 1] = (byte) (100 + x * 3 - y); // U
            }
        }
        return p;
    }

    static ByteBuffer direct(byte[] bytes) {
        ByteBuffer b = ByteBuffer.allocateDirect(bytes.length).order(ByteOrder.nativeOrder());
        b.put(bytes).clear();
        return b;
    }

    static ByteBuffer directFloats(float[] values) {
        ByteBuffer b = ByteBuffer.allocateDirect(4 * values.length).order(ByteOrder.nativeOrder());
        b.asFloatBuffer().put(values);
        return b;
    }

    static float[] floats(ByteBuffer buffer) {
        float[] out = new float[buffer.capacity() / 4];
        buffer.duplicate().order(ByteOrder.nativeOrder()).clear().asFloatBuffer().get(out);
        return out;
    }

    /** A little-endian f32 {@code .npy} (format 1.0). */
    static void writeNpy(Path path, float[] data, long[] shape) throws IOException {
        StringBuilder dims = new StringBuilder();
        for (int i = 0; i < shape.length; i++) {
            dims.append(i == 0 ? "" : ", ").append(shape[i]);
        }
        if (shape.length == 1) {
            dims.append(',');
        }
        String header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + dims + "), }";
        StringBuilder padded = new StringBuilder(header);
        while ((10 + padded.length() + 1) % 64 != 0) {
            padded.append(' ');
        }
        padded.append('\n');
        byte[] h = padded.toString().getBytes(StandardCharsets.US_ASCII);
        ByteBuffer out = ByteBuffer.allocate(10 + h.length + 4 * data.length).order(ByteOrder.LITTLE_ENDIAN);
        out.put((byte) 0x93).put("NUMPY".getBytes(StandardCharsets.US_ASCII)).put((byte) 1).put((byte) 0);
        out.putShort((short) h.length).put(h);
        for (float v : data) {
            out.putFloat(v);
        }
        Files.write(path, out.array());
    }

    /** A read {@code .npy}: its f32 values and shape. */
    static final class Npy {
        final float[] data;
        final long[] shape;

        Npy(float[] data, long[] shape) {
            this.data = data;
            this.shape = shape;
        }
    }

    /** Reads a C-order {@code <f4} {@code .npy} (format 1.0, 2.0 or 3.0). */
    static Npy readNpy(Path path) throws IOException {
        ByteBuffer b = ByteBuffer.wrap(Files.readAllBytes(path)).order(ByteOrder.LITTLE_ENDIAN);
        byte[] magic = new byte[6];
        b.get(magic);
        if (magic[0] != (byte) 0x93 || !new String(magic, 1, 5, StandardCharsets.US_ASCII).equals("NUMPY")) {
            throw new IOException(path + ": not a .npy");
        }
        int major = b.get();
        b.get();
        int headerLen = major == 1 ? Short.toUnsignedInt(b.getShort()) : b.getInt();
        byte[] h = new byte[headerLen];
        b.get(h);
        String header = new String(h, StandardCharsets.ISO_8859_1);
        if (!header.contains("'descr': '<f4'") || !header.contains("'fortran_order': False")) {
            throw new IOException(path + ": not a C-order <f4 array: " + header);
        }
        Matcher m = Pattern.compile("'shape': \\(([^)]*)\\)").matcher(header);
        if (!m.find()) {
            throw new IOException(path + ": no shape in " + header);
        }
        List<Long> dims = new ArrayList<>();
        for (String d : m.group(1).split(",")) {
            if (!d.trim().isEmpty()) {
                dims.add(Long.parseLong(d.trim()));
            }
        }
        long[] shape = dims.stream().mapToLong(Long::longValue).toArray();
        float[] data = new float[b.remaining() / 4];
        b.asFloatBuffer().get(data);
        return new Npy(data, shape);
    }

    /** Writes the inputs the script runs the Rust CLI on: x.npy, f.rgba, f.nv21. */
    public static void main(String[] args) throws IOException {
        Path dir = Paths.get(args[0]);
        Files.createDirectories(dir);
        writeNpy(dir.resolve("x.npy"), input(), INPUT_SHAPE);
        Files.write(dir.resolve("f.rgba"), rgba());
        Files.write(dir.resolve("f.nv21"), nv21());
    }
}
