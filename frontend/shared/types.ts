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

export interface PreviewData {
	run_id: string | null;
	status: RunStatus;
	step: number;
	total_steps: number;
	preview: string | null;
	elapsed: number;
	steps_per_second: number | null;
	eta: number | null;
	seeds: number[];
	backend: string | null;
	model: string | null;
	width: number | null;
	height: number | null;
	message: string | null;
	images: FileData[];
}

export interface DiffusionPreviewProps {
	value: PreviewData | null;
	height: number | string | null;
	width: number | string | null;
	columns: number | null;
	show_stop_button: boolean;
	show_finish_button: boolean;
}

export interface DiffusionPreviewEvents {
	change: never;
	stop: never;
	finish: never;
	clear_status: ILoadingStatus;
}

// What the component shows. It follows the value, except where the page knows
// more than the last value it received: a queued submission, or a Stop click.
export type View =
	| "idle"
	| "queued"
	| "starting"
	| "running"
	| "done"
	| "cancelled"
	| "error";
