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

/**
 * The loading status as it concerns the run shown. Gradio also reports events that only
 * read this component (an app's own "send to ..." button, say): when such an event
 * completes while a run streams, the run has not ended. `writers` are the events seen
 * streaming into the component.
 */
export function run_status(
	value: PreviewData | null,
	loading: Loading,
	writers: ReadonlySet<number>
): string | null {
	const status = loading?.status ?? null;
	if (
		status === "complete" &&
		(value?.status === "running" || value?.status === "queued") &&
		!writers.has(loading?.fn_index ?? -1)
	)
		return "generating";
	return status;
}

/** A new submission is waiting while the value still shows the previous run. */
/** Whether `incoming` only readies the widget for the model whose run `shown` holds: an idle
 * value naming that model, with no run and no message (Compare's panels after the choice of
 * models changes). Such a value, arriving after a run of that model began (its event was
 * answered late on a busy server), must not wipe that run or its images. */
export function keeps_run(shown: PreviewData | null, incoming: PreviewData | null): boolean {
	return (
		!!shown?.run_id &&
		shown.status !== "idle" &&
		incoming?.status === "idle" &&
		!incoming.run_id &&
		!incoming.message &&
		!!incoming.model &&
		incoming.model === shown.model
	);
}

export function is_stale(value: PreviewData | null, status: string | null): boolean {
	return status === "pending" && finished(value);
}

/** The view: the value's status, corrected by what the page knows better. */
export function current_view(
	value: PreviewData | null,
	loading: Loading,
	status: string | null,
	stop_requested: boolean,
	stop_waiting = false
): View {
	const busy = status === "pending" || status === "generating";
	// Stop was passed on to the service: the run streams on until the service answers.
	if (stop_waiting && value?.status === "running" && busy) return "stopping";
	const stale = is_stale(value, status);
	if (
		stop_requested &&
		(stale || !value || !finished(value) || value.status === "idle")
	)
		return "cancelled";
	// Gradio's page ends an event it cancelled (`cancels=[...]`) in an error status with no
	// message when the cancel's empty completion reaches the event's own loop first (its
	// `dispatch` catch; gradio 6.31): no error was raised, and no notice is shown. A run that
	// had not finished then ended by that cancel. A raised error always carries a message.
	if (status === "error" && ended_by_a_cancel(value, loading)) return "cancelled";
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
	// The run's event ended without a final state: it was cancelled elsewhere.
	if (value.status === "queued") return status === "complete" ? "cancelled" : "queued";
	if (value.status === "running") {
		if (status === "complete") return "cancelled";
		if (value.phase) return "waiting";
		const painted = value.step > 0 || value.preview || value.previews?.length;
		return painted ? "running" : "starting";
	}
	return value.status;
}

/** An error status Gradio's page set itself (no message: nothing was raised) while the run
 * shown had not finished, or had just sent its "cancelled" state: the event was cancelled.
 * Which of the run's last state and the cancel's completion reaches the page first depends
 * on the server's load. */
function ended_by_a_cancel(value: PreviewData | null, loading: Loading): boolean {
	return (
		loading?.status === "error" &&
		!loading.message &&
		value != null &&
		(!finished(value) || value.status === "cancelled")
	);
}

/** A run is under way (or about to be): the controls show. */
export function is_active(view: View): boolean {
	return (
		view === "queued" ||
		view === "starting" ||
		view === "waiting" ||
		view === "running" ||
		view === "stopping"
	);
}

/** The text for the view: the status message on the stage, or the note under it when done. */
export function view_message(
	view: View,
	value: PreviewData | null,
	loading: Loading,
	stale: boolean
): string {
	switch (view) {
		case "idle":
			return value?.message ?? "The image appears here as it is generated.";
		case "starting":
			return value?.message && !stale ? value.message : "Starting…";
		case "stopping":
			return "Stopping…";
		case "cancelled":
			return cancel_text(value);
		case "error":
			// A run that failed sends its last state, then ends its event as an error (which
			// carries no message to the page): the state's message is the one to show.
			return (
				(value?.status === "error" ? value.message : null) ||
				(loading?.status === "error" ? loading?.message : null) ||
				"The run failed; the error notice has the details."
			);
		case "done":
			return value?.message ?? "";
		default:
			return "";
	}
}

