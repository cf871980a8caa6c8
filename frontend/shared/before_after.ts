// An edit's input picture on the stage and in the viewer (issue 27): the first frame of an edit
// run (before any step preview), and the before/after comparison of a finished edit. Pure
// functions; BeforeAfter.svelte and PreviewStage.svelte only render them.
import type { PreviewData } from "./types";
import { arrived_srcs } from "./format";

/** What the stage shows for a value: its final images, else a batch's images that arrived one
 * by one (with the others' previews), else the previews, else (an edit that has no preview
 * yet) its input picture, one per image of the batch. `input`: the frame is the input. */
export interface StageFrame {
	srcs: string[];
	final: boolean;
	input: boolean;
}

export function stage_frame(value: PreviewData): StageFrame | null {
	if (value.status === "done" && value.images?.length)
		return { srcs: value.images.map((file) => file.url ?? ""), final: true, input: false };
	const arrived = arrived_srcs(value);
	if (arrived.length) return { srcs: arrived, final: false, input: false };
	if (value.previews?.length) return { srcs: value.previews, final: false, input: false };
	if (value.preview) return { srcs: [value.preview], final: false, input: false };
	const input = value.input_image?.url;
	if (input && value.status !== "idle") {
		const count = Math.max(1, value.params?.num_images ?? 1);
		return { srcs: Array(count).fill(input), final: false, input: true };
	}
	return null;
}

/** The input picture's URL of an edit's value, for the viewer's comparison; null otherwise. */
export function input_src(value: PreviewData | null): string | null {
	return value?.input_image?.url || null;
}

/** Where the divider starts: the middle, input on the left, result on the right. */
export const START_POSITION = 50;

/** The divider's position (0 to 100: percent of the width showing the input) after a key, or
 * null for a key the slider does not take: arrows move it by 5 (by 1 with Shift), Page Up and
 * Page Down by 25, Home shows only the result, End only the input. */
export function position_for_key(position: number, key: string, fine = false): number | null {
	const step = fine ? 1 : 5;
	const moves: Record<string, number> = {
		ArrowLeft: position - step,
		ArrowDown: position - step,
		ArrowRight: position + step,
		ArrowUp: position + step,
		PageDown: position - 25,
		PageUp: position + 25,
		Home: 0,
		End: 100
	};
	const next = moves[key];
	return next === undefined ? null : clamp_position(next);
}

/** The position under a pointer at `x` over a box from `left`, `width` pixels wide. */
export function position_at(x: number, left: number, width: number): number {
	if (!(width > 0)) return START_POSITION;
	return clamp_position(((x - left) / width) * 100);
}

/** `position` held to 0..100, to a tenth of a percent. */
export function clamp_position(position: number): number {
	if (!isFinite(position)) return START_POSITION;
	return Math.round(Math.min(100, Math.max(0, position)) * 10) / 10;
}

/** The CSS clip of the input picture over the result: its left `position` percent shows. */
export function input_clip(position: number): string {
	return `inset(0 ${clamp_position(100 - clamp_position(position))}% 0 0)`;
}

/** What a screen reader hears for the slider's value. */
export function reveal_text(position: number): string {
	const shown = Math.round(clamp_position(position));
	if (shown <= 0) return "Result only";
	if (shown >= 100) return "Input only";
	return `Input on the left ${shown}%, result on the right ${100 - shown}%`;
}
