// An edit's input on the stage and the viewer's before/after slider (shared/before_after.ts).
import { describe, expect, it } from "vitest";
import {
	START_POSITION,
	clamp_position,
	input_clip,
	input_src,
	position_at,
	position_for_key,
	reveal_text,
	stage_frame
} from "../shared/before_after";
import type { PreviewData } from "../shared/types";

const INPUT = "http://app/gradio_api/file=/cache/abc/input.png";

function value(fields: Partial<PreviewData> = {}): PreviewData {
	return {
		run_id: "r1",
		status: "running",
		step: 0,
		total_steps: 6,
		preview: null,
		elapsed: 0,
		steps_per_second: null,
		eta: null,
		seeds: [],
		backend: "diffusers",
		model: "shapes",
		width: 64,
		height: 64,
		message: null,
		images: [],
		input_image: { path: "/cache/abc/input.png", url: INPUT } as PreviewData["input_image"],
		...fields
	};
}

describe("stage_frame", () => {
	it("shows an edit's input as the first frame, before any step preview", () => {
		expect(stage_frame(value())).toEqual({ srcs: [INPUT], final: false, input: true });
	});

	it("shows the input once per image of a batch", () => {
		const batch = value({ params: { num_images: 2 } as PreviewData["params"] });
		expect(stage_frame(batch)?.srcs).toEqual([INPUT, INPUT]);
	});

	it("gives way to the step previews, then to the final images", () => {
		expect(stage_frame(value({ step: 1, preview: "data:p1" }))).toEqual({
			srcs: ["data:p1"],
			final: false,
			input: false
		});
		const done = value({ status: "done", images: [{ path: "/r.png", url: "http://r" }] as PreviewData["images"] });
		expect(stage_frame(done)).toEqual({ srcs: ["http://r"], final: true, input: false });
	});

	it("shows nothing for a text-to-image run that has no preview yet", () => {
		expect(stage_frame(value({ input_image: null }))).toBeNull();
		expect(stage_frame(value({ input_image: undefined }))).toBeNull();
	});

	it("keeps the input of a run stopped before its first preview", () => {
		expect(stage_frame(value({ status: "cancelled" }))?.input).toBe(true);
	});
});

describe("input_src", () => {
	it("is the input's URL for an edit, null otherwise", () => {
		expect(input_src(value({ status: "done" }))).toBe(INPUT);
		expect(input_src(value({ input_image: null }))).toBeNull();
		expect(input_src(null)).toBeNull();
	});
});

describe("position_for_key", () => {
	it("moves by 5 with the arrows, by 1 with Shift, by 25 with the page keys", () => {
		expect(position_for_key(50, "ArrowLeft")).toBe(45);
		expect(position_for_key(50, "ArrowDown")).toBe(45);
		expect(position_for_key(50, "ArrowRight")).toBe(55);
		expect(position_for_key(50, "ArrowUp")).toBe(55);
		expect(position_for_key(50, "ArrowRight", true)).toBe(51);
		expect(position_for_key(50, "PageUp")).toBe(75);
		expect(position_for_key(50, "PageDown")).toBe(25);
	});

	it("goes to the ends with Home and End, and stops at them", () => {
		expect(position_for_key(50, "Home")).toBe(0);
		expect(position_for_key(50, "End")).toBe(100);
		expect(position_for_key(2, "ArrowLeft")).toBe(0);
		expect(position_for_key(98, "PageUp")).toBe(100);
	});

	it("ignores other keys (Escape still closes the viewer)", () => {
		expect(position_for_key(50, "Escape")).toBeNull();
		expect(position_for_key(50, "a")).toBeNull();
	});
});

describe("position_at", () => {
	it("is the pointer's place across the box, in percent, held to the box", () => {
		expect(position_at(150, 100, 200)).toBe(25);
		expect(position_at(50, 100, 200)).toBe(0);
		expect(position_at(400, 100, 200)).toBe(100);
	});

	it("starts in the middle while the box has no width", () => {
		expect(position_at(10, 0, 0)).toBe(START_POSITION);
	});
});

describe("input_clip and reveal_text", () => {
	it("clips the input to the left part the divider reveals", () => {
		expect(input_clip(50)).toBe("inset(0 50% 0 0)");
		expect(input_clip(0)).toBe("inset(0 100% 0 0)");
		expect(input_clip(100)).toBe("inset(0 0% 0 0)");
		expect(input_clip(150)).toBe("inset(0 0% 0 0)");
	});

	it("says what shows", () => {
		expect(reveal_text(0)).toBe("Result only");
		expect(reveal_text(100)).toBe("Input only");
		expect(reveal_text(30)).toBe("Input on the left 30%, result on the right 70%");
	});

	it("holds odd numbers to the range", () => {
		expect(clamp_position(Number.NaN)).toBe(START_POSITION);
		expect(clamp_position(33.333)).toBe(33.3);
	});
});
