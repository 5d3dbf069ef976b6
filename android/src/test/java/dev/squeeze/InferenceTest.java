package dev.squeeze;

import static dev.squeeze.Assert.matchesReference;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.FileDescriptor;
import java.io.FileInputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.lang.reflect.Field;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicInteger;

import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

/** Real inference on the bundled tiny classifier, against the Rust CLI's results. */
class InferenceTest {
    static String tiny() {
        return Fixtures.file("tiny.sqz").toString();
    }

    /** Runs the fixture input through a session; the output buffer. */
    static ByteBuffer runInput(Session session) throws SqueezeException {
        ByteBuffer[] in = session.allocateInputs();
        in[0].asFloatBuffer().put(Fixtures.input());
        ByteBuffer[] out = session.allocateOutputs();
        session.run(in, out);
        return out[0];
    }

    @Test
    void versionIsTheCrates() {
        assertTrue(Squeeze.version().matches("\\d+\\.\\d+\\.\\d+.*"), Squeeze.version());
    }

    @Test
    void theScriptsInputIsTheTestsInput() throws IOException {
        Fixtures.Npy x = Fixtures.readNpy(Fixtures.file("x.npy"));
        assertArrayEquals(Fixtures.INPUT_SHAPE, x.shape);
        assertArrayEquals(Fixtures.input(), x.data);
    }

    @Test
    void portsAndLabels() throws SqueezeException {
        try (Model model = Model.load(tiny())) {
            TensorInfo[] in = model.inputs();
            assertEquals(1, in.length);
            assertEquals("image", in[0].name());
            assertEquals(DType.F32, in[0].dtype());
            assertArrayEquals(new long[] {1, 3, 64, 64}, in[0].shape());
            assertEquals(3 * 64 * 64 * 4, in[0].byteSize());
            TensorInfo[] out = model.outputs();
            assertEquals(1, out.length);
            assertEquals("probs", out[0].name());
            assertArrayEquals(new long[] {1, 10}, out[0].shape());
            assertEquals(40, out[0].byteSize());
            assertEquals(0, model.labels().length);
        }
    }

    @Test
    void labelsOfAThousandClasses() throws SqueezeException {
        // More labels than a JNI frame's local references on old Android
        // (512); -Xcheck:jni in the script reports leaked local references.
        try (Model model = Model.load(Fixtures.file("labels.sqz").toString())) {
            String[] labels = model.labels();
            assertEquals(1000, labels.length);
            assertEquals("class 0", labels[0]);
            assertEquals("class 999", labels[999]);
        }
    }

    @Test
    void runMatchesTheRustCli() throws Exception {
        try (Model model = Model.load(tiny()); Session session = model.newSession()) {
            ByteBuffer out = runInput(session);
            matchesReference("out/probs.npy", out);
            // A second run on the same session (reused arena) gives the same.
            matchesReference("out/probs.npy", runInput(session));
        }
    }

    @Test
    void explicitOptions() throws Exception {
        LoadOptions one = new LoadOptions().threads(1).verifySha256(true);
        try (Model model = Model.load(tiny(), one); Session session = model.newSession()) {
            matchesReference("out/probs.npy", runInput(session));
        }
        LoadOptions scalar = new LoadOptions().isa(LoadOptions.Isa.SCALAR);
        try (Model model = Model.load(tiny(), scalar); Session session = model.newSession()) {
            Fixtures.Npy want = Fixtures.readNpy(Fixtures.file("out/probs.npy"));
            // Other kernels, other rounding.
            assertArrayEquals(want.data, Fixtures.floats(runInput(session)), 1e-4f);
        }
    }

    @Test
    void fromBufferCopiesTheModel() throws Exception {
        ByteBuffer bytes = Fixtures.direct(Files.readAllBytes(Fixtures.file("tiny.sqz")));
        try (Model model = Model.fromBuffer(bytes); Session session = model.newSession()) {
            // Copied at load: the buffer may be reused.
            bytes.put(new byte[bytes.capacity()]).clear();
            matchesReference("out/probs.npy", runInput(session));
        }
    }

    @Test
    void aSessionOutlivesItsModel() throws Exception {
        Session session;
        try (Model model = Model.load(tiny())) {
            session = model.newSession();
        }
        try (Session s = session) {
            matchesReference("out/probs.npy", runInput(s));
        }
    }

    /** The int of a FileDescriptor (android: ParcelFileDescriptor.getFd()). */
    static int fdOf(FileDescriptor fd) {
        try {
            Field f = FileDescriptor.class.getDeclaredField("fd");
            f.setAccessible(true);
            return f.getInt(fd);
        } catch (ReflectiveOperationException | RuntimeException e) {
            Assumptions.abort("no descriptor number (run with --add-opens java.base/java.io=ALL-UNNAMED): " + e);
            throw new AssertionError(e);
        }
    }

