// The component's value, mirroring the pydantic model `PreviewData` in
// backend/gradio_diffusion_preview/state.py.
import type { FileData } from "@gradio/client";
import type { ILoadingStatus } from "@gradio/statustracker";

export type RunStatus =
	| "idle"
	| "queued"
	| "running"
	| "done"
	| "cancelled"
	| "error";

export type Phase = "queued" | "loading" | "generating" | "fetching";

/** What a run was asked to make (state.py `GenerationParams`). */
export interface GenerationParams {
	prompt: string;
	negative_prompt: string;
	steps: number | null;
	guidance: number | null;
	width: number | null;
	height: number | null;
	num_images: number;
	seed: number | null;
	model: string | null;
	backend: string | null;
	sampler: string | null;
	steps_done: number | null;
	/** The service's own id for the job, and a link to it there (http/https only). */
	job_id?: string | null;
	job_url?: string | null;
}

/** What the running backend can do for this run: the widget offers only that. */
export interface RunCapabilities {
	cancel: boolean;
	finish_early: boolean;
	/** Stop is passed on to a service whose answer ends the run ("Stopping…" until then). */
	cancel_confirms?: boolean;
}

export interface PreviewData {
	run_id: string | null;
	status: RunStatus;
	step: number;
	total_steps: number;
	preview: string | null;
	/** One preview per image of a batch (then `preview` is null). */
	previews?: string[];
	phase?: Phase | null;
	queue_position?: number | null;
	queue_size?: number | null;
	/** Seconds since the run started running (while it waits: since it started waiting). */
	elapsed: number;
	/** Seconds it waited in a queue (the app's, the service's) before running; not in elapsed. */
	waited?: number | null;
	steps_per_second: number | null;
	eta: number | null;
	seeds: number[];
	backend: string | null;
	model: string | null;
	width: number | null;
	height: number | null;
	message: string | null;
	reason?: string | null;
	retry_after?: number | null;
	/** A cancelled run's service stopped the job (true) or refused (false); null: unknown. */
	cancel_acknowledged?: boolean | null;
	/** What the running backend can do (state.py `RunCapabilities`); null: unknown. */
	capabilities?: RunCapabilities | null;
	params?: GenerationParams | null;
	images: FileData[];
	/** While a run goes: the batch indices of the final images that already arrived
	 * (`images` holds them in this order). */
	ready?: number[];
	/** AUTOMATIC1111-style infotext per final image. */
	infotexts?: string[];
	/** An edit's input picture, at the output's size, served by the app: the first frame of
	 * the run and the "before" of its result. Null for text-to-image. */
	input_image?: FileData | null;
}

export interface DiffusionPreviewProps {
	value: PreviewData | null;
	height: number | string | null;
	width: number | string | null;
	columns: number | null;
	/** What each final image offers: "download", "fullscreen" (component.py BUTTONS). */
	buttons: string[];
	/** Text for the empty stage ("#" starts a heading line); null: an icon. */
	placeholder: string | null;
	/** interactive=False: no run controls, Reuse or clear button. */
	display_only: boolean;
	/** interactive=True: the clear button even with no clear listener. */
	clearable: boolean;
	show_stop_button: boolean;
	show_finish_button: boolean;
	history: number;
	scroll_into_view: boolean;
}

/** What "select" sends (gr.SelectData): the image's place and, as gr.Gallery's, its file
 * and caption (here its infotext). */
export interface SelectPayload {
	index: number;
	value: { image: unknown; caption: string | null } | null;
}

/** What the "reuse" event sends to the server (component.py `ReuseData`). */
export interface ReusePayload {
	index: number;
	seed: number | null;
	params: GenerationParams | null;
}

export interface DiffusionPreviewEvents {
	change: never;
	stop: { run_id: string | null };
	finish: { run_id: string | null };
	reuse: ReusePayload;
	select: SelectPayload;
	clear: never;
	clear_status: ILoadingStatus;
}

// What the component shows. It follows the value, except where the page knows
// more than the last value it received: a queued submission, or a Stop click.
export type View =
	| "idle"
	| "queued"
	| "starting"
	| "waiting"
	| "running"
	| "done"
	| "stopping"
	| "cancelled"
	| "error";

/** One final image as the viewer and the history show it. */
export interface ShownImage {
	src: string;
	download: string;
	infotext: string;
	params: GenerationParams | null;
	seed: number | null;
	index: number;
	count: number;
	/** The input picture of the edit that made it (before/after in the viewer); null for
	 * text-to-image. */
	input?: string | null;
}

/** What the stage has on screen: one image per tile, and where it came from. */
export interface Painted {
	srcs: string[];
	run: string | null;
	step: number;
	final: boolean;
	/** The frame is an edit's input picture (no step preview yet). */
	input?: boolean;
	aspect: number;
	items: ShownImage[];
}

/** One run in the strip of recent results. */
export interface HistoryEntry {
	run: string;
	items: ShownImage[];
}