/** "Cancelled", or, when the service refused to stop the job, the run's own message ("Cancel
 * was refused by the service: the job may still run."). */
export function cancel_text(value: PreviewData | null): string {
	if (value?.status === "cancelled" && value.cancel_acknowledged === false && value.message)
		return value.message;
	return "Cancelled";
}

/** The words a screen reader hears when the run's state changes (not every step). */
export function announcement(
	view: View,
	value: PreviewData | null,
	message: string,
	queue_text: string
): string {
	const step = value?.step ?? 0;
	const total = value?.total_steps ?? 0;
	switch (view) {
		case "queued":
			return queue_text;
		case "starting":
			return "Starting";
		case "waiting":
			return value?.message ?? "Waiting";
		case "running": {
			if (total <= 0) return "Generating";
			const quarter = Math.floor((4 * step) / total);
			return quarter > 0
				? `Generating, ${quarter * 25}% (step ${Math.round((quarter * total) / 4)} of ${total})`
				: "Generating";
		}
		case "done": {
			const count = value?.images?.length ?? 0;
			return `Done: ${count} image${count === 1 ? "" : "s"}${message ? `. ${message}` : ""}`;
		}
		case "stopping":
			return "Stopping";
		case "cancelled":
			return cancel_text(value);
		case "error":
			return `Error: ${message}`;
		default:
			return "";
	}
}

/** The run's buttons the page offers: "Use this preview" only while previews run on a
 * backend that can finish early, Stop while a run is active unless its backend says it
 * cannot cancel (a run waiting in line or for its first state can always leave). A value
 * that says nothing of its backend (an app's own state) offers both, as before. */
export function run_offers(
	value: PreviewData | null,
	view: View,
	stale: boolean
): { finish: boolean; stop: boolean } {
	const caps = stale ? null : value?.capabilities;
	const running = !stale && value?.status === "running";
	return {
		finish: view === "running" && running && caps?.finish_early !== false,
		stop: is_active(view) && view !== "stopping" && !(running && caps?.cancel === false)
	};
}

/** A place in line: 1 is next. */
export interface QueuePlace {
	position: number | null;
	size: number | null;
	/** Where the expected wait comes from: the run's value (an app's fair line) or Gradio's
	 * queue status. */
	eta_from: "value" | "loading";
}

/** Where a queued run stands: in the app's own line (a "queued" value from a policy's fair
 * queue, whose position counts from 1) or in Gradio's queue (its status counts from 0). */
export function queue_place(value: PreviewData | null, loading: Loading, stale: boolean): QueuePlace {
	if (!stale && value?.status === "queued" && typeof value.queue_position === "number")
		return {
			position: value.queue_position,
			size: typeof value.queue_size === "number" ? value.queue_size : null,
			eta_from: "value"
		};
	const position = loading?.queue_position;
	const size = loading?.queue_size;
	return {
		position: typeof position === "number" ? position + 1 : null,
		size: typeof size === "number" ? size : null,
		eta_from: "loading"
	};
}

/** "Queued: position 2 of 3", or "Queued" when the place is not known. */
export function queue_text(place: QueuePlace): string {
	if (place.position == null) return "Queued";
	return place.size != null && place.size >= place.position
		? `Queued: position ${place.position} of ${place.size}`
		: `Queued: position ${place.position}`;
}

/** Whether the stage shows the frame it has: a frame of an earlier run (or of the previous
 * result while a new submission waits) bridges the wait for the new run's first frame, dimmed
 * and without its buttons, but it goes once the new run has ended without one (stopped at
 * once, failed): it must not sit above the new run's details as if it were its result. */
export function frame_shown(
	painted_run: string | null | undefined,
	current_run: string | null,
	view: View,
	stale: boolean
): { shown: boolean; own: boolean } {
	if (painted_run === undefined) return { shown: false, own: false };
	const own = !stale && painted_run === current_run;
	return { shown: own || (view !== "cancelled" && view !== "error"), own };
}