    /** The .sqz after {@code prefix} junk bytes and before {@code suffix} more, as in an APK. */
    static Path embedded(Path dir, int prefix, int suffix) throws IOException {
        byte[] sqz = Files.readAllBytes(Fixtures.file("tiny.sqz"));
        Path file = Files.createTempFile(dir, "embedded", ".bin");
        try (OutputStream out = Files.newOutputStream(file)) {
            byte[] junk = new byte[Math.max(prefix, suffix)];
            for (int i = 0; i < junk.length; i++) {
                junk[i] = (byte) (i * 31 + 7);
            }
            out.write(junk, 0, prefix);
            out.write(sqz);
            out.write(junk, 0, suffix);
        }
        return file;
    }

    @Test
    void fromFileDescriptorRegion() throws Exception {
        long sqzLength = Files.size(Fixtures.file("tiny.sqz"));
        Path file = embedded(Fixtures.dir(), 4096 + 13, 777);
        Model model;
        try (FileInputStream in = new FileInputStream(file.toFile())) {
            model = Model.fromFileDescriptor(fdOf(in.getFD()), 4096 + 13, sqzLength, null);
        }
        // The descriptor is closed; the mapped region stays the model's.
        try (Model m = model; Session session = m.newSession()) {
            matchesReference("out/probs.npy", runInput(session));
        } finally {
            Files.delete(file);
        }
    }

    @Test
    void fromFileDescriptorToTheEnd() throws Exception {
        Path file = embedded(Fixtures.dir(), 100, 0);
        try (FileInputStream in = new FileInputStream(file.toFile());
                Model model = Model.fromFileDescriptor(fdOf(in.getFD()), 100, 0, new LoadOptions());
                Session session = model.newSession()) {
            matchesReference("out/probs.npy", runInput(session));
        } finally {
            Files.delete(file);
        }
    }

    @Test
    void sessionsOnTwoThreads() throws Exception {
        try (Model model = Model.load(tiny())) {
            ConcurrentLinkedQueue<Throwable> errors = new ConcurrentLinkedQueue<>();
            Thread[] threads = new Thread[2];
            for (int t = 0; t < threads.length; t++) {
                threads[t] = new Thread(() -> {
                    try (Session session = model.newSession()) {
                        for (int i = 0; i < 20; i++) {
                            matchesReference("out/probs.npy", runInput(session));
                        }
                    } catch (Throwable e) {
                        errors.add(e);
                    }
                });
                threads[t].start();
            }
            for (Thread t : threads) {
                t.join();
            }
            assertEquals(List.of(), new ArrayList<>(errors));
        }
    }

    @Test
    void oneSessionOnTwoThreadsIsBusyNotRacy() throws Exception {
        // Both threads keep calling until each has 20 good runs: a call
        // while the other thread is inside fails at once with BUSY, never
        // with a wrong result.
        try (Model model = Model.load(tiny()); Session session = model.newSession()) {
            ConcurrentLinkedQueue<Throwable> errors = new ConcurrentLinkedQueue<>();
            AtomicInteger busy = new AtomicInteger();
            CountDownLatch start = new CountDownLatch(1);
            Thread[] threads = new Thread[2];
            for (int t = 0; t < threads.length; t++) {
                threads[t] = new Thread(() -> {
                    try {
                        ByteBuffer[] in = session.allocateInputs();
                        in[0].asFloatBuffer().put(Fixtures.input());
                        ByteBuffer[] out = session.allocateOutputs();
                        start.await();
                        int good = 0;
                        for (int tries = 0; good < 20; tries++) {
                            if (tries == 1_000_000) {
                                throw new AssertionError("only " + good + " runs in a million tries");
                            }
                            try {
                                session.run(in, out);
                            } catch (SqueezeException e) {
                                if (e.status() != SqueezeException.Status.BUSY
                                        || !e.getMessage().contains("another thread")) {
                                    throw e;
                                }
                                busy.incrementAndGet();
                                Thread.yield();
                                continue;
                            }
                            matchesReference("out/probs.npy", out[0]);
                            good++;
                        }
                    } catch (Throwable e) {
                        errors.add(e);
                    }
                });
                threads[t].start();
            }
            start.countDown();
            for (Thread t : threads) {
                t.join();
            }
            assertEquals(List.of(), new ArrayList<>(errors));
            System.out.println("one session, two threads: 40 runs, " + busy.get() + " calls refused as BUSY");
        }
    }
}
