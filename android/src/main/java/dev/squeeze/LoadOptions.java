package dev.squeeze;

/**
 * How to load a model. The defaults (as constructed) are what most apps
 * want: threads chosen by the library, the best instruction set, and the
 * per-section checksums (always on) without the whole-file SHA-256.
 *
 * <pre>{@code new LoadOptions().threads(2).verifySha256(true)}</pre>
 */
public final class LoadOptions {
    /** Instruction sets the kernels may be forced to (the C ABI's {@code SqzIsa}). */
    public enum Isa {
        /** The best the CPU has. */
        AUTO(0),
        SCALAR(1),
        AVX2(2),
        AVX512(3),
        NEON(4);

        private final int code;

        Isa(int code) {
            this.code = code;
        }

        public int code() {
            return code;
        }
    }

    private int threads;
    private Isa isa = Isa.AUTO;
    private boolean verifySha256;

    /** Worker threads per session; 0 (the default): the available parallelism, at most 4. */
    public LoadOptions threads(int threads) {
        this.threads = threads;
        return this;
    }

    /** Forces an instruction set; one the CPU lacks fails with {@code UNSUPPORTED}. */
    public LoadOptions isa(Isa isa) {
        this.isa = isa == null ? Isa.AUTO : isa;
        return this;
    }

    /** Also check the whole-file SHA-256 (for models downloaded at run time). */
    public LoadOptions verifySha256(boolean verify) {
        this.verifySha256 = verify;
        return this;
    }

    public int threads() {
        return threads;
    }

    public Isa isa() {
        return isa;
    }

    public boolean verifySha256() {
        return verifySha256;
    }
}
