// What the component shows, from its value and Gradio's loading status. Pure functions,
// so the rules read in one place and the .svelte files only render them.
import type { ILoadingStatus } from "@gradio/statustracker";
import type { PreviewData, View } from "./types";

export type Loading = ILoadingStatus | null | undefined;

/** True when `value` shows no run in progress. */
export function finished(value: PreviewData | null): boolean {
	return (
		value == null ||
		["idle", "done", "cancelled", "error"].includes(value.status)
	);
}

/** A new submission is waiting while the value still shows the previous run. */
export function is_stale(value: PreviewData | null, loading: Loading): boolean {
	return loading?.status === "pending" && finished(value);
}

/** The view: the value's status, corrected by what the page knows better. */
export function current_view(
	value: PreviewData | null,
	loading: Loading,
	stop_requested: boolean
): View {
	const status = loading?.status ?? null;
	const busy = status === "pending" || status === "generating";
	const stale = is_stale(value, loading);
	if (
		stop_requested &&
		(stale || !value || !finished(value) || value.status === "idle")
	)
		return "cancelled";
	// The latest event writing to this component raised.
	if (status === "error") return "error";
	if (stale || (value == null && busy)) {
		const queued =
			status === "pending" &&
			typeof loading?.queue_position === "number" &&
			typeof loading?.queue_size === "number";
		return queued ? "queued" : "starting";
	}
	if (value == null || value.status === "idle") return "idle";
	if (value.status === "queued") return "queued";
	if (value.status === "running") {
		// The run's event ended without a final state: it was cancelled elsewhere.
		if (status === "complete") return "cancelled";
		return value.step > 0 || value.preview ? "running" : "starting";
	}
	return value.status;
}

/** A run is under way (or about to be): the controls show and the empty frame pulses. */
export function is_active(view: View): boolean {
	return view === "queued" || view === "starting" || view === "running";
}

/** The text for the view: the status message on the stage, or the note under it when done. */
export function view_message(
	view: View,
	value: PreviewData | null,
	loading: Loading
): string {
	switch (view) {
		case "idle":
			return value?.message ?? "The image appears here as it is generated.";
		case "starting":
			return value?.message && !is_stale(value, loading)
				? value.message
				: "Starting…";
		case "cancelled":
			return "Cancelled";
		case "error":
			return (
				(loading?.status === "error"
					? loading?.message
					: value?.status === "error"
						? value.message
						: null) || "The run failed; the error notice has the details."
			);
		case "done":
			return value?.message ?? "";
		default:
			return "";
	}
}
