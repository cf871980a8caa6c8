// FramePainter (shared/frames.ts): a frame is painted only once every image of it decoded, a
// frame overtaken by a newer one is dropped (unless nothing was painted for max_hold_ms), a
// broken frame keeps the last good one up, and final images are painted whatever happens. The
// decodes are fake images whose decode() the test settles in any order, so the races a
// browser only sometimes shows happen here every time.
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { FramePainter } from "../shared/frames";

class FakeImage {
	static made: FakeImage[] = [];
	decoding = "";
	src = "";
	naturalWidth = 0;
	naturalHeight = 0;
	private settle!: { resolve: () => void; reject: (e: Error) => void };
	private readonly done = new Promise<void>((resolve, reject) => {
		this.settle = { resolve, reject };
	});
	constructor() {
		FakeImage.made.push(this);
	}
	decode(): Promise<void> {
		return this.done;
	}
	load(width = 64, height = 48): void {
		this.naturalWidth = width;
		this.naturalHeight = height;
		this.settle.resolve();
	}
	fail(): void {
		this.settle.reject(new Error("EncodingError"));
	}
}

const image = (src: string) => {
	const found = FakeImage.made.find((img) => img.src === src);
	if (!found) throw new Error(`no image for ${src}`);
	return found;
};
const flush = () => new Promise((resolve) => setTimeout(resolve, 0));

let now = 0;
let painted: [string[], string][] = [];
let painter: FramePainter<string>;

beforeEach(() => {
	FakeImage.made = [];
	painted = [];
	now = 1_000;
	vi.stubGlobal("Image", FakeImage);
	vi.spyOn(performance, "now").mockImplementation(() => now);
	painter = new FramePainter<string>((srcs, meta) => painted.push([srcs, meta]), 250);
});

afterEach(() => {
	vi.unstubAllGlobals();
	vi.restoreAllMocks();
});

describe("FramePainter", () => {
	it("paints a frame only when every image of it has decoded, with the first one's size", async () => {
		const sizes: number[][] = [];
		painter = new FramePainter<string>((srcs, meta, first) => {
			painted.push([srcs, meta]);
			sizes.push([first.width, first.height]);
		});
		painter.show(["a1", "a2"], "step 1");
		image("a1").load(64, 48);
		await flush();
		expect(painted).toEqual([]);
		image("a2").load();
		await flush();
		expect(painted).toEqual([[["a1", "a2"], "step 1"]]);
		expect(sizes).toEqual([[64, 48]]);
		expect(image("a1").decoding).toBe("async");
	});

	it("drops a frame that decodes after a newer one was asked for", async () => {
		painter.show(["s1"], "step 1");
		image("s1").load();
		await flush(); // painted at t=1000
		now = 1_100;
		painter.show(["s2"], "step 2");
		painter.show(["s3"], "step 3");
		image("s2").load();
		await flush();
		image("s3").load();
		await flush();
		expect(painted.map(([, meta]) => meta)).toEqual(["step 1", "step 3"]);
	});

	it("never paints an older frame after a newer one", async () => {
		painter.show(["s1"], "step 1");
		painter.show(["s2"], "step 2");
		image("s2").load();
		await flush();
		now = 2_000; // long past max_hold_ms: only the order keeps step 1 out
		image("s1").load();
		await flush();
		expect(painted.map(([, meta]) => meta)).toEqual(["step 2"]);
	});

	it("still paints an overtaken frame when nothing was painted for max_hold_ms", async () => {
		painter.show(["s1"], "step 1");
		image("s1").load();
		await flush(); // painted at t=1000
		now = 1_300; // 300 ms without a paint
		painter.show(["s2"], "step 2");
		painter.show(["s3"], "step 3");
		image("s2").load();
		await flush();
		expect(painted.map(([, meta]) => meta)).toEqual(["step 1", "step 2"]);
		image("s3").load();
		await flush();
		expect(painted.map(([, meta]) => meta)).toEqual(["step 1", "step 2", "step 3"]);
	});

	it("keeps the last good frame up when one cannot be decoded", async () => {
		painter.show(["s1"], "step 1");
		image("s1").load();
		await flush();
		painter.show(["broken"], "step 2");
		image("broken").fail();
		await flush();
		expect(painted.map(([, meta]) => meta)).toEqual(["step 1"]);
	});

	it("paints final images even when broken or overtaken", async () => {
		painter.show(["final"], "done", true);
		painter.show(["late"], "later");
		image("final").fail();
		await flush();
		expect(painted).toEqual([[["final"], "done"]]);
	});

	it("forgets frames still decoding when reset (a new run starts)", async () => {
		painter.show(["old"], "old run");
		painter.reset();
		image("old").load();
		await flush();
		expect(painted).toEqual([]);
		painter.show(["new"], "new run");
		image("new").load();
		await flush();
		expect(painted).toEqual([[["new"], "new run"]]);
	});
});
