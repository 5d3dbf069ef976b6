package dev.squeeze;

/**
 * Where in a frame to look and how to turn it upright. The defaults (as
 * constructed): the whole frame, no rotation, no mirroring.
 *
 * <pre>{@code new FrameOptions().rotationDegrees(imageInfo.getRotationDegrees()).mirror(front)}</pre>
 */
public final class FrameOptions {
    private int rotationDegrees;
    private boolean mirror;
    private int[] crop;

    /**
     * Clockwise rotation turning the frame upright: 0, 90, 180 or 270
     * (CameraX's {@code ImageInfo.getRotationDegrees()}); others fail with
     * {@link SqueezeException.Status#FRAME}.
     */
    public FrameOptions rotationDegrees(int degrees) {
        this.rotationDegrees = degrees;
        return this;
    }

    /** Mirror horizontally after rotating (a front camera's preview). */
    public FrameOptions mirror(boolean mirror) {
        this.mirror = mirror;
        return this;
    }

    /**
     * Use only this rectangle of the frame, in frame pixels before rotation
     * (CameraX's {@code ImageProxy.getCropRect()}); it must lie inside the
     * frame ({@link SqueezeException.Status#FRAME} otherwise).
     *
     * @throws IllegalArgumentException for an empty rectangle (the C ABI
     *     reads a zero width or height as "the whole frame")
     */
    public FrameOptions crop(int x, int y, int width, int height) {
        if (width <= 0 || height <= 0) {
            throw new IllegalArgumentException("empty crop " + width + "x" + height);
        }
        this.crop = new int[] {x, y, width, height};
        return this;
    }

    /** Use the whole frame again. */
    public FrameOptions clearCrop() {
        this.crop = null;
        return this;
    }

    public int rotationDegrees() {
        return rotationDegrees;
    }

    public boolean mirror() {
        return mirror;
    }

    /** The crop as {x, y, width, height}, or null for the whole frame. */
    public int[] crop() {
        return crop == null ? null : crop.clone();
    }

    int[] cropOrNull() {
        return crop;
    }
}
