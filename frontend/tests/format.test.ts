// The text helpers of shared/format.ts: rates, durations, sizes, names and the settings shown.
import { describe, expect, it } from "vitest";
import {
	REASON_TEXT,
	counted_down,
	css_size,
	download_name,
	format_elapsed,
	format_eta,
	format_queue_left,
	format_rate,
	format_seconds,
	grid_columns,
	image_count,
	job_link,
	arrived_srcs,
	placeholder_lines,
	settings_parts,
	shown_images,
	timing_parts
} from "../shared/format";
import type { GenerationParams, PreviewData } from "../shared/types";

const params: GenerationParams = {
	prompt: "a lighthouse",
	negative_prompt: "",
	steps: 20,
	guidance: 7.5,
	width: 512,
	height: 768,
	num_images: 2,
	seed: 42,
	model: "tiny-sd15",
	backend: "diffusers",
	sampler: "euler",
	steps_done: null
};

function value(fields: Partial<PreviewData> = {}): PreviewData {
	return {
		run_id: "r",
		status: "done",
		step: 20,
		total_steps: 20,
		preview: null,
		elapsed: 3,
		steps_per_second: 6,
		eta: null,
		seeds: [],
		backend: null,
		model: null,
		width: null,
		height: null,
		message: null,
		images: [],
		...fields
	};
}

describe("rates and durations", () => {
	it("says it/s at one step a second or more, s/it below", () => {
		expect(format_rate(6.24)).toBe("6.2 it/s");
		expect(format_rate(1)).toBe("1.0 it/s");
		expect(format_rate(0.25)).toBe("4.0 s/it");
		for (const none of [null, 0, -1, Infinity, NaN]) expect(format_rate(none)).toBeNull();
	});
	it("rounds seconds up into s, m s and h m", () => {
		expect(format_seconds(0)).toBe("0s");
		expect(format_seconds(-3)).toBe("0s");
		expect(format_seconds(4.2)).toBe("5s");
		expect(format_seconds(59.5)).toBe("1m 0s");
		expect(format_seconds(125)).toBe("2m 5s");
		expect(format_seconds(3 * 3600 + 7 * 60)).toBe("3h 7m");
	});
	it("gives an ETA only when it is known", () => {
		expect(format_eta(20)).toBe("~20s left");
		expect(format_eta(90)).toBe("~1m 30s left");
		for (const none of [null, -1, Infinity]) expect(format_eta(none)).toBeNull();
	});
	it("shows tenths of a second for the first ten seconds", () => {
		expect(format_elapsed(0.04)).toBe("0.0s");
		expect(format_elapsed(9.94)).toBe("9.9s");
		expect(format_elapsed(10)).toBe("10s");
		expect(format_elapsed(75)).toBe("1m 15s");
	});
	it("shows the time a run ran, and the time it waited in a queue as its own figure", () => {
		expect(timing_parts(1.4, 3.2)).toEqual([
			["Time", "1.4s"],
			["Waited", "3.2s"]
		]);
		expect(timing_parts(1.4, null)).toEqual([["Time", "1.4s"]]);
		expect(timing_parts(1.4, 0)).toEqual([["Time", "1.4s"]]);
		expect(timing_parts(null, 3.2)).toEqual([]);
	});
	it("counts a said number of seconds down from when it was said, not below zero", () => {
		expect(counted_down(30, 1_000, 1_000)).toBe(30);
		expect(counted_down(30, 1_000, 3_500)).toBe(27.5);
		expect(counted_down(30, 1_000, 500)).toBe(30); // a clock read before `since`
		expect(counted_down(2, 0, 10_000)).toBe(0);
		expect(counted_down(null, 0, 0)).toBeNull();
		expect(counted_down(undefined, 0, 0)).toBeNull();
		expect(counted_down(Infinity, 0, 0)).toBeNull();
	});
});

describe("sizes and grids", () => {
	it("makes a number pixels and keeps a string", () => {
		expect(css_size(360)).toBe("360px");
		expect(css_size("50vh")).toBe("50vh");
		expect(css_size(null)).toBeNull();
		expect(css_size(undefined)).toBeNull();
		expect(css_size("")).toBeNull();
	});
	it("uses the columns asked for, else one per image up to four", () => {
		expect(grid_columns(3, 8)).toBe(3);
		expect(grid_columns(2.7, 8)).toBe(2);
		expect(grid_columns(null, 1)).toBe(1);
		expect(grid_columns(null, 3)).toBe(3);
		expect(grid_columns(0, 9)).toBe(4);
		expect(grid_columns(null, 0)).toBe(1);
	});
	it("counts a run's images from its first state on", () => {
		expect(image_count(null)).toBe(1);
		expect(image_count(value())).toBe(1);
		expect(image_count(value({ seeds: [1, 2, 3] }))).toBe(3);
		expect(image_count(value({ previews: ["a", "b"] }))).toBe(2);
		expect(image_count(value({ params: { ...params, num_images: 4 } }))).toBe(4);
	});
});

