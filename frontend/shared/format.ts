// Small pure helpers for the text the component shows.
import type { FileData } from "@gradio/client";
import type { GenerationParams, PreviewData, ShownImage } from "./types";

export function format_rate(steps_per_second: number | null): string | null {
	if (steps_per_second == null || !isFinite(steps_per_second)) return null;
	if (steps_per_second <= 0) return null;
	if (steps_per_second >= 1) return `${steps_per_second.toFixed(1)} it/s`;
	return `${(1 / steps_per_second).toFixed(1)} s/it`;
}

export function format_seconds(seconds: number): string {
	const s = Math.max(0, Math.ceil(seconds));
	if (s < 60) return `${s}s`;
	const m = Math.floor(s / 60);
	if (m < 60) return `${m}m ${s % 60}s`;
	return `${Math.floor(m / 60)}h ${m % 60}m`;
}

/** A waiting run's time left in the queue. An estimate that has run out (the run ahead is
 * taking longer than runs like it took) reads "starting soon" rather than vanishing, so a
 * visitor at the head of the line is not left without word of the wait. */
export function format_queue_left(queue_eta: number | null | undefined): string | null {
	if (typeof queue_eta !== "number" || !isFinite(queue_eta) || queue_eta < 0) return null;
	return queue_eta > 0 ? `~${format_seconds(queue_eta)} left in the queue` : "starting soon";
}

export function format_eta(eta: number | null): string | null {
	if (eta == null || !isFinite(eta) || eta < 0) return null;
	return `~${format_seconds(eta)} left`;
}

export function format_elapsed(elapsed: number): string {
	return elapsed < 10 ? `${elapsed.toFixed(1)}s` : format_seconds(elapsed);
}

// Columns of the tile grid: the `columns` prop, else one per image up to 4.
/** A `height`/`width` prop as a CSS size: a number is pixels, a string is used as given. */
export function css_size(size: number | string | null | undefined): string | null {
	if (size == null || size === "") return null;
	return typeof size === "number" ? `${size}px` : size;
}

export function grid_columns(columns: number | null, count: number): number {
	if (columns != null && columns > 0) return Math.floor(columns);
	return Math.max(1, Math.min(count, 4));
}

// The file name a final image downloads as (the server names it after the prompt and seed).
export function download_name(file: FileData, index: number): string {
	return file.orig_name || `image-${index + 1}.png`;
}

/** How many images the run makes, known from its first state on. */
export function image_count(value: PreviewData | null): number {
	if (!value) return 1;
	return Math.max(
		1,
		value.images?.length ?? 0,
		value.previews?.length ?? 0,
		value.seeds?.length ?? 0,
		value.params?.num_images ?? 0
	);
}

/** Human words for a failure reason (events.py `FailureReason`). */
export const REASON_TEXT: Record<string, string> = {
	invalid_request: "Check the settings",
	model_not_found: "Model not found",
	unauthorized: "Not authorized",
	rate_limited: "Rate limited",
	busy: "Service busy",
	unavailable: "Unavailable",
	timeout: "Timed out",
	content_filtered: "Blocked by a content filter",
	out_of_memory: "Out of memory",
	remote_error: "Remote service error",
	backend_error: "Backend error"
};

export const PHASE_TEXT: Record<string, string> = {
	queued: "Queued at the service",
	loading: "Loading the model",
	generating: "Generating",
	fetching: "Fetching the result"
};

/** The settings of a run as short labelled parts, for the info panel and captions. */
/** A finished run's times for its info: how long it ran, and how long it waited in a queue
 * before (its own figure: the time it ran does not include it), when it waited. */
export function timing_parts(
	elapsed: number | null | undefined,
	waited: number | null | undefined
): [string, string][] {
	const parts: [string, string][] = [];
	if (elapsed != null) parts.push(["Time", format_elapsed(elapsed)]);
	if (elapsed != null && waited != null && waited > 0)
		parts.push(["Waited", format_elapsed(waited)]);
	return parts;
}

export function settings_parts(
	params: GenerationParams,
	seed: number | null
): [string, string][] {
	const parts: [string, string][] = [];
	if (seed != null) parts.push(["Seed", String(seed)]);
	if (params.steps != null)
		parts.push([
			"Steps",
			params.steps_done != null
				? `${params.steps_done} of ${params.steps}`
				: String(params.steps)
		]);
	if (params.guidance != null) parts.push(["Guidance", String(params.guidance)]);
	if (params.width && params.height)
		parts.push(["Size", `${params.width}×${params.height}`]);
	if (params.sampler) parts.push(["Sampler", params.sampler]);
	if (params.model) parts.push(["Model", params.model]);
	if (params.backend) parts.push(["Backend", params.backend]);
	return parts;
}

/** The tiles of a running batch some of whose final images already arrived (`ready`): each
 * arrived image in its place, the others' own previews between them (an image with neither
 * has no tile yet). Empty when no image has arrived. */
export function arrived_srcs(value: PreviewData): string[] {
	const ready = value.ready ?? [];
	const images = value.images ?? [];
	if (value.status !== "running" || !ready.length || images.length !== ready.length) return [];
	const count = Math.max(value.params?.num_images ?? 0, ...ready.map((index) => index + 1));
	const srcs: string[] = [];
	for (let index = 0; index < count; index++) {
		const at = ready.indexOf(index);
		const src = at >= 0 ? images[at].url : value.previews?.[index];
		if (src) srcs.push(src);
	}
	return srcs;
}

/** `url` when a job link may be shown as one: an absolute http(s) URL, never `javascript:`,
 * `data:` or a relative path (the server drops any other, this holds for a value made by an
 * app itself). */
export function job_link(url: string | null | undefined): string | null {
	if (!url) return null;
	try {
		const parsed = new URL(url);
		return parsed.protocol === "http:" || parsed.protocol === "https:" ? parsed.href : null;
	} catch {
		return null;
	}
}

/** The final images of a value, with what the viewer shows about each. */
export function shown_images(value: PreviewData | null): ShownImage[] {
	const images = value?.images ?? [];
	return images.map((file, index) => ({
		src: file.url ?? "",
		download: download_name(file, index),
		infotext: value?.infotexts?.[index] ?? "",
		params: value?.params ?? null,
		seed: value?.seeds?.[index] ?? value?.params?.seed ?? null,
		index,
		count: images.length,
		input: value?.input_image?.url || null
	}));
}

/** `seconds` as said at `since` (ms, performance.now()), counted down to `now`. */
export function counted_down(
	seconds: number | null | undefined,
	since: number,
	now: number
): number | null {
	if (seconds == null || !isFinite(seconds)) return null;
	return Math.max(0, seconds - Math.max(0, now - since) / 1000);
}

/** gr.Image's placeholder text as lines: blank lines dropped, and a line that starts with "#"
 * is a heading (the "#"s and the space after them removed). Plain text, never HTML. */
export function placeholder_lines(
	placeholder: string | null | undefined
): { heading: boolean; text: string }[] {
	return (placeholder ?? "")
		.split("\n")
		.map((line) => line.trim())
		.filter((line) => line.length > 0)
		.map((line) =>
			line.startsWith("#")
				? { heading: true, text: line.replace(/^#+\s*/, "") }
				: { heading: false, text: line }
		);
}
