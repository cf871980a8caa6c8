// Flicker-free frame swapping: each preview is decoded off-screen and only then
// handed to `paint`, so the visible <img> never shows a half-decoded frame.
// A frame whose decode finishes after a newer frame was requested is dropped,
// unless nothing has been painted for `max_hold_ms` (so a steady stream of
// frames that each decode a little late still moves on screen).

export class FramePainter {
	private requested = 0;
	private painted = 0;
	private last_paint = 0;

	constructor(
		private readonly paint: (src: string, width: number, height: number) => void,
		private readonly max_hold_ms = 250
	) {}

	show(src: string): void {
		const seq = ++this.requested;
		const img = new Image();
		img.decoding = "async";
		img.src = src;
		img.decode().then(
			() => {
				if (seq <= this.painted) return;
				const now = performance.now();
				const newer_waiting = seq !== this.requested;
				if (newer_waiting && now - this.last_paint < this.max_hold_ms) return;
				this.painted = seq;
				this.last_paint = now;
				this.paint(src, img.naturalWidth, img.naturalHeight);
			},
			() => {
				// A frame that cannot be decoded is skipped; the last good one stays up.
			}
		);
	}

	/** Forget frames still decoding, e.g. when a new run starts. */
	reset(): void {
		this.painted = this.requested;
		this.last_paint = 0;
	}
}