describe("names and settings", () => {
	it("downloads a file under the server's name, else by its place", () => {
		expect(download_name({ orig_name: "lighthouse-42.png" } as never, 0)).toBe(
			"lighthouse-42.png"
		);
		expect(download_name({} as never, 1)).toBe("image-2.png");
	});
	it("lists the settings in order, leaving out what is unknown", () => {
		expect(settings_parts(params, 42)).toEqual([
			["Seed", "42"],
			["Steps", "20"],
			["Guidance", "7.5"],
			["Size", "512×768"],
			["Sampler", "euler"],
			["Model", "tiny-sd15"],
			["Backend", "diffusers"]
		]);
		const early = { ...params, steps_done: 12, guidance: null, sampler: null, width: null };
		expect(settings_parts(early, null)).toEqual([
			["Steps", "12 of 20"],
			["Model", "tiny-sd15"],
			["Backend", "diffusers"]
		]);
	});
	it("gives each final image its source, name, infotext and seed", () => {
		const images = [
			{ url: "/file=a.png", orig_name: "a.png" },
			{ url: null, orig_name: null }
		] as never[];
		const shown = shown_images(
			value({ images, infotexts: ["info a"], seeds: [5], params: { ...params, seed: 9 } })
		);
		expect(shown).toEqual([
			{ src: "/file=a.png", download: "a.png", infotext: "info a", params: { ...params, seed: 9 }, seed: 5, index: 0, count: 2, input: null },
			{ src: "", download: "image-2.png", infotext: "", params: { ...params, seed: 9 }, seed: 9, index: 1, count: 2, input: null }
		]);
		expect(shown_images(null)).toEqual([]);
	});
	it("gives an edit's images the input they were made from", () => {
		const images = [{ url: "/file=r.png", orig_name: "r.png" }] as never[];
		const input_image = { url: "/file=input.png", path: "input.png" } as never;
		const shown = shown_images(value({ images, input_image }));
		expect(shown[0].input).toBe("/file=input.png");
	});
	it("has words for every failure reason", () => {
		expect(Object.keys(REASON_TEXT).sort()).toEqual(
			[
				"backend_error",
				"busy",
				"content_filtered",
				"invalid_request",
				"model_not_found",
				"out_of_memory",
				"rate_limited",
				"remote_error",
				"timeout",
				"unauthorized",
				"unavailable"
			].sort()
		);
	});
});

describe("placeholder_lines", () => {
	it("makes a line starting with # a heading and keeps the others as text", () => {
		expect(placeholder_lines("# Your image\n\n  appears here  \n## <b>not html</b>")).toEqual([
			{ heading: true, text: "Your image" },
			{ heading: false, text: "appears here" },
			{ heading: true, text: "<b>not html</b>" }
		]);
	});
	it("gives no lines for no placeholder", () => {
		expect(placeholder_lines(null)).toEqual([]);
		expect(placeholder_lines("  \n ")).toEqual([]);
	});
});

describe("job_link", () => {
	it("keeps an http or https link to the service's job", () => {
		expect(job_link("https://example.com/p/abc")).toBe("https://example.com/p/abc");
		expect(job_link("http://127.0.0.1:8000/p/1")).toBe("http://127.0.0.1:8000/p/1");
	});
	it("drops anything else: scripts, data, files, relative paths, nothing", () => {
		for (const url of ["javascript:alert(1)", "data:text/html,x", "file:///etc", "/p/1", "", null])
			expect(job_link(url)).toBeNull();
	});
});

describe("arrived_srcs", () => {
	const running = (extra: Partial<PreviewData>): PreviewData =>
		({
			run_id: "r",
			status: "running",
			step: 0,
			total_steps: 0,
			preview: null,
			elapsed: 1,
			steps_per_second: null,
			eta: null,
			seeds: [],
			backend: "b",
			model: "m",
			width: 64,
			height: 64,
			message: null,
			images: [],
			params: { ...params, num_images: 3 },
			...extra
		}) as PreviewData;
	const file = (url: string) => ({ url, path: url }) as PreviewData["images"][number];

	it("shows each arrived image in its place, the others' previews between", () => {
		const value = running({
			ready: [0, 2],
			images: [file("/a.png"), file("/c.png")],
			previews: ["p0", "p1", "p2"]
		});
		expect(arrived_srcs(value)).toEqual(["/a.png", "p1", "/c.png"]);
	});
	it("shows only the arrived images of a run with no previews", () => {
		const value = running({ ready: [1], images: [file("/b.png")] });
		expect(arrived_srcs(value)).toEqual(["/b.png"]);
	});
	it("is empty before any image arrives, and once the run is done", () => {
		expect(arrived_srcs(running({}))).toEqual([]);
		const done = running({ status: "done", ready: [], images: [file("/a.png")] });
		expect(arrived_srcs(done)).toEqual([]);
	});
});

describe("format_queue_left", () => {
	it("gives the wait, or 'starting soon' once the estimate has run out", () => {
		expect(format_queue_left(12)).toBe("~12s left in the queue");
		expect(format_queue_left(0)).toBe("starting soon");
		expect(format_queue_left(null)).toBe(null);
		expect(format_queue_left(undefined)).toBe(null);
		expect(format_queue_left(-1)).toBe(null);
	});
});
