// Flicker-free frame swapping. A frame is the set of images shown at once (one per image of
// a batch): every image of it is decoded off-screen, and only then is the whole set handed
// to `paint`, so the visible <img>s never show a half-decoded or missing frame — the last
// preview stays up while the next one (or the final image) loads. A frame whose decode
// finishes after a newer frame was requested is dropped, unless nothing has been painted for
// `max_hold_ms` (so a steady stream of frames that each decode a little late still moves).

export interface Decoded {
	width: number;
	height: number;
}

export class FramePainter<M> {
	private requested = 0;
	private painted = 0;
	private last_paint = 0;

	constructor(
		private readonly paint: (srcs: string[], meta: M, first: Decoded) => void,
		private readonly max_hold_ms = 250
	) {}

	/**
	 * Decode `srcs` and paint them together. A frame that cannot be decoded is skipped (the
	 * last good one stays up), unless `must_paint` (final images): those are painted anyway,
	 * so a broken file shows as broken rather than leaving a preview up for good.
	 */
	show(srcs: string[], meta: M, must_paint = false): void {
		const seq = ++this.requested;
		const images = srcs.map((src) => {
			const img = new Image();
			img.decoding = "async";
			img.src = src;
			return img;
		});
		Promise.allSettled(images.map((img) => img.decode())).then((results) => {
			const ok = results.every((result) => result.status === "fulfilled");
			if (!ok && !must_paint) return;
			if (seq <= this.painted) return;
			const now = performance.now();
			const newer_waiting = seq !== this.requested;
			if (newer_waiting && !must_paint && now - this.last_paint < this.max_hold_ms)
				return;
			this.painted = seq;
			this.last_paint = now;
			const first = images[0];
			this.paint(srcs, meta, {
				width: first?.naturalWidth ?? 0,
				height: first?.naturalHeight ?? 0
			});
		});
	}

	/** Forget frames still decoding, e.g. when a new run starts. */
	reset(): void {
		this.painted = this.requested;
		this.last_paint = 0;
	}
}
